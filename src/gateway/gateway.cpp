// gateway/gateway.cpp: process wiring for `sluice serve`: config load and reload, data
// directory and admin token, worker threads, admin listener, signals, graceful drain.
#include "gateway/gateway.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "config/loader.hpp"
#include "control/releases.hpp"
#include "control/flags.hpp"
#include "control/tenants.hpp"
#include "flags/ofrep.hpp"
#include "store/store.hpp"
#include "core/crypto.hpp"
#include "core/json_object.hpp"
#include "core/memory.hpp"
#include "gateway/admin.hpp"
#include "gateway/incident_admin.hpp"
#include "gateway/alarms_admin.hpp"
#include "pipeline/stages.hpp"
#include "gateway/upstreams_view.hpp"
#include "gateway/scale_view.hpp"
#include "gateway/tenants_view.hpp"
#include "gateway/worker.hpp"
#include "net/listener.hpp"
#include "reqlog/request_log.hpp"
#include "pipeline/otel_filter.hpp"
#include "rollout/controller.hpp"
#include "json/splice.hpp"
#include "net/http_client.hpp"

namespace sluice::gateway {

// ---------------------------------------------------------------- Worker (dispatch)

Worker::Worker(Shared& shared, size_t idx)
    : index(idx), shared_(shared), snaps_(shared.snapshots), metrics_(shared.metrics->shard(idx)),
      ids_(static_cast<uint32_t>(idx)),
      env_{json_, metrics_, idx, 0, shared.reqlog.get(), shared.rollout_sink.get(), &shared.response_cache, {}} {
  env_.last_good = &shared.last_good;
  env_.responses.cache = &shared.responses;
  env_.responses.journal = &shared.responses_journal;  // per request: off when the store keeps nothing
  env_.limits = &shared.tenant_limits;
  env_.experiments = &shared.experiments;
  env_.otel = shared.otel.get();
  // A queued request sleeps on its timer; a grant from any worker cancels it here.
  env_.make_waiter = [this] {
    auto w = std::make_shared<admission::Waiter>();
    auto timer = std::make_shared<asio::steady_timer>(ioc);
    w->io = timer;
    w->wake = [timer, ex = ioc.get_executor()] { asio::post(ex, [timer] { timer->cancel(); }); };
    return w;
  };
  env_.mirror = [this](pipeline::ShadowJob&& job, int64_t max_inflight) {
    if (shadow_inflight_ >= max_inflight) return false;
    ++shadow_inflight_;
    asio::co_spawn(ioc, shadow(std::move(job)), asio::detached);
    return true;
  };
}

std::shared_ptr<const pipeline::Chain> Worker::chain_for(const std::shared_ptr<const config::Snapshot>& snap) {
  if (snap != chain_snap_ || !chain_) {
    chain_ = pipeline::Chain::compile(*snap);
    chain_snap_ = snap;  // held, so a new snapshot can never reuse its address
  }
  return chain_;
}

void Worker::account(RequestContext& ctx, const pipeline::Chain& chain) {
  chain.on_complete(ctx, Clock::now(), env_);
}

awaitable<bool> Worker::respond(beast::tcp_stream& client, http::request<http::string_body>& req, http::status status,
                                std::string body, std::string_view content_type, std::string_view request_id,
                                std::span<const net::Header> extra) {
  bool keep = req.keep_alive() && !draining();
  client.expires_after(limits().write_timeout);
  error_code ec = co_await net::write_response(client, status, std::move(body), content_type, request_id, keep,
                                               req.version(), extra);
  client.expires_never();
  co_return !ec && keep;
}

awaitable<bool> Worker::respond_error(beast::tcp_stream& client, http::request<http::string_body>& req,
                                      const ApiError& e, std::string_view request_id,
                                      std::span<const net::Header> extra, bridge::Api api) {
  return respond(client, req, static_cast<http::status>(e.status), bridge::error_json(api, e), "application/json",
                 request_id, extra);
}

std::string models_json(const config::Snapshot& snap, const config::Tenant* tenant) {
  std::string out = "{\"object\":\"list\",\"data\":[";
  bool first = true;
  for (const auto& m : snap.model_names()) {
    if (tenant && !tenant->routes.empty() && std::find(tenant->routes.begin(), tenant->routes.end(), m) == tenant->routes.end())
      continue;  // a tenant sees only the routes it may call
    if (!first) out.push_back(',');
    first = false;
    out += "{\"id\":";
    append_json_string(out, m);
    out += ",\"object\":\"model\",\"created\":0,\"owned_by\":\"sluice\"}";
  }
  out += "]}";
  return out;
}

net::SessionLimits Worker::limits() {
  const config::Limits& l = snaps_.get()->config().limits;
  net::SessionLimits s;
  s.max_body_bytes = static_cast<uint64_t>(l.max_body_bytes);
  s.max_header_bytes = static_cast<uint32_t>(l.max_header_bytes);
  s.header_timeout = std::chrono::milliseconds(l.header_timeout_ms);
  s.keepalive_timeout = std::chrono::milliseconds(l.keepalive_timeout_ms);
  s.write_timeout = std::chrono::milliseconds(l.client_write_timeout_ms);
  return s;
}

void Worker::account_local(int status, std::string_view code, std::string request_id, Clock::time_point t_start,
                           const std::string& model) {
  RequestContext ctx;
  ctx.request_id = std::move(request_id);
  ctx.t_start = t_start;
  ctx.status = status;
  ctx.error = kind_of(code);
  ctx.error_code = std::string(code);
  ctx.info.model = model;
  account(ctx);
}

void Worker::rejected(int status, std::string_view code, std::string_view request_id) {
  account_local(status, code, std::string(request_id), Clock::now());
}

// The proxied endpoints go straight to proxy(): this frame stays as long as a stream it
// serves, so everything else (and its locals) is in handle_other's frame.
awaitable<bool> Worker::handle(beast::tcp_stream& stream, beast::flat_buffer&, http::request<http::string_body>& req) {
  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find('?'));
  if (req.method() == http::verb::post && req[http::field::origin].empty()) {
    if (path == "/v1/chat/completions") co_return co_await proxy(stream, req, Endpoint::kChat);
    if (path == "/v1/embeddings") co_return co_await proxy(stream, req, Endpoint::kEmbeddings);
    if (path == "/v1/responses") co_return co_await proxy(stream, req, Endpoint::kChat, bridge::Api::kResponses);
    if (path == "/v1/messages") co_return co_await proxy(stream, req, Endpoint::kChat, bridge::Api::kMessages);
    if (path == "/v1/completions") co_return co_await proxy(stream, req, Endpoint::kCompletions);
  }
  co_return co_await handle_other(stream, req, path);
}

