// pipeline/context.hpp: everything one request carries through the filter chain. Filters
// read what earlier filters wrote; nothing here is shared with another request. Fields one
// filter owns live in that filter's own state struct (RolloutState, CacheState) rather than
// in the flat part every filter reads.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "admission/gate.hpp"
#include "admission/limiter.hpp"
#include "bridge/front.hpp"
#include "config/snapshot.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "json/chat.hpp"
#include "otel/span.hpp"

namespace sluice::pipeline {

// kResponses: OpenAI's Responses API passed through to an upstream that serves it (a
// Responses request to other upstreams is bridged: kChat with a bridge::Front).
enum class Endpoint { kChat, kEmbeddings, kModels, kCompletions, kResponses };

// Endpoints whose answer may be an SSE stream.
inline bool streams(Endpoint e) {
  return e == Endpoint::kChat || e == Endpoint::kCompletions || e == Endpoint::kResponses;
}

// The rollout filter's state: which arm serves the request (set by the route stage), what
// the stable arm needs when the candidate cannot answer, and the mirror's copy of the body.
struct RolloutState {
  bool candidate = false;         // served by the rollout's candidate release
  bool shadow = false;            // mirror to the candidate after the stable answer
  std::string shadow_body;        // the client's body before rendering, for the mirror
  std::string fallback_body;      // candidate requests: the client's body, to fall back to stable
  ErrorKind candidate_failure = ErrorKind::kNone;  // the candidate failed first; stable answered
  double candidate_failed_ms = 0;
};

// The response cache filter's state.
struct CacheState {
  const config::CacheRoute* rule = nullptr;  // the route's cache settings, when it has one
  std::string key;                           // set when the request may be served or stored
  std::string_view outcome;                  // "hit" | "miss" (empty: the route has no cache)
  std::string last_good_key;  // the route keeps last good answers (degraded mode): this request's key
  std::string unstreamed;     // the rendered request without stream fields (both keys hash it), once
};

// The rate limit filter's state: what the request reserved of its tenant's limits.
struct RateState {
  const config::Tenant* tenant = nullptr;
  int64_t reserved_tokens = 0;
  int64_t prompt_tokens = 0;  // of which the prompt (estimated)
  bool admitted = false;  // holds a reservation to reconcile at completion
};

// The admission gate filter's state: the pool slot the request holds (released at
// completion), or the queue place it waits in.
struct AdmissionState {
  admission::Gate* gate = nullptr;  // holds a slot here, or waits for one (waiter)
  int64_t tokens = 0;               // its estimate, counted against the pool's tokens in flight
  std::shared_ptr<admission::Waiter> waiter;  // queued: the gateway waits for the grant before forwarding
  int64_t queue_timeout_ms = 0;
  Clock::time_point t_admitted{};   // when it got its slot (TTFT samples exclude the queue)
  std::string overflow;             // served by the pool's overflow target instead
  bool holds() const { return gate && (!waiter || waiter->state.load() == 1); }
};

// The flags filter's state: what the gateway's own flags decided for this request.
struct FlagState {
  const config::PinnedRelease* pinned = nullptr;  // a release flag pinned the request here
  bool force_fallback = false;                    // a route kill switch: straight to the fallback chain
  std::string applied;  // "flag=variant" of every flag that acted, comma-separated (header, log)
  const flags::Flag* experiment = nullptr;  // the route's release flag gave this request a variant...
  std::string variant;                      // ...this one (an arm of the flag's experiment)
};

struct RequestContext {
  // Set by the listener before the chain runs.
  std::string request_id;
  Clock::time_point t_start;
  Endpoint endpoint = Endpoint::kChat;
  // The API the client spoke: another one than chat completions is translated by the
  // translate stage, and `front` turns the chat answer back into that API's shape.
  bridge::Api api = bridge::Api::kChat;
  std::unique_ptr<bridge::Front> front;
  std::string* body = nullptr;  // the client's body; filters may replace it
  std::string_view authorization;
  const config::Snapshot* snap = nullptr;
  // Looks up a request header (the rollout's sticky session header); may be empty.
  std::function<std::string_view(std::string_view)> header;

  // parse
  json::RequestInfo info;
  bool strip_usage = false;  // the gateway asked for usage the client did not ask for
  // authenticate
  std::string tenant;
  const config::Tenant* tenant_cfg = nullptr;  // its limits and tier (tenant_limits(), looked up once)
  bool tenant_resolved = false;
  // route
  const config::Resolution* resolution = nullptr;
  // render: the release that served the request (from the route), if any
  const release::Compiled* release = nullptr;
  std::string_view vars_header;  // x-sluice-vars
  // select_upstream: indices into snap->upstreams(), in try order, and how to balance them
  std::vector<size_t> candidates;
  const upstream::BalanceSettings* balance = nullptr;
  bool long_context = false;  // sent to the route's long-context targets
  // Keep the answer text (rollout refusal, schema and shadow checks; request_log.bodies).
  bool capture = false;
  bool check_refusal = false;  // an alarm watches the route's refusal rate (alarm_refusal filter)
  std::string log_body;  // request_log.bodies: the client's body as sent

  RolloutState rollout;
  FlagState flags;
  CacheState cache;
  RateState rate;
  AdmissionState admission;
  // The request's priority tier (its tenant's, or lower by x-sluice-priority); set by the admit stage.
  admission::Tier tier = admission::Tier::kStandard;
  bool tier_set = false;
  // Headers every response to this request carries (x-ratelimit-*), set by filters.
  std::vector<std::pair<std::string_view, std::string>> response_headers;

  // forward / relay results
  std::string upstream;    // name of the upstream that answered (or was last tried)
  std::string fallback;    // the fallback step that answered ("pool/model", or "static": degraded)
  std::string_view resumed;  // a stream taken over mid-way by another target: "restart" | "continue"
  int attempts = 0;
  int status = 0;          // what the client got (or, for a cut stream, the failure status)
  ErrorKind error = ErrorKind::kNone;  // what went wrong, for decisions
  std::string error_code;  // ...and its code, for the request log ("" on success)
  bool streamed = false;
  int64_t tokens_in = -1, tokens_out = -1;
  int64_t tokens_cached = -1;  // of tokens_in, served by the upstream's prompt cache
  double cost_usd = -1;       // set when the request completes (pipeline::request_cost); < 0: no price
  int64_t content_chunks = 0;
  Clock::time_point t_first_token{}, t_last_token{};
  std::string answer;         // captured answer text (bounded), when capture is set
  std::string finish_reason;  // of the first choice
  // Set when telemetry.otlp traces this request (otel_filter.cpp); the forward loop adds its attempts.
  std::unique_ptr<otel::Trace> trace;
  bool trace_decided = false;  // sampled or not, once

  void fail(const ApiError& e) {
    status = e.status;
    error = e.kind;
    error_code = e.code;
  }
  // A refusal that says when to come back: Retry-After (whole seconds, rounded up) and the
  // exact retry-after-ms the official OpenAI SDKs prefer.
  void retry_after(int64_t ms) {
    response_headers.emplace_back("Retry-After", std::to_string((ms + 999) / 1000));
    response_headers.emplace_back("retry-after-ms", std::to_string(ms));
  }
  void set_error(ErrorKind k) {
    error = k;
    error_code = code_of(k);
  }
};

inline constexpr size_t kMaxCapturedAnswer = 64 << 10;

}  // namespace sluice::pipeline
