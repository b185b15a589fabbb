// pipeline/filter.hpp: the filter chain every proxied request runs through, in the manner of
// Envoy's HTTP filters. A filter may act on the request (continue, answer it directly, or
// fail it), on the upstream's response head, on each stream event, on a whole answer, and on
// completion. Filters keep no per-request state of their own: what they learn goes into the
// RequestContext (their own state struct there), and what outlives a request (caches, sinks,
// the request log) is reached through the Env. No filter does I/O: the gateway does the
// forwarding and the relay, and calls the hooks as the answer passes.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "pipeline/context.hpp"
#include "rollout/evidence.hpp"

namespace simdjson::dom {
class parser;
}
namespace sluice::metrics {
class Shard;
}
namespace sluice::reqlog {
class RequestLog;
}
namespace sluice::rollout {
class Sink;
class ExperimentBook;
}
namespace sluice::cache {
class ResponseCache;
}
namespace sluice::otel {
class Exporter;
}
namespace sluice::admission {
class Registry;
struct Waiter;
}

namespace sluice::pipeline {

// An answer a filter gives in place of the upstream's (a cache hit, a static answer).
struct Reply {
  int status = 200;
  std::string body;
  std::string_view content_type = "application/json";
  std::vector<std::pair<std::string_view, std::string>> headers;  // sent after the lineage headers
};

// What a request hook decided.
struct Verdict {
  std::optional<ApiError> error;  // fail the request with this error
  std::optional<Reply> reply;     // answer it with this, without an upstream
  bool proceed() const { return !error && !reply; }
  static Verdict next() { return {}; }
  static Verdict fail(ApiError e) { return Verdict{std::move(e), std::nullopt}; }
  static Verdict answer(Reply r) { return Verdict{std::nullopt, std::move(r)}; }
};

// A request mirrored to a rollout's candidate after its stable answer was sent.
struct ShadowJob {
  std::string route, rollout_id, request_id;
  std::string body, vars_header, json_schema;
  rollout::Observation stable;
  std::string stable_text;
};

// What filters may use beyond the request: the worker's parser and metric shard, and the
// services shared by every worker. Built once per worker.
struct Env {
  simdjson::dom::parser& json;
  metrics::Shard& metrics;
  size_t worker = 0;
  int64_t max_inflight = 0;
  reqlog::RequestLog* reqlog = nullptr;
  rollout::Sink* rollout_sink = nullptr;
  cache::ResponseCache* cache = nullptr;
  cache::ResponseCache* last_good = nullptr;  // answers kept for degraded mode
  admission::Registry* limits = nullptr;      // each tenant's rate limit state
  bridge::Store responses;                    // stored Responses API answers (previous_response_id)
  // A queue place for a request waiting for a pool slot; its wake() reaches this worker.
  std::function<std::shared_ptr<admission::Waiter>()> make_waiter;
  // Mirrors an answered request to its rollout's candidate; false when the worker already
  // has `max_inflight` mirrors running (the job is dropped and counted).
  std::function<bool(ShadowJob&&, int64_t max_inflight)> mirror;
  rollout::ExperimentBook* experiments = nullptr;  // release flags' variants as experiment arms
  otel::Exporter* otel = nullptr;                  // telemetry.otlp: where finished spans go
};

// The upstream's response head, as the relay received it.
struct Head {
  int status = 0;
  std::string_view content_type;
  bool stream = false;  // relayed as an SSE stream
};

// One stream event's data, parsed once by the relay and shown to every filter.
struct Event {
  const json::ChunkInfo& chunk;
  Clock::time_point at;
};

enum Hooks : unsigned {
  kOnRequest = 1u << 0,
  kOnHead = 1u << 1,
  kOnEvent = 1u << 2,
  kOnBody = 1u << 3,
  kOnComplete = 1u << 4,
};

class Filter {
 public:
  virtual ~Filter() = default;
  virtual std::string_view name() const = 0;
  // Which hooks this filter implements: the chain calls no other.
  virtual unsigned hooks() const = 0;
  virtual Verdict on_request(RequestContext&, Env&) const { return Verdict::next(); }
  virtual void on_head(RequestContext&, const Head&, Env&) const {}
  virtual void on_event(RequestContext&, const Event&, Env&) const {}
  // A whole (non-streamed) 2xx answer. An error turns it into a failure (a body that is
  // not what the API promises); later filters do not see it.
  virtual std::optional<ApiError> on_body(RequestContext&, std::string_view body, Env&) const { return std::nullopt; }
  // The request is finished (answered, failed or abandoned): status and error are final.
  virtual void on_complete(RequestContext&, Clock::time_point t_end, Env&) const {}
};

// The filters one snapshot runs, in order, compiled when the snapshot is first used. Only
// filters a snapshot needs are in it (no response cache filter without a cached route).
class Chain {
 public:
  static std::shared_ptr<const Chain> compile(const config::Snapshot& snap);
  // The built-in filters in chain order, whether or not a snapshot needs them.
  static std::vector<const Filter*> builtin();
  explicit Chain(std::vector<const Filter*> filters);

  Verdict on_request(RequestContext& ctx, Env& env) const;
  void on_head(RequestContext& ctx, const Head& h, Env& env) const;
  void on_event(RequestContext& ctx, const Event& e, Env& env) const;
  std::optional<ApiError> on_body(RequestContext& ctx, std::string_view body, Env& env) const;
  void on_complete(RequestContext& ctx, Clock::time_point t_end, Env& env) const;

  const std::vector<const Filter*>& filters() const { return all_; }
  // Names in order, for the admin API and tests.
  std::vector<std::string_view> names() const;

 private:
  std::vector<const Filter*> all_, request_, head_, event_, body_, complete_;
};

}  // namespace sluice::pipeline
