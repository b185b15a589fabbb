// gateway/proxy.cpp: the order of a proxied request. The snapshot's filter chain runs on the
// request (any filter may answer or fail it); the forwarder finds an upstream (the rollout's
// candidate, then its stable release; then the route's fallback chain, all before a byte
// reaches the client); the relay sends the answer through the chain's response hooks.
#include <cmath>

#include <simdjson.h>

#include "gateway/forward.hpp"
#include "gateway/worker.hpp"
#include "json/splice.hpp"
#include "pipeline/filters.hpp"
#include "pipeline/stages.hpp"
#include "pipeline/synth.hpp"

namespace sluice::gateway {

namespace {

// The balancer's affinity key: the session (a header, else the body's `user`), or the
// start of the rendered messages (a shared system prompt, a conversation's earlier turns).
uint64_t affinity_of(const RequestContext& ctx, const upstream::BalanceSettings* b) {
  if (!b) return 0;
  if (b->policy == upstream::Policy::kSession) {
    std::string_view key = ctx.header && !b->affinity_header.empty() ? ctx.header(b->affinity_header) : std::string_view();
    if (key.empty()) key = ctx.info.user;
    return key.empty() ? 0 : upstream::affinity_hash(key);
  }
  if (b->policy == upstream::Policy::kPrefix && ctx.body) {
    std::string_view body = *ctx.body;
    size_t at = body.find("\"messages\"");
    if (at == std::string_view::npos) return 0;
    return upstream::affinity_hash(body.substr(at, static_cast<size_t>(b->prefix_bytes)));
  }
  return 0;
}

const char* target_suffix(Endpoint e) {
  switch (e) {
    case Endpoint::kChat: return "/chat/completions";
    case Endpoint::kEmbeddings: return "/embeddings";
    case Endpoint::kModels: return "/models";
    case Endpoint::kCompletions: return "/completions";
    case Endpoint::kResponses: return "/responses";
  }
  return "";
}

}  // namespace

// POST /v1/feedback {"request_id": "...", "score": 1}: user feedback on an answer, counted
// for the rollout (and arm) that served the request.
awaitable<bool> Worker::feedback(beast::tcp_stream& client, http::request<http::string_body>& req) {
  RequestContext ctx;
  ctx.request_id = ids_.next();
  ctx.t_start = Clock::now();
  auto snap = snaps_.get();
  ctx.snap = snap.get();
  ctx.authorization = req[http::field::authorization];
  if (auto err = pipeline::authenticate(ctx, env_)) co_return co_await respond_error(client, req, *err, ctx.request_id);
  std::string& body = req.body();
  simdjson::dom::element doc;
  std::string_view rid;
  double score = 0;
  bool b = false;
  auto bad = [&](std::string msg, std::string param) {
    ApiError e = bad_request(std::move(msg), "invalid_feedback");
    e.param = std::move(param);
    return e;
  };
  std::optional<ApiError> problem;
  if (body.size() > 64 * 1024) {
    problem = bad("feedback body is larger than 64 KiB", "");
  } else if (json_.parse(body).get(doc) || !doc.is_object()) {
    problem = bad("feedback body must be a JSON object", "");
  } else if (doc["request_id"].get_string().get(rid) || rid.empty()) {
    problem = bad("'request_id' must be the id of a request (its x-request-id header)", "request_id");
  } else if (!doc["score"].get_bool().get(b)) {
    score = b ? 1 : 0;
  } else if (doc["score"].get_double().get(score) || !std::isfinite(score)) {
    problem = bad("'score' must be a number (e.g. 1 good, 0 bad) or a boolean", "score");
  }
  if (problem) co_return co_await respond_error(client, req, *problem, ctx.request_id);
  std::string id(rid);
  if (shared_.rollout_sink) shared_.rollout_sink->push(index, rollout::FeedbackItem{id, score});
  shared_.experiments.feedback(id, score);
  std::string out = "{\"object\":\"feedback\",\"request_id\":";
  append_json_string(out, id);
  out += ",\"score\":" + std::to_string(score) + ",\"status\":\"accepted\"}";
  co_return co_await respond(client, req, http::status::ok, std::move(out), "application/json", ctx.request_id);
}

awaitable<bool> Worker::proxy(beast::tcp_stream& client, http::request<http::string_body>& req, Endpoint endpoint,
                              bridge::Api api, std::span<const net::Header> cors) {
  RequestContext ctx;
  ctx.request_id = ids_.next();
  ctx.t_start = Clock::now();
  ctx.endpoint = endpoint;
  ctx.api = api;
  ctx.body = &req.body();
  ctx.authorization = req[http::field::authorization];
  // Anthropic's clients send their key as x-api-key.
  std::string anthropic_key;
  if (api == bridge::Api::kMessages && ctx.authorization.empty() && !req["x-api-key"].empty()) {
    anthropic_key = "Bearer " + std::string(req["x-api-key"]);
    ctx.authorization = anthropic_key;
  }
  ctx.vars_header = req["x-sluice-vars"];
  ctx.header = [&req](std::string_view name) { return std::string_view(req[name]); };
  for (const net::Header& h : cors) ctx.response_headers.emplace_back(h.name, std::string(h.value));
  std::shared_ptr<const config::Snapshot> snap = snaps_.get();  // pinned for this request
  ctx.snap = snap.get();
  const std::shared_ptr<const pipeline::Chain> chain_ref = chain_for(snap);  // pinned with the snapshot
  const pipeline::Chain& chain = *chain_ref;
  const config::Config& cfg = snap->config();
  const bool keep_alive = req.keep_alive() && !draining();
  metrics_.inflight.fetch_add(1, std::memory_order_relaxed);
  struct InflightGuard {
    metrics::Shard& m;
    ~InflightGuard() { m.inflight.fetch_sub(1, std::memory_order_relaxed); }
  } guard{metrics_};
  env_.max_inflight = cfg.limits.max_inflight_per_worker;
  env_.responses.ttl_ms = cfg.responses.ttl_s * 1000;
  // store_max_bytes 0 keeps no responses: nothing goes to the store either.
  env_.responses.journal = cfg.responses.max_bytes > 0 ? &shared_.responses_journal : nullptr;
  if (cfg.request_log.bodies && endpoint == Endpoint::kChat) {
    ctx.log_body = *ctx.body;
    ctx.capture = true;  // keep the answer text for the log line
  }
  // Lineage headers: which release and prompt answered (empty values are not sent).
  net::Header lineage[] = {{"x-sluice-release", {}}, {"x-sluice-prompt", {}}};
  auto set_lineage = [&] {
    lineage[0].value = ctx.release ? std::string_view(ctx.release->id) : std::string_view();
    lineage[1].value = ctx.release ? std::string_view(ctx.release->prompt_hash) : std::string_view();
  };
  // What every response carries: the lineage, and what filters set (x-ratelimit-*).
  auto every = [&] {
    std::vector<net::Header> h(std::begin(lineage), std::end(lineage));
    for (const auto& [name, value] : ctx.response_headers) h.push_back({name, value});
    return h;
  };
  // A filter's answer (a cache hit, a static degraded answer), after those headers.
  auto reply = [&](pipeline::Reply r) -> awaitable<bool> {
    if (ctx.front) {  // answers sluice wrote itself are chat completions: in the client's API
      if (r.content_type == "text/event-stream") {
        r.body = ctx.front->translate_stream(json_, r.body);
      } else if (r.status / 100 == 2) {
        r.body = ctx.front->whole(json_, r.body);
      } else {
        r.body = ctx.front->upstream_error(json_, r.body, r.status);
      }
    }
    std::vector<net::Header> headers = every();
    for (const auto& [name, value] : r.headers) headers.push_back({name, value});
    co_return co_await respond(client, req, static_cast<http::status>(r.status), std::move(r.body), r.content_type,
                               ctx.request_id, headers);
  };

  pipeline::Verdict verdict = chain.on_request(ctx, env_);
  endpoint = ctx.endpoint;  // the translate stage may pass a Responses request through as itself
  set_lineage();
  if (verdict.error) {
    ctx.fail(*verdict.error);
    account(ctx, chain);
    co_return co_await respond_error(client, req, *verdict.error, ctx.request_id, every(), ctx.api);
  }
  if (verdict.reply) {
    ctx.status = verdict.reply->status;
    ctx.upstream.clear();
    account(ctx, chain);
    co_return co_await reply(std::move(*verdict.reply));
  }

  // Queued for a slot of its pool: wait for the grant, or refuse at the queue's deadline.
  if (pipeline::AdmissionState& adm = ctx.admission; adm.waiter) {
    admission::Waiter& w = *adm.waiter;
    if (w.state.load() != 1) {
      auto timer = std::static_pointer_cast<asio::steady_timer>(w.io);
      timer->expires_after(std::chrono::milliseconds(adm.queue_timeout_ms));
      error_code ec;
      co_await timer->async_wait(ec_await(ec));
    }
    // Granted (1); or still waiting at the deadline (0: it gives up); or displaced from the
    // queue by a higher tier (2, counted by the gate).
    const int state = w.state.load();
    const bool timed_out = state == 0 && adm.gate->give_up(w);
    if (timed_out || state == 2) {
      // Shed counts every refusal (displaced ones by the gate); queue timeouts are a subset.
      if (timed_out) adm.gate->count_shed(ctx.tier);
      const int64_t ms = adm.gate->retry_after_ms(unix_millis());
      ctx.retry_after(ms);
      ApiError e = error_of(ErrorKind::kOverloaded,
                            timed_out ? "The model's servers are busy: this request waited " +
                                            std::to_string(adm.queue_timeout_ms) +
                                            " ms for capacity without getting it. Retry in " + admission::reset_text(ms) + "."
                                      : std::string("The model's servers are busy: higher-priority requests took this "
                                                    "request's place in the queue. Retry in ") +
                                            admission::reset_text(ms) + ".");
      env_.metrics.refused(ctx.tenant, std::string(timed_out ? "queue_timeout_" : "shed_") + admission::tier_name(ctx.tier));
      ctx.fail(e);
      account(ctx, chain);
      co_return co_await respond_error(client, req, e, ctx.request_id, every(), ctx.api);
    }
    adm.t_admitted = Clock::now();
  }

  // A stream that may be continued mid-way keeps its text (the continuation's prefill).
  if (ctx.info.stream && ctx.resolution && ctx.resolution->fallback &&
      ctx.resolution->fallback->mid_stream == config::CompiledFallback::MidStream::kContinue)
    ctx.capture = true;

  // ---- forward ----
  auto watch = std::make_shared<ClientWatch>();
  watch->watched = &client;
  this->watch(watch);
  struct WatchGuard {
    Worker& worker;
    ClientWatch& w;
    ~WatchGuard() { worker.unwatch(w); }
  } watch_guard{*this, *watch};

  // The body goes upstream as the client sent it (plus the route and render stages' splices).
  ForwardSpec fs;
  fs.method = endpoint == Endpoint::kModels ? "GET" : "POST";
  // Models: the catalogue or one entry of it (/v1/models/{id}), as the client asked.
  const std::string_view target = req.target();
  fs.path = endpoint == Endpoint::kModels ? target.substr(3, target.find('?') == std::string_view::npos
                                                                 ? std::string_view::npos
                                                                 : target.find('?') - 3)
                                          : std::string_view(target_suffix(endpoint));
  fs.request_id = ctx.request_id;
  fs.trace = ctx.trace.get();
  fs.stream = pipeline::streams(endpoint) && ctx.info.stream;
  fs.max_attempts = cfg.limits.max_attempts;
  const config::CompiledFallback* fb = ctx.resolution ? ctx.resolution->fallback : nullptr;
  if (fb) {
    fs.fail_on_5xx = fb->on_5xx;
    fs.fail_on_429 = fb->on_429;
    fs.fail_on_context_length = fb->on_context_length;
  }
  std::optional<ApiError> failure;
  std::string retry_after;
  std::unique_ptr<Exchange> ex;
  // One forward; false when the request cannot go on (an answer, or the client left).
  auto attempt = [&](std::span<const size_t> targets, const upstream::BalanceSettings* balance,
                     std::string_view body) -> awaitable<bool> {
    fs.targets = targets;
    fs.balance = balance;
    fs.body = endpoint == Endpoint::kModels ? std::string_view() : body;
    fs.affinity = affinity_of(ctx, balance);
    // Tokens this request keeps in flight: the prompt (about 4 bytes a token) and the most
    // it may generate (max_tokens, else a typical 256).
    fs.est_tokens = static_cast<int64_t>(fs.body.size() / 4) + (ctx.info.max_tokens > 0 ? ctx.info.max_tokens : 256);
    ForwardResult r = co_await forward(*snap, fs, *watch);
    ctx.attempts += r.attempts;
    if (!r.upstream.empty()) ctx.upstream = r.upstream;
    if (r.exchange) {
      ex = std::move(r.exchange);
      co_return false;
    }
    failure = std::move(r.failure);
    retry_after = std::move(r.retry_after);
    co_return !(r.gone || watch->gone || watch->shutdown);
  };

  // A route kill switch may send the request straight to the route's fallback chain.
  const bool forced = ctx.flags.force_fallback && fb;
  const bool with_stable = !forced && ctx.rollout.candidate && !ctx.rollout.fallback_body.empty();
  fs.candidate_with_fallback = with_stable;
  bool go_on = true;
  if (forced) failure = error_of(ErrorKind::kUpstreamFailed, "the route's own targets are switched off by a kill switch");
  else go_on = co_await attempt(ctx.candidates, ctx.balance, *ctx.body);
  // The candidate of a rollout could not answer before the first byte: its failure counts
  // against it, and the user gets the stable release instead (no request fails because a
  // canary is bad).
  if (go_on && with_stable) {
    ctx.rollout.candidate_failure = failure ? failure->kind : ErrorKind::kUpstreamFailed;
    ctx.rollout.candidate_failed_ms = static_cast<double>(micros_between(ctx.t_start, Clock::now())) / 1000.0;
    metrics_.upstream_error(ctx.upstream, "candidate_" + (failure ? failure->code : std::string("upstream_failed")));
    ctx.rollout.candidate = false;
    *ctx.body = std::move(ctx.rollout.fallback_body);
    failure = pipeline::render(ctx, env_);
    if (!failure) pipeline::select_upstream(ctx, env_);
    set_lineage();
    fs.candidate_with_fallback = false;
    if (!failure) go_on = co_await attempt(ctx.candidates, ctx.balance, *ctx.body);
  }

  // The route's fallback chain: another pool or model, or a static degraded answer, for
  // the failure classes it names. Still before the first byte reached the client.
  if (go_on && fb && failure && endpoint != Endpoint::kModels && (forced || fb->matches(failure->kind))) {
    const std::string original = *ctx.body;
    std::string fallback_body;
    fs.candidate_with_fallback = false;
    // A degraded answer sluice gives itself: "static" or "cache" (the last good answer).
    auto degraded = [&](const config::CompiledFallback::Step& step, pipeline::Reply r) -> awaitable<bool> {
      ctx.fallback = step.label;
      ctx.status = 200;
      ctx.upstream.clear();
      metrics_.fallback(ctx.resolution->route, step.label);
      account(ctx, chain);
      r.headers = {{"x-sluice-fallback", step.label}, {"x-sluice-degraded", step.label}};
      co_return co_await reply(std::move(r));
    };
    for (const auto& step : fb->steps) {
      if (step.last_good) {  // the route's last good answer to this request, if one is kept
        if (ctx.cache.last_good_key.empty()) continue;
        auto kept = shared_.last_good.get(ctx.cache.last_good_key, unix_millis());
        std::optional<pipeline::Reply> r = kept ? pipeline::stored_answer(ctx, env_, *kept) : std::nullopt;
        if (r) co_return co_await degraded(step, std::move(*r));
        continue;
      }
      if (step.targets.empty()) {
        if (endpoint != Endpoint::kChat) continue;  // a static answer is a chat completion
        pipeline::Reply r;
        r.body = pipeline::static_answer(ctx, step.static_text);
        r.content_type = ctx.info.stream ? "text/event-stream" : "application/json";
        co_return co_await degraded(step, std::move(r));
      }
      fallback_body = original;
      if (!step.model_literal.empty()) {
        if (auto b = json::splice_members(original, {{"model", step.model_literal}})) fallback_body = std::move(*b);
      }
      go_on = co_await attempt(step.targets, step.balance, fallback_body);
      if (ex) {
        ctx.fallback = step.label;
        metrics_.fallback(ctx.resolution->route, step.label);
        break;
      }
      if (!go_on || !failure || !(forced || fb->matches(failure->kind))) break;
    }
  }

  if (watch->gone) {
    ctx.status = 499;
    ctx.set_error(ErrorKind::kClientAbort);
    if (ex) {
      ex->conn->close();
      ex->finish(upstream::Outcome::kIgnored);
    }
    account(ctx, chain);
    co_return false;
  }
  if (!ex) {
    if (!failure) failure = error_of(ErrorKind::kUpstreamFailed, "no upstream could serve the request");
    ctx.fail(*failure);
    account(ctx, chain);
    std::vector<net::Header> headers = every();
    headers.push_back({"Retry-After", retry_after});
    co_return co_await respond_error(client, req, *failure, ctx.request_id, headers, ctx.api);
  }
  const std::vector<net::Header> base = every();
  co_return co_await relay(client, req, ctx, chain, *ex, *watch, base, keep_alive);
}

}  // namespace sluice::gateway