namespace {

// The CORS headers a browser's request from `origin` gets (none when it is not allowed).
std::vector<net::Header> cors_headers(const config::Cors& cors, std::string_view origin) {
  if (origin.empty() || !cors.enabled()) return {};
  const bool any = std::find(cors.allowed_origins.begin(), cors.allowed_origins.end(), "*") != cors.allowed_origins.end();
  if (!any && std::find(cors.allowed_origins.begin(), cors.allowed_origins.end(), origin) == cors.allowed_origins.end())
    return {};
  return {{"Access-Control-Allow-Origin", any ? std::string_view("*") : origin},
          {"Vary", "Origin"},
          {"Access-Control-Expose-Headers",
           "x-request-id, request-id, x-sluice-release, x-sluice-prompt, x-sluice-upstream, x-sluice-fallback, "
           "x-sluice-cache, x-sluice-degraded, x-sluice-overflow, x-ratelimit-limit-requests, "
           "x-ratelimit-remaining-requests, x-ratelimit-reset-requests, x-ratelimit-limit-tokens, "
           "x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens, retry-after, retry-after-ms, x-sluice-flags, etag"}};
}

// "%2F" and friends in a path segment (the SDKs encode a model id like "org/model"); a
// malformed escape leaves the segment as it came.
std::string percent_decoded(std::string_view s) { return percent_decode(s).value_or(std::string(s)); }

std::string model_json(std::string_view id) {
  std::string out = "{\"id\":";
  append_json_string(out, id);
  out += ",\"object\":\"model\",\"created\":0,\"owned_by\":\"sluice\"}";
  return out;
}

}  // namespace

awaitable<bool> Worker::handle_other(beast::tcp_stream& stream, http::request<http::string_body>& req,
                                     std::string_view path) {
  const bool post = req.method() == http::verb::post;
  const bool get = req.method() == http::verb::get;
  const auto t_start = Clock::now();
  const std::string_view origin = req[http::field::origin];
  std::vector<net::Header> cors;
  if (!origin.empty()) {
    const config::Cors& cc = snaps_.get()->config().cors;
    cors = cors_headers(cc, origin);
    if (req.method() == http::verb::options) {  // a browser's preflight
      std::string id = ids_.next();
      if (cors.empty()) {
        ApiError e{403, "invalid_request_error", "cors_origin_not_allowed",
                   "Origin '" + std::string(origin) + "' may not call this gateway from a browser" +
                       (cc.enabled() ? std::string(" (it is not in cors.allowed_origins)")
                                     : std::string(" (CORS is off: set cors.allowed_origins)"))};
        co_return co_await respond_error(stream, req, e, id);
      }
      std::string_view asked = req[http::field::access_control_request_headers];
      const std::string max_age = std::to_string(cc.max_age_s);
      cors.push_back({"Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS"});
      cors.push_back({"Access-Control-Allow-Headers",
                      asked.empty() ? std::string_view("authorization, content-type, x-api-key, anthropic-version")
                                    : asked});
      cors.push_back({"Access-Control-Max-Age", max_age});
      co_return co_await respond(stream, req, http::status::no_content, "", "text/plain", id, cors);
    }
  }
  if (post) {
    // Browser requests (with an Origin) come here so their answers carry the CORS headers.
    Endpoint e = Endpoint::kChat;
    bridge::Api api = bridge::Api::kChat;
    bool proxied = true;
    if (path == "/v1/chat/completions") {
    } else if (path == "/v1/embeddings") {
      e = Endpoint::kEmbeddings;
    } else if (path == "/v1/responses") {
      api = bridge::Api::kResponses;
    } else if (path == "/v1/messages") {
      api = bridge::Api::kMessages;
    } else if (path == "/v1/completions") {
      e = Endpoint::kCompletions;
    } else {
      proxied = false;
    }
    if (proxied) co_return co_await proxy(stream, req, e, api, cors);
  }
  if (path == "/v1/feedback" && post) co_return co_await feedback(stream, req);
  if (path.starts_with("/ofrep/v1/evaluate/flags")) co_return co_await ofrep(stream, req, path, cors);
  if (path.starts_with("/v1/models/") && get) co_return co_await models(stream, req, path.substr(11), cors);
  if (path.starts_with("/v1/responses/") && (get || req.method() == http::verb::delete_))
    co_return co_await stored_response(stream, req, path.substr(14), cors);
  if (path == "/v1/models" && get) co_return co_await models(stream, req, "", cors);
  std::string id = ids_.next();
  if (get) {
    // Probes and scrapes carry a request id but are not request-log entries.
    if (auto ops = ops_endpoint(shared_, path))
      co_return co_await respond(stream, req, ops->status, std::move(ops->body), ops->content_type, id);
  }
  bool known = path == "/v1/chat/completions" || path == "/v1/embeddings" || path == "/v1/models" ||
               path == "/v1/responses" || path == "/v1/messages" || path == "/v1/completions";
  ApiError e = known ? ApiError{405, "invalid_request_error", "method_not_allowed",
                                "Method " + std::string(req.method_string()) + " is not allowed on " + std::string(path)}
                     : not_found("Unknown request URL: " + std::string(req.method_string()) + " " + std::string(path),
                                 "unknown_url");
  account_local(e.status, e.code, id, t_start);
  co_return co_await respond_error(stream, req, e, id, cors,
                                   path == "/v1/messages" ? bridge::Api::kMessages : bridge::Api::kChat);
}

// OFREP. Evaluated on the worker from the snapshot's flags: no I/O but the answer.
awaitable<bool> Worker::ofrep(beast::tcp_stream& stream, http::request<http::string_body>& req, std::string_view path,
                              std::span<const net::Header> cors) {
  auto snap = snaps_.get();
  std::string id = ids_.next();
  std::vector<net::Header> headers(cors.begin(), cors.end());
  constexpr std::string_view kBase = "/ofrep/v1/evaluate/flags";
  std::string_view rest = path.substr(kBase.size());
  std::optional<std::string> key;
  if (!rest.empty()) {
    if (rest[0] == '/' && rest.size() > 1) key = percent_decode(rest.substr(1));
    if (!key || key->empty()) {
      co_return co_await respond(stream, req, http::status::not_found,
                                 flags::ofrep::error_body("GENERAL", "unknown OFREP path " + std::string(path)),
                                 "application/json", id, headers);
    }
  }
  if (req.method() != http::verb::post) {
    headers.push_back({"Allow", "POST"});
    co_return co_await respond(stream, req, http::status::method_not_allowed,
                               flags::ofrep::error_body("GENERAL", "OFREP evaluations are POST requests"),
                               "application/json", id, headers);
  }
  RequestContext ctx;
  ctx.snap = snap.get();
  ctx.authorization = req[http::field::authorization];
  if (auto err = pipeline::authenticate(ctx, env_)) {
    co_return co_await respond(stream, req, static_cast<http::status>(err->status),
                               flags::ofrep::error_body("GENERAL", err->message), "application/json", id, headers);
  }
  const int64_t now_s = unix_millis() / 1000;
  flags::ofrep::Answer a =
      key ? flags::ofrep::evaluate_one(snap->flags(), *key, req.body(), ctx.tenant, now_s)
          : flags::ofrep::evaluate_all(snap->flags(), req.body(), ctx.tenant, req[http::field::if_none_match], now_s);
  metrics_.ofrep_evaluations.fetch_add(1, std::memory_order_relaxed);
  if (!a.etag.empty()) headers.push_back({"ETag", a.etag});
  co_return co_await respond(stream, req, static_cast<http::status>(a.status), std::move(a.body),
                             a.status == 304 ? std::string_view() : std::string_view("application/json"), id, headers);
}

