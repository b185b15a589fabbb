// gateway/worker.hpp: one data-plane worker thread: its own event loop, acceptor, snapshot
// cache, metric shard, JSON parser and upstream connection pools. Workers share nothing
// mutable but the snapshot store and the request log queues.
#pragma once
#include <simdjson.h>

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <optional>
#include <random>
#include <span>

#include "config/snapshot.hpp"
#include "core/ids.hpp"
#include "gateway/forward.hpp"
#include "pipeline/context.hpp"
#include "pipeline/filter.hpp"
#include "metrics/metrics.hpp"
#include "net/asio.hpp"
#include "net/session.hpp"
#include "net/upstream.hpp"
#include "rollout/experiment.hpp"
#include "rollout/sink.hpp"
#include "admission/limiter.hpp"
#include "cache/response_cache.hpp"
#include "upstream/balancer.hpp"
#include "upstream/health.hpp"
#include "upstream/retry.hpp"
#include "scale/monitor.hpp"
#include "incident/ring.hpp"
#include "otel/exporter.hpp"
#include "sharedlimits/service.hpp"

namespace sluice::reqlog {
class RequestLog;
}

namespace sluice::gateway {

using pipeline::Endpoint;
using pipeline::RequestContext;

// Watches the client socket while the upstream works (see forward.cpp, arm_watch): a
// client that hangs up cancels the upstream call. A request answered within one sweep
// (25 ms) is never armed, so fast answers pay no extra system call for it.
// While a stream relays, its deadlines are plain time stamps checked by the worker's sweep
// (every 25 ms) instead of a timer re-armed per event: the per-token cost stays a store.
struct ClientWatch : std::enable_shared_from_this<ClientWatch> {
  bool active = true;
  bool armed = false;     // a readability wait is pending on the client socket
  bool swept = false;     // in the worker's list: the sweep enforces upstream_deadline
  bool gone = false;      // the client hung up
  bool shutdown = false;  // the drain deadline passed
  bool upstream_expired = false;  // the sweep cut the upstream (idle or total deadline)
  bool client_expired = false;    // the sweep cut a client that stopped reading
  net::UpstreamConn* upstream = nullptr;
  beast::tcp_stream* client = nullptr;     // set while a stream relays (the write deadline)
  beast::tcp_stream* watched = nullptr;    // the connection to arm the hang-up watch on
  Clock::time_point upstream_deadline = Clock::time_point::max();
  Clock::time_point client_deadline = Clock::time_point::max();
  // The worker's list of requests waiting on an upstream (intrusive: no allocation).
  ClientWatch* prev = nullptr;
  ClientWatch* next = nullptr;
};

// State shared by all workers (read-mostly).
struct Shared {
  config::SnapshotStore snapshots;
  // Beside the snapshots, outliving reloads: what was learned about each upstream (breaker,
  // Retry-After, load in flight) and the retry budget shared by all workers.
  upstream::Registry upstream_health;
  upstream::RetryBudget retry_budget;
  cache::ResponseCache response_cache;  // opt-in per route (response_cache.routes)
  cache::ResponseCache last_good{16 << 20};  // routes whose fallback chain has {last_good: true}
  cache::ResponseCache responses{64 << 20};  // Responses API answers (previous_response_id), per tenant
  bridge::Journal responses_journal;         // ...on their way to the store (the control thread writes)
  admission::Registry tenant_limits;         // each tenant's rate limit buckets (config `tenants`)
  std::unique_ptr<metrics::Registry> metrics;
  std::unique_ptr<reqlog::RequestLog> reqlog;
  std::unique_ptr<otel::Exporter> otel;  // telemetry.otlp (set at start; null when off)
  std::unique_ptr<sharedlimits::Service> shared_limits;  // shared_limits (Redis; set at start; null when off)
  std::atomic<bool> draining{false};
  std::atomic<bool> ready{false};
  // The store is reachable and the snapshot is up to date with it (set by the control
  // thread; false while a replica is cut off from PostgreSQL: it serves its last snapshot).
  std::atomic<bool> store_current{true};
  std::atomic<int64_t> store_lost_ms{0};  // unix ms when it was last found unreachable (0: never)
  std::unique_ptr<rollout::Sink> rollout_sink;  // finished requests of routes under a rollout
  rollout::ExperimentBook experiments;          // release flags' variants compared (flag readouts)
  incident::Hub incident;  // breaker changes and reloads for the incident timeline; readiness gauges
  // Rollout gauges for /metrics, rendered by the control thread (workers only copy it).
  std::mutex rollout_metrics_mu;
  std::string rollout_metrics;
  std::string alarm_metrics;  // sluice_alarm_* (gateway/alarms_admin.hpp), under rollout_metrics_mu
  // The autoscaling signal: ticked by the control thread once a second (gateway/scale_view.hpp).
  scale::Monitor scale;
};

class Worker : public net::IdleConnections {
 public:
  Worker(Shared& shared, size_t index);

