#include <chrono>
#include <cstdio>
#include <random>
#include <cstring>

#include "core/error.hpp"  // append_json_string
#include "otel/span.hpp"

namespace sluice::otel {

namespace {

void escape(std::string& out, std::string_view s) { append_json_string(out, s); }

int unhex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // W3C: lowercase only
}

template <size_t N>
bool read_hex(std::string_view s, std::array<uint8_t, N>& out) {
  if (s.size() != 2 * N) return false;
  for (size_t i = 0; i < N; ++i) {
    int hi = unhex(s[2 * i]), lo = unhex(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

void value(std::string& out, const Value& v) {
  if (auto* s = std::get_if<std::string>(&v)) {
    out += "{\"stringValue\":";
    escape(out, *s);
    out += '}';
  } else if (auto* i = std::get_if<int64_t>(&v)) {
    // OTLP JSON: 64-bit integers as decimal strings.
    out += "{\"intValue\":\"" + std::to_string(*i) + "\"}";
  } else if (auto* d = std::get_if<double>(&v)) {
    char b[40];
    std::snprintf(b, sizeof b, "%.17g", *d);
    out += "{\"doubleValue\":";
    out += b;
    out += '}';
  } else if (auto* b = std::get_if<bool>(&v)) {
    out += *b ? "{\"boolValue\":true}" : "{\"boolValue\":false}";
  } else {
    out += "{\"arrayValue\":{\"values\":[";
    bool first = true;
    for (const std::string& s : std::get<std::vector<std::string>>(v)) {
      if (!first) out += ',';
      first = false;
      out += "{\"stringValue\":";
      escape(out, s);
      out += '}';
    }
    out += "]}}";
  }
}

}  // namespace

namespace {
std::mt19937_64& rng() {
  thread_local std::mt19937_64 g{std::random_device{}()};
  return g;
}
template <size_t N>
void fill(std::array<uint8_t, N>& a) {
  do {
    for (size_t i = 0; i < N; i += 8) {
      uint64_t x = rng()();
      for (size_t j = 0; j < 8 && i + j < N; ++j) a[i + j] = static_cast<uint8_t>(x >> (8 * j));
    }
  } while (is_zero(a));  // all-zero ids are invalid
}
}  // namespace

TraceId random_trace_id() {
  TraceId t;
  fill(t);
  return t;
}
SpanId random_span_id() {
  SpanId s;
  fill(s);
  return s;
}
int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string hex(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = d[p[i] >> 4];
    s[2 * i + 1] = d[p[i] & 15];
  }
  return s;
}

std::optional<TraceParent> parse_traceparent(std::string_view h) {
  // version 00 is exactly 55 chars; a later version may append fields after a '-'.
  if (h.size() < 55 || h[2] != '-' || h[35] != '-' || h[52] != '-') return std::nullopt;
  if (h.substr(0, 2) == "ff" || unhex(h[0]) < 0 || unhex(h[1]) < 0) return std::nullopt;
  if (h.substr(0, 2) == "00" && h.size() != 55) return std::nullopt;
  if (h.size() > 55 && h[55] != '-') return std::nullopt;
  TraceParent tp;
  std::array<uint8_t, 1> flags{};
  if (!read_hex(h.substr(3, 32), tp.trace) || !read_hex(h.substr(36, 16), tp.parent) || !read_hex(h.substr(53, 2), flags))
    return std::nullopt;
  if (is_zero(tp.trace) || is_zero(tp.parent)) return std::nullopt;
  tp.sampled = flags[0] & 1;
  return tp;
}

std::string format_traceparent(const TraceId& t, const SpanId& s, bool sampled) {
  return "00-" + hex(t) + "-" + hex(s) + (sampled ? "-01" : "-00");
}

bool sample(const TraceId& t, const std::optional<TraceParent>& parent, double ratio) {
  if (parent) return parent->sampled;
  if (ratio >= 1) return true;
  if (ratio <= 0) return false;
  // The low 8 bytes as an unsigned number against ratio * 2^64 (TraceIdRatioBased).
  uint64_t x = 0;
  for (size_t i = 8; i < 16; ++i) x = x << 8 | t[i];
  return static_cast<double>(x >> 11) < ratio * static_cast<double>(uint64_t(1) << 53);
}

size_t Trace::begin_attempt(std::string_view upstream, std::string_view host, int port, int64_t now_ns, const SpanId& id) {
  Attempt a;
  a.id = id;
  a.upstream = upstream;
  a.host = host;
  a.port = port;
  a.number = static_cast<int>(attempts.size()) + 1;
  a.start_ns = now_ns;
  attempts.push_back(std::move(a));
  return attempts.size() - 1;
}

void Trace::end_attempt(size_t i, std::string_view outcome, std::string_view reason, int64_t now_ns) {
  if (i >= attempts.size() || attempts[i].end_ns) return;
  attempts[i].end_ns = now_ns;
  attempts[i].outcome = outcome;
  attempts[i].reason = reason;
}

std::string Trace::traceparent(size_t i) const {
  return i < attempts.size() ? format_traceparent(trace, attempts[i].id, true) : std::string();
}

std::string truncate_utf8(std::string_view s, size_t limit) {
  if (s.size() <= limit) return std::string(s);
  size_t n = limit;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // s[n] starts no character
  return std::string(s.substr(0, n));
}

std::string encode(const std::vector<Span>& spans, std::string_view service_name, std::string_view service_version) {
  std::string out;
  out.reserve(512 + spans.size() * 1024);
  out += "{\"resourceSpans\":[{\"resource\":{\"attributes\":[";
  out += "{\"key\":\"service.name\",\"value\":";
  value(out, std::string(service_name));
  out += "},{\"key\":\"service.version\",\"value\":";
  value(out, std::string(service_version));
  out += "}]},\"scopeSpans\":[{\"scope\":{\"name\":\"sluice\",\"version\":";
  escape(out, service_version);
  out += "},\"spans\":[";
  bool first = true;
  for (const Span& s : spans) {
    if (!first) out += ',';
    first = false;
    out += "{\"traceId\":\"" + hex(s.trace) + "\",\"spanId\":\"" + hex(s.id) + "\"";
    if (!is_zero(s.parent)) out += ",\"parentSpanId\":\"" + hex(s.parent) + "\"";
    out += ",\"name\":";
    escape(out, s.name);
    out += ",\"kind\":" + std::to_string(static_cast<int>(s.kind));
    out += ",\"startTimeUnixNano\":\"" + std::to_string(s.start_ns) + "\"";
    out += ",\"endTimeUnixNano\":\"" + std::to_string(s.end_ns) + "\"";
    out += ",\"attributes\":[";
    bool fa = true;
    for (const Attribute& a : s.attributes) {
      if (!fa) out += ',';
      fa = false;
      out += "{\"key\":";
      escape(out, a.key);
      out += ",\"value\":";
      value(out, a.value);
      out += '}';
    }
    out += "],\"status\":{";
    if (s.error) {
      out += "\"code\":2";  // STATUS_CODE_ERROR
      if (!s.status_message.empty()) {
        out += ",\"message\":";
        escape(out, s.status_message);
      }
    }
    out += "}}";
  }
  out += "]}]}]}";
  return out;
}

}  // namespace sluice::otel
