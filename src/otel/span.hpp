// otel/span.hpp: what a traced request carries: its trace and span ids, the attributes of
// its SERVER span (filled at completion) and one CLIENT span per upstream attempt (filled
// by the forward loop). Plain data, no I/O; only requests the sampler kept have one.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace sluice::otel {

using TraceId = std::array<uint8_t, 16>;
using SpanId = std::array<uint8_t, 8>;

// An OTLP AnyValue of the kinds the GenAI conventions use.
using Value = std::variant<std::string, int64_t, double, bool, std::vector<std::string>>;

struct Attribute {
  std::string key;
  Value value;
};

enum class Kind { kServer = 2, kClient = 3 };

struct Span {
  TraceId trace{};
  SpanId id{}, parent{};  // parent all zero: a root span
  std::string name;
  Kind kind = Kind::kServer;
  int64_t start_ns = 0, end_ns = 0;  // unix nanoseconds
  std::vector<Attribute> attributes;
  bool error = false;
  std::string status_message;
};

// One upstream attempt, recorded by the forward loop.
struct Attempt {
  SpanId id{};
  std::string upstream, host;
  int port = 0;
  int number = 0;  // 1-based within the request
  int64_t start_ns = 0, end_ns = 0;
  std::string outcome;  // success | failure | rate_limited | ignored
  std::string reason;   // why it failed, hence the retry or fallback
};

// A request the sampler kept.
struct Trace {
  TraceId trace{};
  SpanId span{};          // the request's SERVER span
  SpanId remote_parent{}; // from the client's traceparent (zero: none)
  std::vector<Attempt> attempts;
  std::string response_id, response_model;  // from a whole answer

  // Starts an attempt span; returns its index.
  size_t begin_attempt(std::string_view upstream, std::string_view host, int port, int64_t now_ns, const SpanId& id);
  // Ends it (once; an index out of range or an ended attempt is ignored).
  void end_attempt(size_t i, std::string_view outcome, std::string_view reason, int64_t now_ns);
  // The traceparent an attempt sends upstream: this trace, the attempt's span as parent.
  std::string traceparent(size_t i) const;
};

// W3C trace context: "00-<32 hex>-<16 hex>-<2 hex>".
struct TraceParent {
  TraceId trace{};
  SpanId parent{};
  bool sampled = false;
};
std::optional<TraceParent> parse_traceparent(std::string_view h);
std::string format_traceparent(const TraceId& t, const SpanId& s, bool sampled);

std::string hex(const uint8_t* p, size_t n);
template <size_t N>
std::string hex(const std::array<uint8_t, N>& a) { return hex(a.data(), N); }
template <size_t N>
bool is_zero(const std::array<uint8_t, N>& a) {
  for (uint8_t b : a)
    if (b) return false;
  return true;
}

// Parent-based ratio sampling: a client's decision (traceparent's sampled flag) is kept;
// a new trace is kept when its id falls below the ratio (the same id gives the same
// answer, as OpenTelemetry's TraceIdRatioBased sampler).
bool sample(const TraceId& t, const std::optional<TraceParent>& parent, double ratio);

// Random ids (a per-thread generator) and the wall clock in unix nanoseconds.
TraceId random_trace_id();
SpanId random_span_id();
int64_t now_ns();

// OTLP/HTTP JSON (ExportTraceServiceRequest) for a batch of spans of one service.
std::string encode(const std::vector<Span>& spans, std::string_view service_name, std::string_view service_version);

// The text kept of a body: at most `limit` bytes, cut on a UTF-8 boundary.
std::string truncate_utf8(std::string_view s, size_t limit);

}  // namespace sluice::otel