  // net::run_session handler interface.
  awaitable<bool> handle(beast::tcp_stream& stream, beast::flat_buffer& buf, http::request<http::string_body>& req);
  std::string next_request_id() { return ids_.next(); }
  net::SessionLimits limits();
  // A request refused before it reached handle() (413, 431, malformed HTTP): still accounted.
  void rejected(int status, std::string_view code, std::string_view request_id);
  // Drain deadline passed: end every stream still relaying with an error event.
  void abort_streams();
  // Enforces the deadlines of ClientWatch and arms hang-up watches; re-arms itself while
  // any request is linked.
  void sweep_deadlines();
  bool draining() const { return shared_.draining.load(std::memory_order_relaxed); }


  asio::io_context ioc{1};                // declared first: destroyed after everything using it
  std::optional<tcp::acceptor> acceptor;  // owned here so drain can close it on this thread
  size_t index;

 private:
  awaitable<bool> handle_other(beast::tcp_stream& stream, http::request<http::string_body>& req, std::string_view path);
  awaitable<bool> proxy(beast::tcp_stream& client, http::request<http::string_body>& req, Endpoint endpoint,
                        bridge::Api api = bridge::Api::kChat, std::span<const net::Header> cors = {});
  awaitable<bool> respond(beast::tcp_stream& client, http::request<http::string_body>& req, http::status status,
                          std::string body, std::string_view content_type, std::string_view request_id,
                          std::span<const net::Header> extra = {});
  awaitable<bool> respond_error(beast::tcp_stream& client, http::request<http::string_body>& req, const ApiError& e,
                                std::string_view request_id, std::span<const net::Header> extra = {},
                                bridge::Api api = bridge::Api::kChat);
  // The filters of a snapshot (compiled once per snapshot, kept beside it). A request holds
  // its own reference: a reload while it runs must not free the chain under it.
  std::shared_ptr<const pipeline::Chain> chain_for(const std::shared_ptr<const config::Snapshot>& snap);
  // A finished request: the completion hooks of the chain (metrics, request log, rollout).
  void account(RequestContext& ctx, const pipeline::Chain& chain);
  void account(RequestContext& ctx) { account(ctx, *chain_for(snaps_.get())); }
  awaitable<void> shadow(pipeline::ShadowJob job);
  // The attempt loop every upstream call goes through (gateway/forward.cpp).
  awaitable<ForwardResult> forward(const config::Snapshot& snap, const ForwardSpec& spec, ClientWatch& watch);
  // Reads the rest of a whole (non-streamed) answer within the upstream's idle and total
  // deadlines; the connection goes back to its pool when it can be reused.
  awaitable<error_code> read_body(Exchange& ex, std::string& body, Clock::time_point deadline);
  // Sends the upstream's answer to the client, calling the chain's response hooks as it
  // passes (gateway/relay.cpp): whole answers, and SSE streams event by event.
  awaitable<bool> relay(beast::tcp_stream& client, http::request<http::string_body>& req, RequestContext& ctx,
                        const pipeline::Chain& chain, Exchange& ex, ClientWatch& watch,
                        std::span<const net::Header> lineage, bool keep_alive);
  awaitable<bool> relay_stream(beast::tcp_stream& client, http::request<http::string_body>& req, RequestContext& ctx,
                               const pipeline::Chain& chain, Exchange& ex, ClientWatch& watch,
                               std::span<const net::Header> lineage, bool keep_alive);
  awaitable<void> sleep_for(std::chrono::milliseconds d);
  void own_response(const RequestContext& ctx, std::string_view json);
 public:
  // One whole (non-streamed) call through the forwarder, from another thread: the
  // blue-green warm-up probe. Blocks until done; "" on a 2xx, else what went wrong.
  std::string call_blocking(const std::string& target, std::string_view method, std::string_view path,
                            std::string body, std::chrono::milliseconds timeout);
  // One active health check of upstream `i` (a one-token completion through the forwarder,
  // whatever its breaker says); the result goes to its Health (record_check).
  awaitable<void> check_health(std::shared_ptr<const config::Snapshot> snap, size_t i);
  // The check itself, recorded nowhere: "" when upstream `i` answered a one-token completion
  // of `model` within `timeout_ms`, else what went wrong (also rollback readiness probes).
  awaitable<std::string> deep_check(std::shared_ptr<const config::Snapshot> snap, size_t i, std::string model,
                                    int64_t timeout_ms);
  // Reads upstream `i`'s own load report (load_metrics) into its Health.
  awaitable<void> poll_load(std::shared_ptr<const config::Snapshot> snap, size_t i);
 private:
  awaitable<bool> feedback(beast::tcp_stream& client, http::request<http::string_body>& req);
  // GET /v1/models and /v1/models/{id} (OpenAI or Anthropic shape); GET and DELETE /v1/responses/{id}.
  awaitable<bool> models(beast::tcp_stream& client, http::request<http::string_body>& req, std::string_view id,
                         std::span<const net::Header> cors);
  // OFREP: POST /ofrep/v1/evaluate/flags[/{key}] (flags/ofrep.hpp), for the tenant of the key.
  awaitable<bool> ofrep(beast::tcp_stream& client, http::request<http::string_body>& req, std::string_view path,
                        std::span<const net::Header> cors);
  awaitable<bool> stored_response(beast::tcp_stream& client, http::request<http::string_body>& req,
                                  std::string_view id, std::span<const net::Header> cors);
  void account_local(int status, std::string_view code, std::string request_id, Clock::time_point t_start,
                     const std::string& model = {});
  net::UpstreamPool& pool_for(const config::UpstreamRuntime& u);