// GET /v1/models and /v1/models/{id}: the routes a key may call. A request with an
// anthropic-version header is an Anthropic client: its key may come in x-api-key and the
// answer (and any error) has Anthropic's shape.
awaitable<bool> Worker::models(beast::tcp_stream& stream, http::request<http::string_body>& req, std::string_view raw_id,
                               std::span<const net::Header> cors) {
  const auto t_start = Clock::now();
  auto snap = snaps_.get();
  // A gateway without routes passes its upstream's catalogue through: the list, or one plain
  // model id (no '/', '%' or dot segments: the upstream's other paths stay out of reach).
  if (snap->passthrough() && snap->model_names().empty()) {
    const bool plain = raw_id != "." && raw_id != ".." &&
                       std::all_of(raw_id.begin(), raw_id.end(), [](char c) {
                         return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == ':';
                       });
    if (plain) co_return co_await proxy(stream, req, Endpoint::kModels, bridge::Api::kChat, cors);
    ApiError e = not_found("The model '" + std::string(raw_id) + "' does not exist or you do not have access to it.",
                           "model_not_found");
    std::string id = ids_.next();
    account_local(e.status, e.code, id, t_start);
    co_return co_await respond_error(stream, req, e, id, cors);
  }
  const bool anthropic = !req["anthropic-version"].empty();
  const bridge::Api api = anthropic ? bridge::Api::kMessages : bridge::Api::kChat;
  RequestContext ctx;
  ctx.snap = snap.get();
  ctx.authorization = req[http::field::authorization];
  std::string key_header;
  if (anthropic && ctx.authorization.empty() && !req["x-api-key"].empty()) {
    key_header = "Bearer " + std::string(req["x-api-key"]);
    ctx.authorization = key_header;
  }
  std::string id = ids_.next();
  if (auto err = pipeline::authenticate(ctx, env_)) {
    account_local(err->status, err->code, id, t_start);
    co_return co_await respond_error(stream, req, *err, id, cors, api);
  }
  const config::Tenant* t = ctx.tenant.empty() ? nullptr : snap->tenant_limits(ctx.tenant);
  auto visible = [&](const std::string& m) {
    return !t || t->routes.empty() || std::find(t->routes.begin(), t->routes.end(), m) != t->routes.end();
  };
  auto one = [&](const std::string& m) {
    std::string o;
    if (anthropic) {
      o = "{\"type\":\"model\",\"id\":";
      append_json_string(o, m);
      o += ",\"display_name\":";
      append_json_string(o, m);
      return o + ",\"created_at\":\"1970-01-01T00:00:00Z\"}";
    }
    return model_json(m);
  };
  std::string body;
  if (raw_id.empty()) {
    if (!anthropic) {
      body = models_json(*snap, t);
    } else {
      std::vector<std::string> names;
      for (const auto& m : snap->model_names())
        if (visible(m)) names.push_back(m);
      body = "{\"data\":" + json_array(names, one) + ",\"has_more\":false,\"first_id\":";
      append_json_string(body, names.empty() ? std::string() : names.front());
      body += ",\"last_id\":";
      append_json_string(body, names.empty() ? std::string() : names.back());
      body += "}";
    }
  } else {
    const std::string model = percent_decoded(raw_id);
    const auto& names = snap->model_names();
    if (std::find(names.begin(), names.end(), model) == names.end() || !visible(model)) {
      ApiError e = not_found("The model '" + model + "' does not exist or you do not have access to it.", "model_not_found");
      e.param = "model";
      account_local(e.status, e.code, id, t_start, model);
      co_return co_await respond_error(stream, req, e, id, cors, api);
    }
    body = one(model);
  }
  account_local(200, "", id, t_start);
  co_return co_await respond(stream, req, http::status::ok, std::move(body), "application/json", id, cors);
}

awaitable<bool> Worker::stored_response(beast::tcp_stream& stream, http::request<http::string_body>& req,
                                        std::string_view raw_id, std::span<const net::Header> cors) {
  const auto t_start = Clock::now();
  auto snap = snaps_.get();
  RequestContext ctx;
  ctx.snap = snap.get();
  ctx.authorization = req[http::field::authorization];
  std::string id = ids_.next();
  if (auto err = pipeline::authenticate(ctx, env_)) {
    account_local(err->status, err->code, id, t_start);
    co_return co_await respond_error(stream, req, *err, id, cors);
  }
  const std::string rid = percent_decoded(raw_id);
  const std::string key = bridge::store_key(ctx.tenant, rid);
  std::optional<std::string> body;
  if (req.method() == http::verb::delete_) {
    // Deleted from the store too, even when it was no longer in memory (evicted).
    shared_.responses_journal.deleted(ctx.tenant, rid);
    if (shared_.responses.erase(key)) {
      body = "{\"id\":";
      append_json_string(*body, rid);
      *body += ",\"object\":\"response\",\"deleted\":true}";
    }
  } else {
    body = bridge::stored_response(json_, env_.responses, key, unix_millis());
  }
  if (!body) {
    ApiError e = not_found("Response with id '" + rid + "' not found.", "response_not_found");
    account_local(e.status, e.code, id, t_start);
    co_return co_await respond_error(stream, req, e, id, cors);
  }
  account_local(200, "", id, t_start);
  co_return co_await respond(stream, req, http::status::ok, std::move(*body), "application/json", id, cors);
}

