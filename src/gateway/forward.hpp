// gateway/forward.hpp: the one way the gateway calls an upstream, used by every path that
// does (the proxy, the shadow, the blue-green warm-up probe, and through the proxy the eval
// runner): an attempt plan from the balancer over the route's pool, circuit breakers,
// Retry-After, a retry budget with full-jitter backoff, and the connect / first-byte /
// first-token deadlines. It ends when an upstream answered with a head the caller will
// relay (an Exchange), or with the reason none could: retries and fallbacks happen only
// here, before a byte has reached the client.
#pragma once
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "bridge/anthropic_upstream.hpp"
#include "config/snapshot.hpp"
#include "core/error.hpp"
#include "net/asio.hpp"
#include "net/upstream.hpp"
#include "otel/span.hpp"
#include "upstream/balancer.hpp"
#include "upstream/health.hpp"

namespace sluice::gateway {

struct ForwardSpec {
  std::span<const size_t> targets;                    // indices into the snapshot's upstreams
  const upstream::BalanceSettings* balance = nullptr;  // null: in order (primary, fallbacks)
  std::string_view method = "POST";
  std::string_view path;  // after the upstream's prefix, e.g. "/chat/completions"
  std::string_view body;
  std::string_view request_id;
  std::string_view user_agent = "sluice/0.1";
  bool stream = false;     // the client wants a stream: no size limit on it, first-token deadline
  uint64_t affinity = 0;   // prefix or session hash for the balancer
  int64_t est_tokens = 0;  // prompt + max_tokens estimate (least_tokens)
  int max_attempts = 2;
  // A rollout candidate with the stable release behind it: one try per target, and a 4xx
  // or an error it will not retry ends the forward (the caller falls back to stable).
  bool candidate_with_fallback = false;
  // The route has a fallback chain for 5xx (or 429): a last 5xx (429) ends the forward as
  // a failure (the caller falls back) instead of being relayed.
  bool fail_on_5xx = false;
  bool fail_on_429 = false;
  // ...and for a 400 context_length_exceeded (to a larger-context model).
  bool fail_on_context_length = false;
  // An active health check: one attempt at the one target, whatever its breaker says, not
  // counted by the breaker or the retry budget (the caller records the check's result).
  bool health_check = false;
  int64_t timeout_ms = 0;  // > 0: caps the upstream's connect, first-byte and total deadlines
  bool from_root = false;  // `path` is from the server's root, not after the upstream's base (/metrics)
  otel::Trace* trace = nullptr;  // a traced request: each attempt becomes a span (and sends traceparent)
};

// An upstream that answered: its connection positioned after the response head.
struct Exchange {
  const config::UpstreamRuntime* upstream = nullptr;
  std::unique_ptr<net::UpstreamConn> conn;
  std::optional<http::response_parser<http::buffer_body>> parser;
  std::string prefetched;  // stream bytes read while waiting for the first token
  // An Anthropic upstream: its answer, translated to chat completions as it is read.
  std::unique_ptr<bridge::AnthropicAnswer> anthropic;
  upstream::LoadGuard load;
  bool probe = false;
  bool check = false;  // a health check: the breaker hears its result through record_check
  bool finished = false;
  otel::Trace* trace = nullptr;  // its attempt span, ended by finish()
  size_t span = 0;
  // Tells the upstream's breaker how the exchange ended (once; later calls are ignored).
  void finish(upstream::Outcome o, std::string_view why = {});
};

// How an answered status counts for the upstream's breaker: a 4xx the request itself
// caused is a success of the upstream.
inline upstream::Outcome outcome_of_status(int status) {
  if (status == 429) return upstream::Outcome::kRateLimited;
  if (status >= 500) return upstream::Outcome::kFailure;
  return upstream::Outcome::kSuccess;
}

struct ForwardResult {
  std::unique_ptr<Exchange> exchange;  // owned on the heap: its parser never moves
  std::optional<ApiError> failure;
  std::string retry_after;  // seconds, when every target was unavailable
  int attempts = 0;
  std::string upstream;  // the last upstream tried
  bool gone = false;     // the client hung up meanwhile
};

}  // namespace sluice::gateway
