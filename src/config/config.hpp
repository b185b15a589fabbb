// config/config.hpp: the configuration model. Plain values, no behaviour; the loader fills
// it from YAML and CLI flags, snapshot.hpp compiles it for the data plane.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "admission/limiter.hpp"
#include "core/strings.hpp"
#include "upstream/balancer.hpp"
#include "upstream/health.hpp"
#include "upstream/retry.hpp"

namespace sluice::alarm {
struct Rule;
}

namespace sluice::config {

struct Timeouts {
  int64_t connect_ms = 5000;
  int64_t first_byte_ms = 120000;  // from request sent to response headers
  int64_t idle_ms = 60000;         // longest gap between two stream chunks
  int64_t total_ms = 600000;       // whole exchange
  // Streams: from request sent to the first content token. 0 = off. When it passes and
  // nothing has reached the client yet, the request moves to the next target.
  int64_t first_token_ms = 0;
};

// Active deep health checks: a real one-token chat completion sent every `interval_ms`
// (through the same forwarder as traffic, whatever the breaker says), `unhealthy_after`
// failures in a row eject the upstream, one pass readmits it.
struct HealthCheck {
  bool enabled = false;
  int64_t interval_ms = 10000;
  int64_t timeout_ms = 5000;
  std::string model;  // sent as "model" (default: the upstream's first `models` entry, else "health-check")
  int unhealthy_after = 2;
};

// The upstream publishes its own load (vLLM's /metrics, at the server's root): read every
// interval_ms and used by the balancer beside the requests the gateway has in flight.
struct LoadMetrics {
  bool enabled = false;
  int64_t interval_ms = 1000;
  std::string path = "/metrics";
};

struct Upstream {
  std::string name;
  std::string url;  // as written, e.g. https://api.openai.com/v1
  Url parsed;
  std::string api_key_env;   // name of the environment variable holding the key
  std::string api_key_file;  // or a file holding it
  std::vector<std::string> models;  // model ids it serves (optional)
  bool tls_verify = true;
  std::string ca_file;
  int max_idle_connections = 128;  // per worker
  Timeouts timeouts;
  double price_input_per_1m = 0;
  double price_output_per_1m = 0;
  double price_cached_input_per_1m = -1;  // cached prompt tokens (< 0: the input price)
  double price_per_hour = 0;              // a self-hosted upstream's cost per hour...
  double price_concurrency = 1;           // ...shared by this many requests served at once
  // US dollars for one request: tokens at their prices plus its share of the hourly price
  // for the `seconds` it held the upstream; < 0 when the upstream has no price. Token counts
  // < 0 are unknown (0).
  double cost(int64_t tokens_in, int64_t cached_in, int64_t tokens_out, double seconds) const;
  upstream::BreakerSettings breaker;  // circuit breaker and outlier ejection
  HealthCheck health_check;            // active deep health checks (off unless configured)
  LoadMetrics load_metrics;            // its own load report (off unless configured)
  // Accepts an assistant prefill to continue (vLLM's continue_final_message): a target for
  // mid-stream `continue`.
  bool prefill = false;
  // The API it speaks: "openai" (chat completions; the default) or "anthropic" (Messages:
  // requests and answers are translated, bridge/anthropic_upstream.hpp).
  enum class Api : uint8_t { kOpenAI, kAnthropic };
  Api api = Api::kOpenAI;
  std::string anthropic_version = "2023-06-01";
  // Serves OpenAI's Responses API itself: /v1/responses requests to routes served only by
  // such upstreams pass through untranslated (else they are bridged to chat completions).
  bool responses = false;
};

// A pool: the upstreams (replicas, keys, providers) that can serve one pinned model, and
// how to choose among them. Routes and releases name a pool where they name an upstream.
struct Pool {
  std::string name;
  std::vector<std::string> upstreams;
  upstream::BalanceSettings balance;
  // Admission control: capacity in requests and tokens in flight, adaptive limit, shedding
  // by tier from shed_at, a bounded queue with a deadline (admission/gate.hpp).
  admission::GateSettings admission;
};

struct Route {
  std::string name;                    // what clients put in "model"
  std::vector<std::string> upstreams;  // tried in order on failure before the first byte
  std::string model;                   // upstream model id; empty = the route name
};

// A route's fallback chain: tried in order when the route's own targets could not answer
// before the first byte, for the failure classes in `on`.
struct FallbackStep {
  std::string upstream;     // an upstream or a pool...
  std::string model;        // ...and the model id to send there (empty: the request's)
  std::string static_text;  // or a static degraded answer (chat only)
  bool last_good = false;   // or the route's last good answer to the same request (degraded)
};
struct Fallback {
  std::string route;  // a config route or a release route (from the store)
  std::vector<FallbackStep> chain;
  // connect | timeout | 5xx | 429 | unavailable (breakers open) | context_length (a 400
  // context_length_exceeded; not in the default list). Any other 4xx never falls back.
  std::vector<std::string> on = {"connect", "timeout", "5xx", "429", "unavailable"};
  // A stream that fails after its head reached the client: "error" (an error event and a
  // clean end), "restart" (resend while no content reached the client), or "continue"
  // (also after content: resend with the answer so far as an assistant prefill, to
  // upstreams with `prefill: true`, and splice the rest into the same stream).
  std::string mid_stream = "error";
  int max_resumes = 1;
};

// Requests of `route` whose prompt is above `above_tokens` (estimated as body bytes / 4) go
// to their own upstream or pool, so long-context traffic cannot starve short requests.
struct LongContext {
  std::string route;
  int64_t above_tokens = 8000;
  std::string upstream;
};

// The exact-match response cache, opt-in per route.
struct CacheRoute {
  std::string route;
  int64_t ttl_ms = 300000;
  bool shared_across_tenants = false;  // one tenant's cached answer may serve another
};
struct ResponseCacheConfig {
  int64_t max_bytes = 64 << 20;
  // The "last good answer" store, kept for routes whose fallback chain has {last_good: true}.
  int64_t last_good_max_bytes = 16 << 20;
  int64_t last_good_ttl_ms = 24 * 3600 * 1000;
  std::vector<CacheRoute> routes;
};

// A tenant's limits (its API keys name it). Requests and tokens per minute hold under
// concurrency: a request reserves its estimate at admission and reconciles at the end.
struct Tenant {
  std::string name;
  admission::Limits limits;            // rpm, tpm, max_concurrent (0: no limit)
  int64_t max_input_tokens = 0;        // per request, estimated as body bytes / 4 (0: no limit)
  int64_t reserve_output_tokens = 256; // reserved for a request that sets no max_tokens
  admission::Tier tier = admission::Tier::kStandard;  // who is shed first when a pool is full
  // Money per UTC day and month, from the upstreams' prices (0: no budget); when spent,
  // requests get 429 insufficient_quota.
  double budget_usd_per_day = 0;
  double budget_usd_per_month = 0;
  std::vector<std::string> routes;  // the routes (models) it may call; empty = all
  bool managed = false;             // defined in the store (sluice tenant ...), not in the file
  bool limited() const {
    return limits.rpm > 0 || limits.tpm > 0 || limits.max_concurrent > 0 || max_input_tokens > 0 ||
           budget_usd_per_day > 0 || budget_usd_per_month > 0 || !routes.empty() || tier != admission::Tier::kStandard;
  }
};

struct ApiKey {
  std::string tenant;
  std::string key_sha256;  // hex sha256 of the key; the key itself is never stored
  std::string id;          // keys made by `sluice key create` (the store's id)
  int64_t expires_at_ms = 0;  // a rotated key's grace end (0: never)
};

struct AdminToken {
  std::string name;
  std::string role;  // viewer | operator | admin
  std::string token_sha256;
};

struct Limits {
  int64_t max_body_bytes = 8 << 20;
  int64_t max_header_bytes = 16 << 10;
  int64_t max_response_bytes = 64 << 20;
  int64_t max_sse_event_bytes = 1 << 20;
  int64_t header_timeout_ms = 10000;     // a whole request header+body must arrive in this time
  int64_t keepalive_timeout_ms = 75000;  // idle keep-alive connection
  int64_t client_write_timeout_ms = 30000;
  int64_t drain_timeout_ms = 30000;
  int64_t max_inflight_per_worker = 20000;
  int max_attempts = 2;  // upstream attempts before the first byte reached the client
  upstream::RetryBudgetSettings retry_budget;  // retries at most this share of requests
  int64_t retry_backoff_base_ms = 25;  // full-jitter backoff before retrying the same target
  int64_t retry_backoff_cap_ms = 1000;
  // When every target of a request is unavailable (breakers open, Retry-After): wait up to
  // this long for the first to recover. 0 = fail fast with 503 and Retry-After.
  int64_t unavailable_wait_ms = 0;
};

// Browsers calling the data plane directly (off by default: no origin is allowed).
struct Cors {
  std::vector<std::string> allowed_origins;  // exact origins ("https://app.example.com"), or "*"
  int64_t max_age_s = 600;                   // how long a browser may cache a preflight
  bool enabled() const { return !allowed_origins.empty(); }
};

// Responses API answers kept for previous_response_id and GET /v1/responses/{id}.
struct ResponsesStore {
  int64_t max_bytes = 64 << 20;
  int64_t ttl_s = 24 * 3600;
};

// What the gateway's own flags (release flags, kill switches) are evaluated with: the
// authenticated tenant, the route, the model and API asked for, the body's `user` (the
// targeting key, else the tenant), and only the request headers listed here (a header
// becomes the context attribute of its lower-case name). A client cannot set `tenant`.
struct FlagsConfig {
  std::vector<std::string> context_headers;
};

// The autoscaling signal (`GET /metrics/scale`, src/scale): targets per replica and the
// suggested replica count's bounds and stabilization (docs/autoscaling.md).
struct Autoscale {
  double target_tokens_in_flight = 0;  // 0: signal unused
  double target_queue = 0;
  double ttft_p99_slo_ms = 0;
  int64_t ttft_window_s = 60;
  int min_replicas = 1, max_replicas = 100;
  int64_t scale_down_stabilization_s = 300, scale_up_stabilization_s = 0;
  double tolerance = 0.1;
};

struct RequestLog {
  bool enabled = true;
  std::string path;  // default <data_dir>/requests.jsonl
  int64_t queue_capacity = 65536;
  // Also log each chat request's body and the answer text (request_body, response_text),
  // e.g. for `sluice eval add-case`. Off by default: bodies can hold personal data.
  bool bodies = false;
};

// telemetry.otlp: OpenTelemetry traces to a collector (otel/, docs/observability.md).
// Off (no filter in the chain) unless an endpoint is set.
struct Otlp {
  std::string endpoint;  // http://host:port[/base]; spans go to {endpoint}/v1/traces
  double sample_ratio = 1.0;
  int64_t batch_size = 256;
  int64_t flush_interval_ms = 1000;
  int64_t queue_size = 4096;
  int64_t timeout_ms = 2000;
  std::vector<std::pair<std::string, std::string>> headers;  // values may be env:NAME
  bool include_bodies = false;
  int64_t max_body_bytes = 4096;  // bodies kept in a span are cut here
  bool enabled() const { return !endpoint.empty(); }
};
struct Telemetry {
  Otlp otlp;
};

// shared_limits: the tenants' rpm and tpm buckets shared by every replica through Redis
// (src/sharedlimits, docs/replicas.md). Off unless `redis` is set; read once at start.
struct SharedLimits {
  std::string redis;      // as written: redis://host[:port] or unix:/path/to/redis.sock
  std::string host;       // parsed from `redis` (TCP)
  int port = 6379;
  std::string unix_path;  // parsed from `redis` (unix:)
  bool fail_open = true;  // on_unavailable: fail_open (local share) | fail_closed (503)
  std::string key_prefix = "sluice:";
  int64_t connect_timeout_ms = 200;
  int64_t command_timeout_ms = 100;
  int64_t sync_interval_ms = 5;     // leases and returns, batched in one round trip
  double slice_fraction = 0.005;    // the most a replica leases ahead, as a fraction of a limit
  int64_t heartbeat_ms = 1000;      // replicas count each other (a replica expires after 3 beats)
  bool enabled() const { return !redis.empty(); }
};

// replica: this process among several sharing one store (docs/replicas.md). Read at start.
struct Replica {
  std::string id;                    // unique among replicas; default host/pid/random
  int64_t controller_lease_ms = 5000;  // a silent rollout controller is replaced after this
};

struct Config {
  std::string source;  // file it came from, or "<flags>"
  std::string listen = "127.0.0.1:8080";
  std::string admin_listen = "127.0.0.1:8081";
  int threads = 0;  // 0 = number of cores
  std::string data_dir = "./sluice-data";
  // Where the store lives: a postgres:// URL (several replicas share it) or a SQLite file
  // path; empty means <data_dir>/sluice.db. $SLUICE_STORE_URL overrides it. Read at start.
  std::string store;
  Replica replica;
  bool allow_public_unauthenticated = false;
  Limits limits;
  RequestLog request_log;
  std::vector<Upstream> upstreams;
  std::vector<Pool> pools;
  std::vector<Route> routes;
  std::vector<Fallback> fallbacks;
  std::vector<LongContext> long_context;
  ResponseCacheConfig response_cache;
  Cors cors;
  ResponsesStore responses;
  FlagsConfig flags;
  Autoscale autoscale;
  Telemetry telemetry;
  SharedLimits shared_limits;
  std::vector<ApiKey> api_keys;
  std::vector<Tenant> tenants;
  // Every request needs a key even when none is usable (the store has tenants or keys, all
  // revoked): revoking the last key must not open the gateway to anonymous requests.
  bool require_api_key = false;
  std::vector<AdminToken> admin_tokens;
  // alarms: rules over windows and their actions (alarm/rules.hpp, docs/alarms.md).
  std::shared_ptr<const std::vector<alarm::Rule>> alarms;
  // Routes whose answers are checked for refusals for some alarm ("*": every route).
  std::vector<std::string> alarm_refusal_routes;
};

}  // namespace sluice::config