std::optional<OpsResponse> ops_endpoint(Shared& shared, std::string_view path) {
  if (path == "/healthz") return OpsResponse{http::status::ok, "{\"status\":\"ok\"}\n", "application/json"};
  if (path == "/readyz" || path == "/readyz/changes") {
    auto snap = shared.snapshots.current();
    bool ready = shared.ready.load() && !shared.draining.load() && snap && !snap->upstreams().empty();
    // Cut off from the store, a replica still serves its last snapshot (ready for traffic)
    // but is not ready for changes: /readyz says so, /readyz/changes answers 503.
    const bool current = shared.store_current.load();
    std::string body = std::string("{\"ready\":") + (ready ? "true" : "false") +
                       ",\"draining\":" + (shared.draining.load() ? "true" : "false") +
                       ",\"ready_for_changes\":" + (current ? "true" : "false") +
                       ",\"config_version\":" + std::to_string(snap ? snap->version() : 0);
    if (!current) body += ",\"store_unreachable_since_ms\":" + std::to_string(shared.store_lost_ms.load());
    if (shared.shared_limits) body += ",\"shared_limits\":" + shared.shared_limits->status_json();
    body += "}\n";
    if (path == "/readyz/changes") ready = ready && current;
    return OpsResponse{ready ? http::status::ok : http::status::service_unavailable, std::move(body), "application/json"};
  }
  // The autoscaling signal (KEDA's metrics-api scaler; docs/autoscaling.md).
  if (path == "/metrics/scale") return OpsResponse{http::status::ok, scale_json(shared, unix_millis()), "application/json"};
  if (path == "/metrics") {
    std::string body = shared.metrics->render_prometheus();
    {
      std::lock_guard<std::mutex> lock(shared.rollout_metrics_mu);
      body += shared.rollout_metrics;
      body += shared.alarm_metrics;
    }
    if (auto snap = shared.snapshots.current()) {
      body += upstreams_prometheus(*snap, shared.retry_budget, unix_millis());
      body += tenants_prometheus(*snap, shared.tenant_limits, unix_millis());
    }
    body += shared.incident.metrics();
    body += response_cache_prometheus(shared.response_cache);
    body += responses_store_prometheus(shared.responses, shared.responses_journal.dropped());
    if (shared.otel) body += shared.otel->prometheus();
    if (shared.shared_limits) body += shared.shared_limits->prometheus();
    return OpsResponse{http::status::ok, std::move(body), "text/plain; version=0.0.4"};
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- Gateway

struct Gateway::Impl {
  Options opts;
  Shared shared;
  std::vector<std::unique_ptr<Worker>> workers;
  std::atomic<bool> workers_running{false};  // workers exist and run their loops (warm-up probes wait for it)
  std::vector<std::thread> threads;
  asio::io_context control{1};
  std::unique_ptr<AdminHandler> admin;
  std::optional<tcp::acceptor> admin_acceptor;
  uint64_t next_version = 1;
  std::unique_ptr<store::Store> store;   // releases and routes; the control thread's only
  uint64_t store_seen = 0;               // store change counter behind the current snapshot
  config::Config base;                   // the file's config (and flags), before the store's tenants join it
  std::unique_ptr<asio::steady_timer> spend_timer;
  std::unique_ptr<asio::steady_timer> store_poll;
  std::unique_ptr<rollout::Controller> rollouts;  // runs rollouts on the control thread
  std::unique_ptr<AlarmDesk> alarms;  // alarm rules evaluated once a second (destroyed before rollouts)
  std::unique_ptr<IncidentDesk> incident;         // timeline events to the store, rollback readiness
  std::unique_ptr<asio::steady_timer> rollout_timer;
  std::unique_ptr<asio::steady_timer> health_timer;
  std::unordered_map<std::string, int64_t> next_check_ms;  // upstream identity -> next health check
  size_t check_seq = 0;
  int64_t rollout_metrics_at = 0;

  // Reads the config file (if any) and applies command-line overrides.
  config::LoadResult load() {
    config::LoadResult r;
    if (!opts.config_path.empty()) {
      r = config::load_file(opts.config_path);
      if (!r.ok()) return r;
    } else {
      r.config.source = "<command line>";
    }
    config::Config& c = r.config;
    if (opts.listen) c.listen = *opts.listen;
    if (opts.admin_listen) c.admin_listen = *opts.admin_listen;
    if (opts.data_dir) c.data_dir = *opts.data_dir;
    if (opts.threads) c.threads = *opts.threads;
    if (opts.allow_public_unauthenticated) c.allow_public_unauthenticated = true;
    for (const auto& spec : opts.upstreams) {
      std::string err = config::add_flag_upstream(c, spec);
      if (!err.empty()) r.errors.push_back(err);
    }
    if (r.ok()) config::validate(r);
    return r;
  }

  // The store's flags as the data plane reads them, and the releases the routes' release
  // flags name, compiled into their bindings.
  std::shared_ptr<const flags::FlagSet> load_flags(std::vector<config::RouteBinding>& bindings) {
    std::string err;
    auto set = std::make_shared<const flags::FlagSet>(control::load_flags(*store, err), next_version);
    if (!err.empty()) std::cerr << "sluice: " << err;
    for (auto& b : bindings) {
      const flags::Flag* f = set->release_flag(b.route);
      if (!f) continue;
      for (const auto& [name, v] : f->variants) {
        if (!v.is_string() || v.s.empty()) continue;
        std::string why;
        if (auto c = control::compile_release(*store, v.s, why)) b.pinned.emplace_back(v.s, std::move(c));
        else std::cerr << "sluice: flag " << f->key << ", variant " << name << ": " << why << "\n";
      }
    }
    return set;
  }

  // Builds and publishes a snapshot (config + the routes' stable releases from the store);
  // returns "" or the reason it was rejected, in which case the running snapshot stays.
  std::string publish(config::Config cfg) {
    std::string err;
    std::vector<config::RouteBinding> bindings;
    config::Config file_cfg = cfg;
    uint64_t seen = store_seen;
    if (store) {
      seen = store->external_change_counter();
      bindings = control::route_bindings(*store, err);
      if (!err.empty()) std::cerr << "sluice: " << err;
      err.clear();
      if (rollouts) bindings = rollouts->bindings(bindings);
      std::vector<std::string> warnings;
      try {
        control::add_store_tenants(*store, cfg, warnings);
      } catch (const std::exception& e) {
        return std::string("reading tenants from the store: ") + e.what();
      }
      for (const auto& w : warnings) std::cerr << "sluice: warning: " << w << "\n";
    }
    bindings.insert(bindings.end(), opts.extra_bindings.begin(), opts.extra_bindings.end());
    std::shared_ptr<const flags::FlagSet> flag_set;
    if (store) flag_set = load_flags(bindings);
    // A connection lost while reading may have left routes or flags out: keep the running
    // snapshot rather than publish a partial one.
    if (store && !store->connected()) return "the store became unreachable while reading it";
    auto snap = config::Snapshot::build(std::move(cfg), next_version, err, bindings, &shared.upstream_health, flag_set);
    if (!snap) return err;  // the running snapshot, its base config and its gates stay as they were
    base = std::move(file_cfg);
    store_seen = seen;
    // A pool's gate keeps what it learned; its settings change only with a published snapshot.
    for (const auto& p : snap->config().pools)
      if (p.balance.gate) p.balance.gate->set_settings(p.admission);
    for (const auto& w : snap->warnings()) std::cerr << "sluice: warning: " << w << "\n";
    ++next_version;
    shared.retry_budget.set_settings(snap->config().limits.retry_budget);
    shared.response_cache.set_max_bytes(snap->config().response_cache.max_bytes);
    shared.last_good.set_max_bytes(snap->config().response_cache.last_good_max_bytes);
    shared.responses.set_max_bytes(snap->config().responses.max_bytes);
    shared.snapshots.publish(std::move(snap));
    return "";
  }

  // A reload, applied or rejected, is an event of the incident timeline.
  std::string reload() {
    std::string err = reload_config();
    shared.incident.events.push(incident::reload_event(opts.config_path.empty() ? "<command line>" : opts.config_path,
                                                       shared.snapshots.current()->version(), err, unix_millis()));
    return err;
  }

  std::string reload_config() {
    auto r = load();
    if (!r.ok()) {
      shared.metrics->config_reload_failures.fetch_add(1);
      std::string all;
      for (const auto& e : r.errors) all += e + "\n";
      return all;
    }
    auto current = shared.snapshots.current();
    const config::Config& old = current->config();
    if (r.config.listen != old.listen || r.config.admin_listen != old.admin_listen || r.config.threads != old.threads ||
        r.config.data_dir != old.data_dir) {
      std::cerr << "sluice: listen addresses, threads and data_dir apply at the next restart\n";
    }
    std::string err = publish(std::move(r.config));
    if (!err.empty()) {
      shared.metrics->config_reload_failures.fetch_add(1);
      return err;
    }
    shared.metrics->config_reloads.fetch_add(1);
    std::cerr << "sluice: configuration reloaded (version " << shared.snapshots.current()->version() << ")\n";
    return "";
  }

  // Re-publishes the running config with the store's current routes (after a promote or
  // rollback here, or a change another process committed).
  std::string republish() {
    std::string err = publish(base);
    if (!err.empty()) std::cerr << "sluice: store change not applied: " << err << "\n";
    return err;
  }

  void poll_store() {
    // PRAGMA data_version costs microseconds; a key revoked from the CLI stops working on
    // every worker within this interval plus one publish.
    store_poll->expires_after(std::chrono::milliseconds(10));
    store_poll->async_wait([this](error_code ec) {
      if (ec || shared.draining.load()) return;
      try {
        const uint64_t seen = store->external_change_counter();
        const bool connected = store->connected();
        if (!connected && shared.store_current.exchange(false)) {
          shared.store_lost_ms.store(unix_millis());
          std::cerr << "sluice: the store is unreachable: serving the last snapshot (version "
                    << shared.snapshots.current()->version() << ") until it returns\n";
        }
        if (connected && (seen != store_seen || !shared.store_current.load())) {
          // Back (or changed): catch up before reporting ready for changes again.
          if (republish().empty()) {
            if (rollouts) rollouts->reload();  // rollouts started or commanded from the CLI
            if (!shared.store_current.exchange(true)) std::cerr << "sluice: the store is reachable again; caught up\n";
          }
        }
      } catch (const std::exception& e) {
        if (shared.store_current.exchange(false)) {
          shared.store_lost_ms.store(unix_millis());
          std::cerr << "sluice: the store is unreachable (" << e.what() << "): serving the last snapshot\n";
        }
      }
      poll_store();
    });
  }

  // Active health checks and load reports: each upstream that asks for them gets its
  // one-token completion every interval_ms, and its /metrics read, spread over the workers
  // (each runs them through its own forwarder).
  void tick_health_checks() {
    health_timer->expires_after(std::chrono::milliseconds(100));
    health_timer->async_wait([this](error_code ec) {
      if (ec || shared.draining.load()) return;
      auto snap = shared.snapshots.current();
      const int64_t now = unix_millis();
      const auto& ups = snap->upstreams();
      for (size_t i = 0; i < ups.size(); ++i) {
        const config::HealthCheck& hc = ups[i].cfg->health_check;
        if (hc.enabled) {
          int64_t& next = next_check_ms[ups[i].identity];
          if (now >= next) {
            next = now + std::max(hc.interval_ms, hc.timeout_ms);
            Worker& w = *workers[check_seq++ % workers.size()];
            asio::co_spawn(w.ioc, w.check_health(snap, i), asio::detached);
          }
        }
        const config::LoadMetrics& lm = ups[i].cfg->load_metrics;
        if (lm.enabled) {
          int64_t& next = next_check_ms[ups[i].identity + "\x1fload"];
          if (now >= next) {
            next = now + lm.interval_ms;
            Worker& w = *workers[check_seq++ % workers.size()];
            asio::co_spawn(w.ioc, w.poll_load(snap, i), asio::detached);
          }
        }
      }
      tick_health_checks();
    });
  }

  // Each tenant's spend since the last flush goes to the store once a second, so budgets
  // hold across restarts.
  void flush_spend() {
    std::vector<store::SpendRecord> deltas;
    shared.tenant_limits.for_each([&](const std::string& tenant, admission::Limiter&, admission::Budget& b) {
      for (const admission::Budget::Unsaved& u : b.take_unsaved()) {
        deltas.push_back({tenant, admission::day_name(u.day), u.micro_usd});
        deltas.push_back({tenant, admission::month_name(admission::month_of_day(u.day)), u.micro_usd});
      }
    });
    try {
      store->add_spend(deltas);
    } catch (const std::exception& e) {
      std::cerr << "sluice: saving tenant spend: " << e.what() << "\n";
    }
    flush_route_spend();
  }

  // What each (route, release, tenant) spent since the last flush, added to today's row:
  // the metrics' cumulative totals minus what was already written (in whole micro-dollars,
  // so fractions carry over to the next flush instead of being lost).
  std::map<std::string, std::pair<int64_t, uint64_t>> route_spend_saved;
  void flush_route_spend() {
    std::vector<store::RouteSpend> deltas;
    const std::string today = admission::day_name(admission::day_of(unix_millis()));
    for (const auto& [key, total] : shared.metrics->cost_totals()) {
      auto& [micro, requests] = route_spend_saved[key];
      const int64_t now_micro = static_cast<int64_t>(total.usd * 1e6);
      if (now_micro == micro && total.requests == requests) continue;
      size_t a = key.find('\x1f'), b = key.find('\x1f', a + 1);
      deltas.push_back({today, key.substr(0, a), key.substr(a + 1, b - a - 1), key.substr(b + 1), now_micro - micro,
                        static_cast<int64_t>(total.requests - requests)});
      micro = now_micro;
      requests = total.requests;
    }
    try {
      store->add_route_spend(deltas);
    } catch (const std::exception& e) {
      std::cerr << "sluice: saving route spend: " << e.what() << "\n";
    }
  }

  void tick_spend() {
    spend_timer->expires_after(std::chrono::seconds(1));
    spend_timer->async_wait([this](error_code ec) {
      if (ec) return;
      flush_spend();
      flush_responses();
      if (incident) incident->flush_events();
      return_memory();
      scale_tick(shared, unix_millis());
      if (alarms) alarms->tick(unix_millis());
      tick_spend();
    });
  }

  // The allocator keeps what thousands of closed streams freed (glibc in its arenas,
  // mimalloc in each thread's heap); once the load has fallen well below its peak, every
  // worker gives its free pages back to the system (RSS returns near its idle size instead
  // of staying at the peak).
  // Streams still closing and frees that reach a thread late are caught by repeating it on
  // the next few ticks.
  int64_t inflight_peak = 0;
  int release_ticks = 0;
  void return_memory() {
    const int64_t now = shared.metrics->inflight();
    inflight_peak = std::max(inflight_peak, now);
    if (inflight_peak >= 256 && now <= inflight_peak / 4) {
      inflight_peak = now;
      release_ticks = 4;
    }
    if (release_ticks > 0) {
      --release_ticks;
      if (free_memory_per_thread())
        for (auto& w : workers) asio::post(w->ioc, [] { release_free_memory(); });
      release_free_memory();
    }
  }

  // Stored Responses API answers since the last flush (and deletions) go to the store once
  // a second; expired rows are pruned there at least once a minute.
  int prune_ticks = 0;
  void flush_responses() {
    bridge::Journal::Batch b = shared.responses_journal.take();
    if (b.saved.empty() && b.deleted.empty() && ++prune_ticks < 60) return;
    prune_ticks = 0;
    std::vector<store::StoredResponse> saved;
    saved.reserve(b.saved.size());
    for (auto& s : b.saved) saved.push_back({std::move(s.tenant), std::move(s.id), std::move(s.body), s.expires_at});
    try {
      store->save_responses(saved, b.deleted, unix_millis());
    } catch (const std::exception& e) {
      std::cerr << "sluice: saving stored responses: " << e.what() << "\n";
    }
  }

  // Stored responses from earlier runs, newest kept when they do not all fit.
  void restore_responses(const config::ResponsesStore& rs) {
    const int64_t now = unix_millis();
    shared.responses.set_max_bytes(rs.max_bytes);
    auto kept = store->load_responses(now, rs.max_bytes / 2);
    for (auto it = kept.rbegin(); it != kept.rend(); ++it)  // oldest first: the newest end most recent
      shared.responses.put(bridge::store_key(it->tenant, it->id), std::move(it->body), now, it->expires_at - now);
  }

  // Spend of the current day and month from earlier runs.
  void restore_spend() {
    const int64_t now = unix_millis();
    const int64_t day = admission::day_of(now);
    const std::string d = admission::day_name(day), m = admission::month_name(admission::month_of_day(day));
    std::unordered_map<std::string, std::pair<int64_t, int64_t>> by_tenant;
    for (const auto& r : store->list_spend({d, m})) (r.period == d ? by_tenant[r.tenant].first : by_tenant[r.tenant].second) = r.micro_usd;
    for (const auto& [tenant, v] : by_tenant) shared.tenant_limits.budget(tenant).restore(v.first, v.second, now);
  }

  // A kill.rollouts switch is on (evaluated with an empty context: it applies to all).
  bool rollouts_killed() {
    auto snap = shared.snapshots.current();
    for (const flags::Flag* f : snap->flags().rollout_kills()) {
      flags::Evaluation e = flags::evaluate(*f, flags::Value::object({}), unix_millis() / 1000);
      if (e.has_value && e.value.is_bool() && e.value.b) return true;
    }
    return false;
  }

  void tick_rollouts() {
    rollout_timer->expires_after(std::chrono::milliseconds(20));
    rollout_timer->async_wait([this](error_code ec) {
      if (ec) return;
      int64_t now = unix_millis();
      try {
        rollouts->set_held(rollouts_killed());
        rollouts->tick(now);
      } catch (const std::exception& e) {
        std::cerr << "sluice: rollout controller: " << e.what() << "\n";
      }
      if (now - rollout_metrics_at >= 1000) {
        rollout_metrics_at = now;
        std::string m = rollouts->prometheus();
        std::lock_guard<std::mutex> lock(shared.rollout_metrics_mu);
        shared.rollout_metrics = std::move(m);
      }
      tick_rollouts();
    });
  }

  // Blue-green warm-up: the candidate's upstream (or pool) answers GET /models and every smoke
  // request, through the same forwarder as user traffic (breakers, retries, TLS, deadlines),
  // on the first worker's event loop.
  std::string warm(const std::string& release_id, const std::vector<std::string>& smoke) {
    std::string err;
    auto c = control::compile_release(*store, release_id, err);
    if (!c) return err;
    // A rollout resumed at startup may ask before the workers run.
    for (int i = 0; i < 1000 && !workers_running.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!workers_running.load()) return "no worker is running to send the probe";
    Worker& w = *workers.front();
    std::string r = w.call_blocking(c->upstream, "GET", "/models", "", std::chrono::seconds(10));
    if (!r.empty()) return "GET /models: " + r;
    for (const auto& body : smoke) {
      std::string model = "\"" + c->model_id + "\"";
      auto b = json::splice_members(body, {{"model", model}});
      if (!b) return "smoke request is not a JSON object: " + body.substr(0, 80);
      r = w.call_blocking(c->upstream, "POST", "/chat/completions", std::move(*b), std::chrono::seconds(60));
      if (!r.empty()) return "smoke request: " + r;
    }
    return "";
  }

  std::string describe() {
    auto snap = shared.snapshots.current();
    std::string out = "{\"config_version\":" + std::to_string(snap->version());
    out += ",\"config_source\":";
    append_json_string(out, snap->config().source);
    out += ",\"workers\":" + std::to_string(workers.size());
    out += ",\"inflight\":" + std::to_string(shared.metrics->inflight());
    out += ",\"draining\":" + std::string(shared.draining.load() ? "true" : "false");
    out += ",\"upstreams\":[";
    bool first = true;
    for (const auto& u : snap->upstreams()) {
      if (!first) out += ",";
      first = false;
      out += "{\"name\":";
      append_json_string(out, u.cfg->name);
      out += ",\"url\":";
      append_json_string(out, u.cfg->url);
      out += ",\"has_api_key\":" + std::string(u.api_key.empty() ? "false" : "true") + "}";
    }
    out += "],\"routes\":";
    out += models_json(*snap);
    out += "}";
    return out;
  }

  // Creates the data directory and, when no admin token is configured, the bootstrap token.
  std::string prepare_data_dir(const config::Config& c, std::string& bootstrap_hash) {
    std::error_code fec;
    std::filesystem::create_directories(c.data_dir, fec);
    if (fec) return "cannot create data directory " + c.data_dir + ": " + fec.message();
    ::chmod(c.data_dir.c_str(), 0700);
    if (!c.admin_tokens.empty()) return "";
    std::string hash_path = c.data_dir + "/admin.token.sha256";
    std::ifstream in(hash_path);
    if (in >> bootstrap_hash && bootstrap_hash.size() == 64) return "";
    std::string token = random_token("sk-admin-");
    bootstrap_hash = sha256_hex(token);
    std::string token_path = c.data_dir + "/admin.token";
    ::umask(0077);
    {
      std::ofstream t(token_path, std::ios::trunc);
      t << token << "\n";
      if (!t) return "cannot write " + token_path;
    }
    ::chmod(token_path.c_str(), 0600);
    std::ofstream h(hash_path, std::ios::trunc);
    h << bootstrap_hash << "\n";
    if (!h) return "cannot write " + hash_path;
    if (opts.announce) std::cerr << "sluice: generated an admin token in " << token_path << " (mode 0600)\n";
    return "";
  }

  // host/pid/random: unique among replicas, and tells a dead process of this host from a live one.
  static std::string default_replica_id() {
    char host[256] = {0};
    gethostname(host, sizeof host - 1);
    std::string h = host[0] ? host : "host";
    for (char& c : h)
      if (c == '/' || c == ' ') c = '_';
    return h + "/" + std::to_string(getpid()) + "/" + random_token("", 4);
  }

  int run() {
    auto r = load();
    for (const auto& w : r.warnings) std::cerr << "warning: " << w << "\n";
    if (!r.ok()) {
      for (const auto& e : r.errors) std::cerr << "error: " << e << "\n";
      return 2;
    }
    config::Config cfg = r.config;
    auto listen = parse_host_port(cfg.listen);
    auto admin_listen = parse_host_port(cfg.admin_listen);
    std::string bootstrap_hash;
    if (std::string err = prepare_data_dir(cfg, bootstrap_hash); !err.empty()) {
      std::cerr << "error: " << err << "\n";
      return 2;
    }
    {
      std::string serr;
      store = store::open_store(store::store_location(cfg.store, cfg.data_dir), serr);
      if (!store) {
        std::cerr << "error: " << serr << "\n";
        return 2;
      }
    }
    bool store_keys = false;
    try {
      store_keys = !store->list_api_keys("").empty();
    } catch (const std::exception&) {
    }
    if (!is_loopback_host(listen->host) && cfg.api_keys.empty() && !store_keys && !cfg.allow_public_unauthenticated) {
      std::cerr << "error: refusing to serve the data plane on " << cfg.listen
                << " without API keys; create one (sluice key create), configure api_keys or pass "
                   "--allow-public-unauthenticated\n";
      return 2;
    }
    if (cfg.shared_limits.enabled()) {  // read once at start: tenants' rpm/tpm shared through Redis
      shared.shared_limits = std::make_unique<sharedlimits::Service>(cfg.shared_limits, [this] {
        std::vector<std::pair<std::string, admission::Limits>> out;
        if (auto snap = shared.snapshots.current())
          for (const auto& t : snap->config().tenants) out.emplace_back(t.name, t.limits);
        return out;
      });
      sharedlimits::Service* svc = shared.shared_limits.get();
      shared.tenant_limits.set_factory([svc](const std::string& tenant) { return svc->make_limiter(tenant); });
      svc->start();
      if (opts.announce)
        std::cerr << "sluice: shared limits on " << cfg.shared_limits.redis << " ("
                  << (svc->reachable() ? "reachable" : "unreachable, retrying") << ")\n";
    }
    try {
      restore_spend();
      restore_responses(cfg.responses);
    } catch (const std::exception& e) {
      std::cerr << "error: reading tenant spend and stored responses: " << e.what() << "\n";
      return 2;
    }
    size_t n = cfg.threads > 0 ? static_cast<size_t>(cfg.threads) : std::max(1u, std::thread::hardware_concurrency());
    shared.metrics = std::make_unique<metrics::Registry>(n);
    shared.rollout_sink = std::make_unique<rollout::Sink>(n, 1 << 16);
    shared.upstream_health.set_observer(&shared.incident.breakers);
    if (std::string err = publish(cfg); !err.empty()) {
      std::cerr << "error: " << err << "\n";
      return 2;
    }
    {
      rollout::ControllerEnv renv;
      renv.store = store.get();
      renv.sink = shared.rollout_sink.get();
      renv.republish = [this] { republish(); };
      renv.warm = [this](const std::string& rel, const std::vector<std::string>& smoke) { return warm(rel, smoke); };
      renv.log = [](const std::string& line) { std::cerr << "sluice: " << line << "\n"; };
      renv.replica = cfg.replica.id.empty() ? default_replica_id() : cfg.replica.id;
      renv.lease_ms = cfg.replica.controller_lease_ms;
      rollouts = std::make_unique<rollout::Controller>(std::move(renv));
      try {
        rollouts->reload();  // resumes rollouts that were running when the gateway stopped
      } catch (const std::exception& e) {
        std::cerr << "error: loading rollouts: " << e.what() << "\n";
        return 2;
      }
    }
    if (cfg.request_log.enabled && opts.request_log) {
      std::string path = cfg.request_log.path.empty() ? cfg.data_dir + "/requests.jsonl" : cfg.request_log.path;
      shared.reqlog = std::make_unique<reqlog::RequestLog>(path, n, static_cast<size_t>(cfg.request_log.queue_capacity),
                                                           *shared.metrics);
      if (std::string err = shared.reqlog->start(); !err.empty()) {
        std::cerr << "error: " << err << "\n";
        return 2;
      }
    }
    if (cfg.telemetry.otlp.enabled()) {  // read once: a reload keeps the exporter it started with
      std::string err;
      shared.otel = pipeline::make_exporter(cfg.telemetry.otlp, err);
      if (!shared.otel) {
        std::cerr << "error: " << err << "\n";
        return 2;
      }
    }

    std::vector<asio::io_context*> ctxs;
    for (size_t i = 0; i < n; ++i) {
      workers.push_back(std::make_unique<Worker>(shared, i));
      ctxs.push_back(&workers.back()->ioc);
    }
    std::string err;
    uint16_t port = 0, admin_port = 0;
    auto acceptors = net::bind_acceptors(ctxs, listen->host, listen->port, err, port);
    if (acceptors.empty()) {
      std::cerr << "error: " << err << "\n";
      return 2;
    }
    auto admin_acc = net::bind_acceptors({&control}, admin_listen->host, admin_listen->port, err, admin_port);
    if (admin_acc.empty()) {
      std::cerr << "error: " << err << "\n";
      return 2;
    }
    for (size_t i = 0; i < n; ++i) {
      Worker& w = *workers[i];
      w.acceptor.emplace(std::move(acceptors[i]));
      asio::co_spawn(w.ioc, net::accept_loop(*w.acceptor, &w, &shared.metrics->connections_accepted),
                     asio::detached);
    }
    AdminEnv env{shared, bootstrap_hash, [this] { return reload(); }, [this] { return describe(); }, store.get(),
                 [this] { return republish(); }, rollouts.get()};
    incident = std::make_unique<IncidentDesk>(shared, *store, workers, control);
    env.incident = incident.get();
    alarms = std::make_unique<AlarmDesk>(AlarmDesk::Env{shared, store.get(), rollouts.get(), [this] { return republish(); }});
    env.alarms = alarms.get();
    net::SessionLimits admin_limits;
    // A whole flag file (up to flags::kMaxFlagFileBytes, 4 MiB) fits in an import's JSON body.
    admin_limits.max_body_bytes = 9 << 20;
    admin = std::make_unique<AdminHandler>(std::move(env), control, admin_limits);
    admin_acceptor.emplace(std::move(admin_acc[0]));
    asio::co_spawn(control, net::accept_loop(*admin_acceptor, admin.get(), nullptr), asio::detached);

    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
    for (auto& w : workers) guards.push_back(asio::make_work_guard(w->ioc));
    for (auto& w : workers) threads.emplace_back([&ioc = w->ioc] { ioc.run(); });
    workers_running.store(true);

    asio::signal_set signals(control);
    if (opts.handle_signals) {
      signals.add(SIGINT);
      signals.add(SIGTERM);
      signals.add(SIGHUP);
    }
    std::function<void(error_code, int)> on_signal = [&](error_code ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        std::string e = reload();
        if (!e.empty()) std::cerr << "sluice: reload rejected, keeping the running configuration:\n" << e;
        signals.async_wait(on_signal);
        return;
      }
      begin_drain(std::chrono::milliseconds(shared.snapshots.current()->config().limits.drain_timeout_ms));
    };
    if (opts.handle_signals) signals.async_wait(on_signal);
    // Announce and report ready only once signals are handled: an early SIGTERM or SIGHUP
    // must drain or reload, not kill the process.
    if (opts.announce)
      std::cout << "sluice: data plane listening on " << listen->host << ":" << port << "\n"
                << "sluice: admin listening on " << admin_listen->host << ":" << admin_port << "\n"
                << "sluice: " << n << " worker thread(s), data dir " << cfg.data_dir << std::endl;
    shared.ready.store(true);
    if (opts.on_ready) opts.on_ready(port, admin_port);

    store_poll = std::make_unique<asio::steady_timer>(control);
    poll_store();
    rollout_timer = std::make_unique<asio::steady_timer>(control);
    tick_rollouts();
    health_timer = std::make_unique<asio::steady_timer>(control);
    tick_health_checks();
    spend_timer = std::make_unique<asio::steady_timer>(control);
    tick_spend();
    incident->start(opts.readiness_interval_ms);
    control.run();
    incident->flush_events();
    flush_spend();
    prune_ticks = 60;  // and the stored responses, whatever is pending
    flush_responses();
    try {
      rollouts->flush();  // the evidence so far survives the restart
    } catch (const std::exception& e) {
      std::cerr << "sluice: saving rollouts: " << e.what() << "\n";
    }

    guards.clear();
    for (auto& w : workers) w->ioc.stop();
    for (auto& t : threads) t.join();
    if (shared.reqlog) shared.reqlog->stop();
    if (shared.otel) shared.otel->stop();
    if (shared.shared_limits) shared.shared_limits->stop();
    if (opts.announce) std::cerr << "sluice: stopped\n";
    return 0;
  }

  // Stop accepting, close idle connections, let in-flight requests finish until the deadline.
  void begin_drain(std::chrono::milliseconds deadline) {
    if (opts.announce)
      std::cerr << "sluice: draining (" << shared.metrics->inflight() << " in flight, deadline " << deadline.count()
                << " ms)\n";
    shared.draining.store(true);
    shared.ready.store(false);
    for (auto& w : workers) {
      asio::post(w->ioc, [wp = w.get()] {
        error_code ec;
        if (wp->acceptor) wp->acceptor->close(ec);
        wp->close_idle();
      });
    }
    error_code ec;
    admin_acceptor->close(ec);
    admin->close_idle();
    if (store_poll) store_poll->cancel();
    if (health_timer) health_timer->cancel();
    // spend_timer keeps running while requests drain; run() flushes once more at the end
    auto until = std::chrono::steady_clock::now() + deadline;
    auto timer = std::make_shared<asio::steady_timer>(control);
    std::shared_ptr<std::function<void()>> poll = std::make_shared<std::function<void()>>();
    // At the deadline, streams still relaying are ended with an error event and accounted;
    // a short grace lets them write it before the loops stop.
    auto aborted = std::make_shared<bool>(false);
    *poll = [this, timer, until, poll, aborted] {
      auto now = std::chrono::steady_clock::now();
      if (shared.metrics->inflight() > 0 && now >= until && !*aborted) {
        *aborted = true;
        std::cerr << "sluice: drain deadline reached with " << shared.metrics->inflight()
                  << " in flight; ending them\n";
        for (auto& w : workers) asio::post(w->ioc, [wp = w.get()] { wp->abort_streams(); });
      }
      if (shared.metrics->inflight() == 0 || now >= until + std::chrono::seconds(2)) {
        control.stop();
        *poll = nullptr;  // break the self-reference
        return;
      }
      timer->expires_after(std::chrono::milliseconds(20));
      timer->async_wait([poll](error_code) {
        if (*poll) (*poll)();
      });
    };
    (*poll)();
  }
};

Gateway::Gateway(Options opts) : impl_(std::make_unique<Impl>()) { impl_->opts = std::move(opts); }
Gateway::~Gateway() = default;
int Gateway::run() { return impl_->run(); }
void Gateway::stop() {
  Impl* impl = impl_.get();
  asio::post(impl->control, [impl] {
    if (!impl->shared.draining.load())
      impl->begin_drain(std::chrono::milliseconds(impl->shared.snapshots.current()->config().limits.drain_timeout_ms));
  });
}

}  // namespace sluice::gateway