  Shared& shared_;
  config::SnapshotCache snaps_;
  metrics::Shard& metrics_;
  RequestIdGenerator ids_;
  simdjson::dom::parser json_;
  std::unordered_map<std::string, std::unique_ptr<net::UpstreamPool>> pools_;
  ClientWatch* watches_ = nullptr;  // requests waiting on an upstream (a list through ClientWatch)
 public:
  void watch(const std::shared_ptr<ClientWatch>& w);  // links w and makes sure the sweep runs
  void unwatch(ClientWatch& w);  // unlinks w and cancels its hang-up wait
 private:
  std::unique_ptr<asio::steady_timer> sweep_;
  bool sweeping_ = false;
  int64_t shadow_inflight_ = 0;
  uint64_t balance_seq_ = 0;   // round robin
  std::mt19937_64 rng_{std::random_device{}()};  // power of two choices, backoff jitter
  std::shared_ptr<const config::Snapshot> chain_snap_;  // the snapshot chain_ was compiled for
  std::shared_ptr<const pipeline::Chain> chain_;
  pipeline::Env env_;
};

// Shared response helpers for the data plane and admin listeners.
// GET /v1/models: the route names (only those a tenant may call, when it is given).
std::string models_json(const config::Snapshot& snap, const config::Tenant* tenant = nullptr);

}  // namespace sluice::gateway
