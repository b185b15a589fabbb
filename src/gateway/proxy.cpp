// gateway/proxy.cpp: forward and relay, the I/O half of the request pipeline.
//
// forward: try the selected upstreams in order (retries and fallbacks happen only before a
// byte has reached the client), with connect / first-byte / idle / total deadlines.
// relay: whole bodies are passed through; SSE streams are relayed event by event with
// backpressure (we read the upstream only after the client took the previous batch), and a
// stream that breaks is finished with an OpenAI-shaped error event, never silently.
#include <sys/socket.h>

#include <array>
#include <cmath>

#include <simdjson.h>

#include "cache/response_cache.hpp"
#include "gateway/forward.hpp"
#include "gateway/stages.hpp"
#include "gateway/synth.hpp"
#include "gateway/worker.hpp"
#include "json/splice.hpp"
#include "net/wire.hpp"
#include "quality/refusal.hpp"
#include "quality/text.hpp"
#include "release/compiled.hpp"
#include "reqlog/request_log.hpp"
#include "sse/parser.hpp"

namespace sluice::gateway {

namespace {

using std::chrono::milliseconds;

// A client that hangs up cancels the upstream request at once instead of when we next write.
void arm_watch(beast::tcp_stream& client, const std::shared_ptr<ClientWatch>& w) {
  tcp::socket& sock = client.socket();
  sock.async_wait(tcp::socket::wait_read, [w, &sock](error_code ec) {
    if (!w->active || ec) return;
    char c;
    ssize_t r = ::recv(sock.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
      w->gone = true;
      if (w->upstream) w->upstream->cancel();
    }
    // r > 0: the client pipelined its next request; it is read after this one.
  });
}

// How a relayed exchange ended, as the upstream's breaker counts it.
upstream::Outcome outcome_of(const RequestContext& ctx) {
  if (ctx.status == 499 || ctx.status == 0 || ctx.error_kind == "shutting_down") return upstream::Outcome::kIgnored;
  if (ctx.status == 429) return upstream::Outcome::kRateLimited;
  if (ctx.status >= 500) return upstream::Outcome::kFailure;
  return upstream::Outcome::kSuccess;  // 2xx, or a 4xx the request itself caused
}

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

std::string stream_error_event(const ApiError& e) { return "data: " + e.to_json() + "\n\n"; }

const char* target_suffix(Endpoint e) {
  switch (e) {
    case Endpoint::kChat: return "/chat/completions";
    case Endpoint::kEmbeddings: return "/embeddings";
    case Endpoint::kModels: return "/models";
  }
  return "";
}

}  // namespace

net::UpstreamPool& Worker::pool_for(const config::UpstreamRuntime& u) {
  auto it = pools_.find(u.identity);
  if (it != pools_.end()) return *it->second;
  net::UpstreamEndpoint ep;
  ep.host = u.cfg->parsed.host;
  ep.port = u.cfg->parsed.port;
  ep.tls = u.cfg->parsed.tls;
  ep.tls_verify = u.cfg->tls_verify;
  ep.ca_file = u.cfg->ca_file;
  ep.max_idle = static_cast<size_t>(u.cfg->max_idle_connections);
  return *pools_.emplace(u.identity, std::make_unique<net::UpstreamPool>(ioc, std::move(ep))).first->second;
}

void Worker::sweep_deadlines() {
  if (sweeping_) return;
  if (!sweep_) sweep_ = std::make_unique<asio::steady_timer>(ioc);
  sweeping_ = true;
  sweep_->expires_after(std::chrono::milliseconds(25));
  sweep_->async_wait([this](error_code ec) {
    sweeping_ = false;
    if (ec) return;
    auto now = Clock::now();
    bool any = false;
    for (ClientWatch* w : watches_) {
      if (w->upstream_deadline != Clock::time_point::max() || w->client_deadline != Clock::time_point::max()) any = true;
      if (w->upstream && now >= w->upstream_deadline) {
        w->upstream_expired = true;
        w->upstream->cancel();
      }
      if (w->client && now >= w->client_deadline) {
        w->client_expired = true;
        error_code ignored;
        w->client->socket().close(ignored);
      }
    }
    if (any) sweep_deadlines();
  });
}

void Worker::abort_streams() {
  for (ClientWatch* w : watches_) {
    w->shutdown = true;
    if (w->upstream) w->upstream->cancel();
  }
}

void Worker::account(RequestContext& ctx) {
  auto t_end = Clock::now();
  metrics_.record(to_sample(ctx, t_end));
  if (shared_.reqlog) shared_.reqlog->push(index, request_log_line(ctx, t_end));
  if (ctx.capture && shared_.rollout_sink && ctx.resolution && ctx.resolution->live) report_rollout(ctx, t_end);
  if (!ctx.candidate_failure.empty()) report_candidate_failure(ctx);
}

namespace {

double cost_of(const config::Snapshot& snap, std::string_view upstream, int64_t tokens_in, int64_t tokens_out) {
  for (const auto& u : snap.upstreams()) {
    if (u.cfg->name != upstream) continue;
    if (u.cfg->price_input_per_1m <= 0 && u.cfg->price_output_per_1m <= 0) return -1;
    if (tokens_in < 0 && tokens_out < 0) return -1;
    return (static_cast<double>(std::max<int64_t>(tokens_in, 0)) * u.cfg->price_input_per_1m +
            static_cast<double>(std::max<int64_t>(tokens_out, 0)) * u.cfg->price_output_per_1m) /
           1e6;
  }
  return -1;
}

// What a rollout learns from one answered request of either arm.
rollout::Observation observe(const RequestContext& ctx, Clock::time_point t_end) {
  rollout::Observation o;
  o.error = ctx.status >= 500 || ctx.status == 429 || ctx.error_kind == "missing_variable";
  o.latency_ms = static_cast<double>(micros_between(ctx.t_start, t_end)) / 1000.0;
  if (ctx.streamed && ctx.t_first_token != Clock::time_point{}) {
    o.ttft_ms = static_cast<double>(micros_between(ctx.t_start, ctx.t_first_token)) / 1000.0;
    int64_t n = ctx.tokens_out > 0 ? ctx.tokens_out : ctx.content_chunks;
    if (n > 1) o.tpot_ms = static_cast<double>(micros_between(ctx.t_first_token, ctx.t_last_token)) / 1000.0 / double(n - 1);
  }
  if (ctx.tokens_in >= 0) o.tokens_in = static_cast<double>(ctx.tokens_in);
  if (ctx.tokens_out >= 0) o.tokens_out = static_cast<double>(ctx.tokens_out);
  o.cost = cost_of(*ctx.snap, ctx.upstream, ctx.tokens_in, ctx.tokens_out);
  if (ctx.status == 200) {
    o.refusal = quality::is_refusal(ctx.answer, ctx.finish_reason) ? 1 : 0;
    if (ctx.info.response_format == "json_object" || ctx.info.response_format == "json_schema")
      o.schema_valid = quality::check_json(ctx.answer, ctx.info.json_schema).valid ? 1 : 0;
  }
  return o;
}

}  // namespace

// The candidate failed before its first byte and the stable release was asked instead. An
// upstream 4xx is the candidate's fault only if stable then answered the same request.
void Worker::report_candidate_failure(const RequestContext& ctx) {
  if (!shared_.rollout_sink || !ctx.resolution || !ctx.resolution->live) return;
  if (ctx.candidate_failure == "status_4xx" && ctx.status != 200) return;
  rollout::Observation o;
  o.error = true;
  o.latency_ms = ctx.candidate_failed_ms;
  shared_.rollout_sink->push(index, rollout::Sample{ctx.resolution->live->id, 0, true, o});
}

void Worker::report_rollout(RequestContext& ctx, Clock::time_point t_end) {
  // Client mistakes and hang-ups say nothing about a release (a template that needs a
  // variable clients do not send does: missing_variable counts as an error).
  if (ctx.status == 499 || ctx.status == 0) return;
  if (ctx.status >= 400 && ctx.status < 500 && ctx.status != 429 && ctx.error_kind != "missing_variable") return;
  const config::RolloutLive& live = *ctx.resolution->live;
  rollout::Observation o = observe(ctx, t_end);
  if (ctx.shadow && ctx.status == 200) {
    if (shadow_inflight_ >= live.shadow_max_inflight) {
      const_cast<config::RolloutLive&>(live).shadow_dropped.fetch_add(1, std::memory_order_relaxed);
    } else {
      ShadowJob job{ctx.resolution->route, live.id, ctx.request_id, std::move(ctx.shadow_body),
                    std::string(ctx.vars_header), ctx.info.json_schema, o, ctx.answer};
      ++shadow_inflight_;
      asio::co_spawn(ioc, shadow(std::move(job)), asio::detached);
    }
  }
  shared_.rollout_sink->push(index, rollout::Sample{live.id, rollout::request_key(ctx.request_id), ctx.candidate, o});
}

// The mirror: the candidate answers the same request, never streamed, after the user got the
// stable answer. Bounded per worker; its result only feeds the rollout's evidence.
awaitable<void> Worker::shadow(ShadowJob job) {
  struct Done {
    int64_t& n;
    ~Done() { --n; }
  } done{shadow_inflight_};
  auto snap = snaps_.get();
  const config::Resolution* res = snap->resolve(job.route);
  if (!res || !res->live || res->live->id != job.rollout_id || !res->candidate || res->candidate_upstreams.empty())
    co_return;
  res->live->shadow_sent.fetch_add(1, std::memory_order_relaxed);
  rollout::ShadowPair pair;
  pair.rollout_id = job.rollout_id;
  pair.request_id = job.request_id;
  pair.stable = job.stable;
  pair.stable_text = std::move(job.stable_text);
  const auto t0 = Clock::now();
  auto fail = [&] {
    pair.candidate.error = true;
    pair.candidate.latency_ms = static_cast<double>(micros_between(t0, Clock::now())) / 1000.0;
    shared_.rollout_sink->push(index, std::move(pair));
  };
  std::string body = std::move(job.body);
  const std::vector<json::Edit> extra = {{"stream", "false"}, {"stream_options", ""}};
  if (release::render(*res->candidate, body, job.vars_header, json_, extra)) {
    fail();
    co_return;
  }
  // The same forwarder as user traffic: the candidate's pool, breakers, retries, deadlines.
  ClientWatch watch;  // no client to watch: the mirror runs after the user was answered
  ForwardSpec fs;
  fs.targets = res->candidate_upstreams;
  fs.balance = res->candidate_balance;
  fs.path = "/chat/completions";
  fs.body = body;
  fs.request_id = job.request_id;
  fs.user_agent = "sluice/0.1 (shadow)";
  fs.max_attempts = snap->config().limits.max_attempts;
  fs.est_tokens = static_cast<int64_t>(body.size() / 4) + 256;
  ForwardResult fr = co_await forward(*snap, fs, watch);
  if (!fr.exchange) {
    fail();
    co_return;
  }
  Exchange& ex = *fr.exchange;
  const config::UpstreamRuntime& u = *ex.upstream;
  const config::Timeouts& to = u.cfg->timeouts;
  const auto deadline = Clock::now() + milliseconds(to.total_ms);
  std::string answer;
  char rbuf[4096];
  error_code ec;
  while (!ec && !ex.parser->is_done()) {
    ex.conn->expires_at(std::min(deadline, Clock::now() + milliseconds(to.idle_ms)));
    size_t n = co_await ex.conn->read_some(*ex.parser, rbuf, sizeof rbuf, ec);
    answer.append(rbuf, n);
  }
  const unsigned status = ex.parser->get().result_int();
  if (ec || status != 200) {
    ex.conn->close();
    ex.finish(ec || status >= 500 ? upstream::Outcome::kFailure
              : status == 429  ? upstream::Outcome::kRateLimited
                               : upstream::Outcome::kSuccess,
              ec ? "shadow_read" : "shadow_status");
    fail();
    co_return;
  }
  if (ex.parser->get().keep_alive()) {
    pool_for(u).release(std::move(ex.conn));
  } else {
    ex.conn->close();
  }
  ex.finish(upstream::Outcome::kSuccess);
  std::string text, finish;
  auto usage = json::response_usage_and_answer(json_, answer, kMaxCapturedAnswer, &text, &finish);
  rollout::Observation& c = pair.candidate;
  c.latency_ms = static_cast<double>(micros_between(t0, Clock::now())) / 1000.0;
  if (usage && usage->completion_tokens >= 0) c.tokens_out = static_cast<double>(usage->completion_tokens);
  if (usage && usage->prompt_tokens >= 0) c.tokens_in = static_cast<double>(usage->prompt_tokens);
  c.cost = usage ? cost_of(*snap, u.cfg->name, usage->prompt_tokens, usage->completion_tokens) : -1;
  c.refusal = quality::is_refusal(text, finish) ? 1 : 0;
  // Checked against the request's own JSON Schema, as the live answer was.
  if (job.stable.schema_valid >= 0) c.schema_valid = quality::check_json(text, job.json_schema).valid ? 1 : 0;
  pair.candidate_text = std::move(text);
  shared_.rollout_sink->push(index, std::move(pair));
}

// POST /v1/feedback {"request_id": "...", "score": 1}: user feedback on an answer, counted
// for the rollout (and arm) that served the request.
awaitable<bool> Worker::feedback(beast::tcp_stream& client, http::request<http::string_body>& req) {
  RequestContext ctx;
  ctx.request_id = ids_.next();
  ctx.t_start = Clock::now();
  auto snap = snaps_.get();
  ctx.snap = snap.get();
  ctx.authorization = req[http::field::authorization];
  StageEnv env{json_, metrics_, 0};
  if (auto err = authenticate(ctx, env)) co_return co_await respond_error(client, req, *err, ctx.request_id);
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
  std::string out = "{\"object\":\"feedback\",\"request_id\":";
  append_json_string(out, id);
  out += ",\"score\":" + std::to_string(score) + ",\"status\":\"accepted\"}";
  co_return co_await respond(client, req, http::status::ok, std::move(out), "application/json", ctx.request_id);
}

awaitable<bool> Worker::proxy(beast::tcp_stream& client, http::request<http::string_body>& req, Endpoint endpoint) {
  RequestContext ctx;
  ctx.request_id = ids_.next();
  ctx.t_start = Clock::now();
  ctx.endpoint = endpoint;
  ctx.body = &req.body();
  ctx.authorization = req[http::field::authorization];
  ctx.vars_header = req["x-sluice-vars"];
  ctx.header = [&req](std::string_view name) { return std::string_view(req[name]); };
  std::shared_ptr<const config::Snapshot> snap = snaps_.get();  // pinned for this request
  ctx.snap = snap.get();
  const config::Config& cfg = snap->config();
  const bool keep_alive = req.keep_alive() && !draining();
  metrics_.inflight.fetch_add(1, std::memory_order_relaxed);
  struct InflightGuard {
    metrics::Shard& m;
    ~InflightGuard() { m.inflight.fetch_sub(1, std::memory_order_relaxed); }
  } guard{metrics_};

  StageEnv env{json_, metrics_, cfg.limits.max_inflight_per_worker};
  if (cfg.request_log.bodies && endpoint == Endpoint::kChat) {
    ctx.log_body = *ctx.body;
    ctx.capture = true;  // keep the answer text for the log line
  }
  // Lineage headers: which release and prompt answered (empty values are not sent).
  auto rel_id = [&] { return ctx.release ? std::string_view(ctx.release->id) : std::string_view(); };
  auto prompt_id = [&] { return ctx.release ? std::string_view(ctx.release->prompt_hash) : std::string_view(); };
  for (const Stage& stage : kStages) {
    if (auto err = stage.run(ctx, env)) {
      ctx.status = err->status;
      ctx.error_kind = err->code;
      account(ctx);
      const net::Header lineage[] = {{"x-sluice-release", rel_id()}, {"x-sluice-prompt", prompt_id()}};
      co_return co_await respond_error(client, req, *err, ctx.request_id, lineage);
    }
  }

  net::Header lineage[] = {{"x-sluice-release", rel_id()}, {"x-sluice-prompt", prompt_id()}};

  // ---- response cache (opt-in per route; deterministic requests only) ----
  std::string cache_key;
  const config::CacheRoute* cache_rule = ctx.resolution ? ctx.resolution->cache : nullptr;
  if (cache_rule && endpoint == Endpoint::kChat && deterministic(json_, *ctx.body)) {
    auto unstreamed = json::splice_members(*ctx.body, {{"stream", ""}, {"stream_options", ""}});
    cache_key = cache::cache_key(cache_rule->shared_across_tenants ? std::string_view() : std::string_view(ctx.tenant),
                                 ctx.resolution->route + "\x1f" + std::string(rel_id()),
                                 unstreamed ? std::string_view(*unstreamed) : std::string_view(*ctx.body));
    if (auto hit = shared_.response_cache.get(cache_key, unix_millis())) {
      std::string out = ctx.info.stream ? replay_as_stream(json_, ctx, *hit) : std::move(*hit);
      if (!out.empty()) {
        if (auto usage = json::response_usage_and_answer(json_, ctx.info.stream ? *hit : out, kMaxCapturedAnswer,
                                                         ctx.capture ? &ctx.answer : nullptr, &ctx.finish_reason)) {
          ctx.tokens_in = usage->prompt_tokens;
          ctx.tokens_out = usage->completion_tokens;
        }
        ctx.status = 200;
        ctx.upstream.clear();
        ctx.cache = "hit";
        account(ctx);
        const net::Header headers[] = {lineage[0], lineage[1], {"x-sluice-cache", "hit"}};
        co_return co_await respond(client, req, http::status::ok, std::move(out),
                                   ctx.info.stream ? "text/event-stream" : "application/json", ctx.request_id, headers);
      }
    }
    ctx.cache = "miss";
  }

  // ---- forward ----
  auto watch = std::make_shared<ClientWatch>();
  arm_watch(client, watch);
  watches_.insert(watch.get());
  struct WatchGuard {
    std::shared_ptr<ClientWatch>& w;
    beast::tcp_stream& c;
    std::unordered_set<ClientWatch*>& all;
    ~WatchGuard() {
      all.erase(w.get());
      w->active = false;
      w->upstream = nullptr;
      error_code ec;
      c.socket().cancel(ec);
    }
  } watch_guard{watch, client, watches_};

  // The body goes upstream as the client sent it (plus the route and render stages' splices).
  const bool want_stream = endpoint == Endpoint::kChat && ctx.info.stream;
  ForwardSpec fs;
  fs.method = endpoint == Endpoint::kModels ? "GET" : "POST";
  fs.path = target_suffix(endpoint);
  fs.request_id = ctx.request_id;
  fs.stream = want_stream;
  fs.max_attempts = cfg.limits.max_attempts;
  std::optional<ApiError> failure;
  std::string retry_after;
  std::unique_ptr<Exchange> ex;
  if (const config::CompiledFallback* f = ctx.resolution ? ctx.resolution->fallback : nullptr) {
    fs.fail_on_5xx = f->on_5xx;
    fs.fail_on_429 = f->on_429;
    fs.fail_on_context_length = f->on_context_length;
  }
  for (int pass = 0; pass < 2; ++pass) {
    fs.targets = ctx.candidates;
    fs.balance = ctx.candidate ? ctx.resolution->candidate_balance : ctx.resolution->balance;
    fs.body = endpoint == Endpoint::kModels ? std::string_view() : std::string_view(*ctx.body);
    fs.candidate_with_fallback = ctx.candidate && !ctx.fallback_body.empty();
    fs.affinity = affinity_of(ctx, fs.balance);
    // Tokens this request keeps in flight: the prompt (about 4 bytes a token) and the most
    // it may generate (max_tokens, else a typical 256).
    fs.est_tokens = static_cast<int64_t>(fs.body.size() / 4) + (ctx.info.max_tokens > 0 ? ctx.info.max_tokens : 256);
    ForwardResult r = co_await forward(*snap, fs, *watch);
    ctx.attempts += r.attempts;
    if (!r.upstream.empty()) ctx.upstream = r.upstream;
    if (r.exchange) {
      ex = std::move(r.exchange);
      break;
    }
    failure = std::move(r.failure);
    retry_after = std::move(r.retry_after);
    // The candidate of a rollout could not answer before the first byte: its failure counts
    // against it, and the user gets the stable release instead (no request fails because a
    // canary is bad).
    if (r.gone || watch->gone || !ctx.candidate || ctx.fallback_body.empty() || watch->shutdown) break;
    ctx.candidate_failure = failure ? failure->code : "upstream_failed";
    ctx.candidate_failed_ms = static_cast<double>(micros_between(ctx.t_start, Clock::now())) / 1000.0;
    metrics_.upstream_error(ctx.upstream, "candidate_" + ctx.candidate_failure);
    ctx.candidate = false;
    *ctx.body = std::move(ctx.fallback_body);
    if (auto err = render(ctx, env)) {
      failure = std::move(err);
      break;
    }
    select_upstream(ctx, env);
    lineage[0].value = rel_id();
    lineage[1].value = prompt_id();
    failure.reset();
  }

  // The route's fallback chain: another pool or model, or a static degraded answer, for
  // the failure classes it names. Still before the first byte reached the client.
  const config::CompiledFallback* fb = ctx.resolution ? ctx.resolution->fallback : nullptr;
  std::string fallback_body;
  if (!ex && fb && failure && !watch->gone && !watch->shutdown && endpoint != Endpoint::kModels &&
      fb->matches(failure->code)) {
    const std::string original = *ctx.body;
    for (const auto& step : fb->steps) {
      if (step.targets.empty()) {
        if (endpoint != Endpoint::kChat) continue;  // a static answer is a chat completion
        ctx.fallback = step.label;
        ctx.status = 200;
        ctx.upstream.clear();
        metrics_.fallback(ctx.resolution->route, step.label);
        account(ctx);
        const net::Header headers[] = {lineage[0], lineage[1], {"x-sluice-fallback", "static"}, {"x-sluice-degraded", "static"}};
        co_return co_await respond(client, req, http::status::ok, static_answer(ctx, step.static_text),
                                   want_stream ? "text/event-stream" : "application/json", ctx.request_id, headers);
      }
      fallback_body = original;
      if (!step.model_literal.empty()) {
        if (auto b = json::splice_members(original, {{"model", step.model_literal}})) fallback_body = std::move(*b);
      }
      fs.targets = step.targets;
      fs.balance = step.balance;
      fs.body = fallback_body;
      fs.candidate_with_fallback = false;
      ForwardResult r = co_await forward(*snap, fs, *watch);
      ctx.attempts += r.attempts;
      if (!r.upstream.empty()) ctx.upstream = r.upstream;
      if (r.exchange) {
        ex = std::move(r.exchange);
        ctx.fallback = step.label;
        metrics_.fallback(ctx.resolution->route, step.label);
        break;
      }
      if (r.gone || watch->gone) break;
      failure = std::move(r.failure);
      retry_after = std::move(r.retry_after);
      if (!failure || !fb->matches(failure->code)) break;
    }
  }

  if (watch->gone) {
    ctx.status = 499;
    ctx.error_kind = "client_abort";
    if (ex) {
      ex->conn->close();
      ex->finish(upstream::Outcome::kIgnored);
    }
    account(ctx);
    co_return false;
  }
  if (!ex) {
    if (!failure) failure = bad_gateway("no upstream could serve the request", "upstream_failed");
    ctx.status = failure->status;
    ctx.error_kind = failure->code;
    account(ctx);
    const net::Header headers[] = {lineage[0], lineage[1], {"Retry-After", retry_after}};
    co_return co_await respond_error(client, req, *failure, ctx.request_id, headers);
  }
  const config::UpstreamRuntime* chosen = ex->upstream;
  std::unique_ptr<net::UpstreamConn>& conn = ex->conn;
  std::optional<http::response_parser<http::buffer_body>>& parser = ex->parser;
  // However the relay ends, the upstream's breaker hears how it went (once).
  struct Settle {
    Exchange& ex;
    const RequestContext& ctx;
    ~Settle() { ex.finish(outcome_of(ctx), ctx.error_kind); }
  } settle{*ex, ctx};

  // ---- relay ----
  const config::Timeouts& to = chosen->cfg->timeouts;
  const auto deadline = Clock::now() + milliseconds(to.total_ms);
  auto& ures = parser->get();
  unsigned status = ures.result_int();
  std::string_view content_type = ures[http::field::content_type];
  const bool is_sse = content_type.substr(0, 17) == "text/event-stream";
  char rbuf[4096];
  error_code ec;

  if (!(want_stream && status == 200 && is_sse)) {
    // Whole body: read (bounded), inspect usage, pass through with the upstream's status.
    std::string body = std::move(ex->prefetched);  // what the forwarder already read (a 400's body)
    while (!parser->is_done()) {
      conn->expires_at(std::min(deadline, Clock::now() + milliseconds(to.idle_ms)));
      size_t n = co_await conn->read_some(*parser, rbuf, sizeof rbuf, ec);
      body.append(rbuf, n);
      if (ec) break;
    }
    if (watch->gone) {
      conn->close();
      ctx.status = 499;
      ctx.error_kind = "client_abort";
      ex->finish(outcome_of(ctx), ctx.error_kind);
      account(ctx);
      co_return false;
    }
    if (ec) {
      conn->close();
      if (watch->shutdown) {
        ApiError e = unavailable("the gateway is shutting down; retry the request", "shutting_down");
        ctx.status = e.status;
        ctx.error_kind = e.code;
        ex->finish(outcome_of(ctx), ctx.error_kind);
        account(ctx);
        co_return co_await respond_error(client, req, e, ctx.request_id, lineage);
      }
      std::string kind = ec == beast::error::timeout   ? (Clock::now() >= deadline ? "total_timeout" : "idle_timeout")
                         : ec == http::error::body_limit ? "response_too_large"
                                                         : "reset";
      metrics_.upstream_error(chosen->cfg->name, kind);
      ApiError e = kind.find("timeout") != std::string::npos
                       ? gateway_timeout("upstream '" + chosen->cfg->name + "' timed out while answering", kind)
                       : bad_gateway("upstream '" + chosen->cfg->name + "' failed while answering (" + kind + ")", kind);
      ctx.status = e.status;
      ctx.error_kind = kind;
      ex->finish(outcome_of(ctx), ctx.error_kind);
      account(ctx);
      co_return co_await respond_error(client, req, e, ctx.request_id, lineage);
    }
    bool reusable = ures.keep_alive();
    watch->upstream = nullptr;
    if (reusable) {
      pool_for(*chosen).release(std::move(conn));
    } else {
      conn->close();
    }
    if (status == 200 && endpoint != Endpoint::kModels) {
      // One parse: usage, and the answer when a rollout or the request log needs it.
      std::optional<json::Usage> usage = json::response_usage_and_answer(
          json_, body, kMaxCapturedAnswer, ctx.capture ? &ctx.answer : nullptr, &ctx.finish_reason);
      if (!usage) {
        metrics_.upstream_error(chosen->cfg->name, "bad_response");
        ApiError e = bad_gateway("upstream '" + chosen->cfg->name + "' returned an invalid response", "bad_response");
        ctx.status = e.status;
        ctx.error_kind = "bad_response";
        ex->finish(outcome_of(ctx), ctx.error_kind);
        account(ctx);
        co_return co_await respond_error(client, req, e, ctx.request_id, lineage);
      }
      ctx.tokens_in = usage->prompt_tokens;
      ctx.tokens_out = usage->completion_tokens;
      if (!cache_key.empty() && ctx.fallback.empty())
        shared_.response_cache.put(cache_key, body, unix_millis(), cache_rule->ttl_ms);
    } else if (status >= 400) {
      ctx.error_kind = "upstream_status_" + std::to_string(status);
      metrics_.upstream_error(chosen->cfg->name, status == 429 ? "status_429" : (status >= 500 ? "status_5xx" : "status_4xx"));
    }
    ctx.status = static_cast<int>(status);
    ex->finish(outcome_of(ctx), ctx.error_kind);
    account(ctx);
    std::string res_head = net::response_head(
        status, req.version(), content_type.empty() ? std::string_view("application/json") : content_type,
        ctx.request_id, keep_alive, body.size(),
        std::initializer_list<net::Header>{{"Retry-After", ures[http::field::retry_after]},
                                           lineage[0],
                                           lineage[1],
                                           {"x-sluice-upstream", chosen->cfg->name},
                                           {"x-sluice-fallback", ctx.fallback},
                                           {"x-sluice-cache", ctx.cache}});
    std::array<asio::const_buffer, 2> bufs{asio::buffer(res_head), asio::buffer(body)};
    client.expires_after(milliseconds(cfg.limits.client_write_timeout_ms));
    co_await asio::async_write(client, bufs, ec_await(ec));
    client.expires_never();
    co_return !ec && keep_alive;
  }

  // Streaming relay.
  ctx.streamed = true;
  metrics_.open_streams.fetch_add(1, std::memory_order_relaxed);
  struct StreamGuard {
    metrics::Shard& m;
    ~StreamGuard() { m.open_streams.fetch_sub(1, std::memory_order_relaxed); }
  } stream_guard{metrics_};

  // HTTP/1.0 clients get a close-delimited body: chunked coding is HTTP/1.1 only.
  const bool chunked = req.version() >= 11;
  const bool stream_keep_alive = keep_alive && chunked;
  std::string head = net::response_head(200, req.version(), "text/event-stream", ctx.request_id, stream_keep_alive,
                                       chunked ? 0 : net::kCloseDelimited,
                                       std::initializer_list<net::Header>{{"Cache-Control", "no-cache"},
                                                                          lineage[0],
                                                                          lineage[1],
                                                                          {"x-sluice-upstream", chosen->cfg->name},
                                                                          {"x-sluice-fallback", ctx.fallback},
                                                                          {"x-sluice-cache", ctx.cache}},
                                       chunked);
  client.expires_after(milliseconds(cfg.limits.client_write_timeout_ms));
  co_await asio::async_write(client, asio::buffer(head), ec_await(ec));
  bool client_ok = !ec;

  sse::Parser events(static_cast<size_t>(cfg.limits.max_sse_event_bytes));
  std::string out, scratch;
  bool done_marker = false, upstream_error_event = false, garbage = false, finished_choice = false;
  // Some providers never send `data: [DONE]`. A stream whose choice finished (and that sent
  // the usage it was asked for) is complete however it ends: the client gets [DONE] from us.
  const bool usage_wanted = ctx.strip_usage || ctx.info.include_usage;
  auto complete_without_done = [&] {
    return finished_choice && ctx.info.n <= 1 && (!usage_wanted || ctx.tokens_out >= 0) && !upstream_error_event;
  };
  std::optional<ApiError> cut;
  // From here the sweep enforces the idle, total and client-write deadlines.
  conn->tcp().expires_never();
  client.expires_never();
  watch->client = &client;
  const milliseconds idle_gap(to.idle_ms), write_timeout(cfg.limits.client_write_timeout_ms);
  sweep_deadlines();
  std::string prefetched = std::move(ex->prefetched);  // read while waiting for the first token
  while (client_ok) {
    std::string_view got;
    if (!prefetched.empty()) {
      got = prefetched;
    } else {
      // A finished answer waits only briefly for a [DONE] that may never come.
      watch->upstream_deadline =
          std::min(deadline, Clock::now() + (complete_without_done() ? std::min(idle_gap, milliseconds(250)) : idle_gap));
      size_t n = co_await conn->read_some(*parser, rbuf, sizeof rbuf, ec);
      watch->upstream_deadline = Clock::time_point::max();
      got = std::string_view(rbuf, n);
    }
    if (!got.empty()) {
      auto now = Clock::now();
      bool ok = events.feed(got, [&](std::string_view raw) {
        if (garbage || done_marker) return;
        std::string_view data = sse::Parser::data_of(raw, scratch);
        if (data.empty()) return;  // comments and keep-alives are not relayed
        if (data == "[DONE]") {
          done_marker = true;
          out.append(raw);
          return;
        }
        json::ChunkInfo info = json::inspect_chunk(json_, data);
        if (!info.valid_json) {
          garbage = true;
          return;
        }
        if (info.is_error) upstream_error_event = true;
        if (info.usage.present()) {
          ctx.tokens_in = info.usage.prompt_tokens;
          ctx.tokens_out = info.usage.completion_tokens;
        }
        if (info.has_content) {
          if (ctx.content_chunks++ == 0) ctx.t_first_token = now;
          ctx.t_last_token = now;
        }
        if (!info.finish_reason.empty()) finished_choice = true;
        if (ctx.capture) {
          if (!info.content.empty() && ctx.answer.size() < kMaxCapturedAnswer)
            ctx.answer.append(info.content.substr(0, kMaxCapturedAnswer - ctx.answer.size()));
          if (!info.finish_reason.empty()) ctx.finish_reason.assign(info.finish_reason);
        }
        if (info.usage_only && ctx.strip_usage) return;
        out.append(raw);
      });
      if (!ok) garbage = true;
      prefetched.clear();
    }
    if (!out.empty()) {
      error_code wec;
      watch->client_deadline = Clock::now() + write_timeout;
      if (chunked) {
        co_await asio::async_write(client, http::make_chunk(asio::buffer(out)), ec_await(wec));
      } else {
        co_await asio::async_write(client, asio::buffer(out), ec_await(wec));
      }
      watch->client_deadline = Clock::time_point::max();
      out.clear();
      if (wec) {
        client_ok = false;
        break;
      }
    }
    if (garbage) {
      cut = bad_gateway("upstream '" + chosen->cfg->name + "' sent an invalid stream event", "bad_stream");
      break;
    }
    if (done_marker || parser->is_done() || upstream_error_event) break;
    if (ec) {
      if (watch->gone) {
        client_ok = false;
        break;
      }
      if (watch->shutdown) {
        cut = unavailable("the gateway is shutting down; retry the request", "shutting_down");
        break;
      }
      if (complete_without_done()) break;
      std::string kind = watch->upstream_expired ? (Clock::now() >= deadline ? "total_timeout" : "idle_timeout")
                                                 : "stream_cut";
      cut = kind == "stream_cut"
                ? bad_gateway("upstream '" + chosen->cfg->name + "' closed the stream before it was complete", kind)
                : gateway_timeout("upstream '" + chosen->cfg->name + "' stalled mid-stream (" + kind + ")", kind);
      break;
    }
  }
  const bool synthesized_done = !cut && client_ok && !done_marker && complete_without_done();
  if (!cut && client_ok && !done_marker && !upstream_error_event && parser->is_done() && !synthesized_done) {
    cut = bad_gateway("upstream '" + chosen->cfg->name + "' ended the stream without [DONE]", "stream_cut");
  }
  watch->upstream = nullptr;
  watch->client = nullptr;
  // Upstream and client errors are kept apart from here: a slow terminating chunk from the
  // upstream must never keep the client's stream from ending cleanly.
  error_code uec = ec;
  if (done_marker && client_ok && !cut) {
    // Read the upstream's terminating chunk so the connection can be reused.
    uec = {};
    while (!parser->is_done() && !uec) {
      conn->expires_after(milliseconds(200));
      co_await conn->read_some(*parser, rbuf, sizeof rbuf, uec);
    }
  }
  if (parser->is_done() && ures.keep_alive() && !cut && client_ok && !uec) {
    pool_for(*chosen).release(std::move(conn));
  } else {
    conn->close();
  }
  if (!client_ok) {
    ctx.status = 499;
    ctx.error_kind = watch->client_expired ? "client_write_timeout" : "client_abort";
    ex->finish(outcome_of(ctx), ctx.error_kind);
    account(ctx);
    co_return false;
  }
  error_code cec;
  client.expires_after(milliseconds(cfg.limits.client_write_timeout_ms));
  // The breaker hears the outcome before the client does (no window where it lags).
  ctx.status = cut ? cut->status : (upstream_error_event ? 502 : 200);
  ctx.error_kind = cut ? cut->code : (upstream_error_event ? "upstream_error_event" : "");
  ex->finish(outcome_of(ctx), ctx.error_kind);
  if (cut) {
    metrics_.upstream_error(chosen->cfg->name, cut->code);
    std::string ev = stream_error_event(*cut);
    if (chunked) {
      co_await asio::async_write(client, http::make_chunk(asio::buffer(ev)), ec_await(cec));
    } else {
      co_await asio::async_write(client, asio::buffer(ev), ec_await(cec));
    }
    ctx.status = cut->status;
    ctx.error_kind = cut->code;
  } else {
    ctx.status = upstream_error_event ? 502 : 200;
    if (upstream_error_event) ctx.error_kind = "upstream_error_event";
    if (synthesized_done) {
      metrics_.upstream_error(chosen->cfg->name, "missing_done");  // counted, not an error for the client
      static constexpr std::string_view kDone = "data: [DONE]\n\n";
      if (chunked) {
        co_await asio::async_write(client, http::make_chunk(asio::buffer(kDone)), ec_await(cec));
      } else {
        co_await asio::async_write(client, asio::buffer(kDone), ec_await(cec));
      }
    }
  }
  if (!cec && chunked) co_await asio::async_write(client, http::make_chunk_last(), ec_await(cec));
  client.expires_never();
  ex->finish(outcome_of(ctx), ctx.error_kind);
  account(ctx);
  co_return !cec && stream_keep_alive;
}

}  // namespace sluice::gateway
