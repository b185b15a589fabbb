#include "pipeline/filters.hpp"
#include "pipeline/flags_filter.hpp"

#include <simdjson.h>

#include <array>

#include "cache/response_cache.hpp"
#include "json/splice.hpp"
#include "metrics/metrics.hpp"
#include "pipeline/otel_filter.hpp"
#include "pipeline/stages.hpp"
#include "pipeline/synth.hpp"
#include "quality/refusal.hpp"
#include "quality/text.hpp"
#include "release/compiled.hpp"
#include "reqlog/request_log.hpp"
#include "admission/limiter.hpp"
#include "rollout/sink.hpp"

namespace sluice::pipeline {

namespace {

// The tenant's limits and tier, looked up once per request (both the shed and the rate limit
// filters need them).
const config::Tenant* tenant_limits(RequestContext& ctx) {
  if (!ctx.tenant_resolved) {
    ctx.tenant_cfg = ctx.tenant.empty() ? nullptr : ctx.snap->tenant_limits(ctx.tenant);
    ctx.tenant_resolved = true;
  }
  return ctx.tenant_cfg;
}

// What both response caches hash: the rendered request without `stream` and
// `stream_options` (a whole answer also serves a stream), spliced once per request.
std::string_view unstreamed_body(RequestContext& ctx) {
  if (ctx.cache.unstreamed.empty()) {
    auto u = json::splice_members(*ctx.body, {{"stream", ""}, {"stream_options", ""}});
    ctx.cache.unstreamed = u ? std::move(*u) : *ctx.body;
  }
  return ctx.cache.unstreamed;
}

// A request stage as a filter.
class StageFilter final : public Filter {
 public:
  using Fn = std::optional<ApiError> (*)(RequestContext&, Env&);
  constexpr StageFilter(std::string_view name, Fn fn) : name_(name), fn_(fn) {}
  std::string_view name() const override { return name_; }
  unsigned hooks() const override { return kOnRequest; }
  Verdict on_request(RequestContext& ctx, Env& env) const override {
    if (auto e = fn_(ctx, env)) return Verdict::fail(std::move(*e));
    return Verdict::next();
  }

 private:
  std::string_view name_;
  Fn fn_;
};

// Admission control of the pool a request goes to (pools[].max_inflight, adaptive_concurrency,
// queue, overflow; admission/gate.hpp). The request's tier is its tenant's, or lower by
// x-sluice-priority (never higher). When the pool has no room for the tier: the pool's
// overflow target first (marked x-sluice-overflow), then a place in the bounded queue
// (critical and standard only; the gateway waits for it before forwarding), else a fast 503
// with a Retry-After from the pool's measured drain rate. Runs after the caches, so an
// answer from a cache never takes a slot.
class GateFilter final : public Filter {
 public:
  std::string_view name() const override { return "admission"; }
  unsigned hooks() const override { return kOnRequest | kOnComplete; }

  Verdict on_request(RequestContext& ctx, Env& env) const override {
    const admission::Tier tier = ctx.tier;  // resolved by the admit stage
    const upstream::BalanceSettings* b = ctx.balance;
    if (!b || !b->gate || ctx.endpoint == Endpoint::kModels) return Verdict::next();
    admission::Gate& gate = *b->gate;
    const int64_t tokens =
        static_cast<int64_t>(ctx.body ? ctx.body->size() / 4 : 0) + (ctx.info.max_tokens > 0 ? ctx.info.max_tokens : 256);
    const int64_t now = unix_millis();
    if (gate.acquire(tier, tokens, nullptr, now) == admission::Gate::Result::kAdmitted) {
      ctx.admission = {&gate, tokens, nullptr, 0, Clock::now(), {}};
      return Verdict::next();
    }
    // Overflow first: the pool's spill target, when it has room (or no gate of its own).
    if (!b->overflow_targets.empty()) {
      admission::Gate* og = b->overflow_balance ? b->overflow_balance->gate.get() : nullptr;
      if (!og || og->acquire(tier, tokens, nullptr, now) == admission::Gate::Result::kAdmitted) {
        gate.count_overflow();
        ctx.admission = {og, tokens, nullptr, 0, Clock::now(), b->overflow};
        ctx.candidates = b->overflow_targets;
        ctx.balance = b->overflow_balance;
        if (!b->overflow_model.empty() && ctx.body) {
          // The overflow target may know the model by another name (a hosted API's id).
          if (auto body = json::splice_members(*ctx.body, {{"model", b->overflow_model}})) *ctx.body = std::move(*body);
        }
        ctx.response_headers.emplace_back("x-sluice-overflow", b->overflow);
        return Verdict::next();
      }
    }
    // Then a place in the queue, for the tiers that may wait.
    if (tier != admission::Tier::kSheddable && env.make_waiter) {
      auto w = env.make_waiter();
      const admission::Gate::Result r = gate.acquire(tier, tokens, w, now);
      if (r == admission::Gate::Result::kAdmitted) {  // a slot freed meanwhile
        ctx.admission = {&gate, tokens, nullptr, 0, Clock::now(), {}};
        return Verdict::next();
      }
      if (r == admission::Gate::Result::kQueued) {
        ctx.admission = {&gate, tokens, std::move(w), gate.settings().timeout_ms(tier), {}, {}};
        return Verdict::next();
      }
    }
    gate.count_shed(tier);
    return refuse(ctx, env, gate, tier, now);
  }

  static Verdict refuse(RequestContext& ctx, Env& env, admission::Gate& gate, admission::Tier tier, int64_t now) {
    const int64_t ms = gate.retry_after_ms(now);
    ctx.retry_after(ms);
    env.metrics.refused(ctx.tenant, std::string("shed_") + admission::tier_name(tier));
    const admission::GateView v = gate.view();
    return Verdict::fail(error_of(ErrorKind::kOverloaded,
                                  "The model's servers are busy (" + std::to_string(v.in_flight) + " requests in flight, limit " +
                                      std::to_string(static_cast<int64_t>(v.limit)) +
                                      "; requests are shed lowest tier first, this one is " + admission::tier_name(tier) +
                                      "). Retry in " + admission::reset_text(ms) + "."));
  }

  void on_complete(RequestContext& ctx, Clock::time_point, Env&) const override {
    AdmissionState& a = ctx.admission;
    if (!a.gate) return;
    admission::Gate* gate = a.gate;
    a.gate = nullptr;
    if (a.waiter && a.waiter->state.load() != 1) {
      gate->give_up(*a.waiter);  // still queued (the request ended another way): leave the queue
      if (a.waiter->state.load() != 1) return;
    }
    // The upstream's time to first token, without the time spent in the queue.
    double ttft = -1;
    if (ctx.status == 200 && ctx.streamed && ctx.t_first_token != Clock::time_point{} && a.t_admitted != Clock::time_point{})
      ttft = static_cast<double>(micros_between(a.t_admitted, ctx.t_first_token)) / 1000.0;
    gate->release(a.tokens, ttft, unix_millis());
  }
};

// A tenant's requests and tokens per minute, concurrency and input size. The reservation is
// the rendered prompt (about 4 bytes a token) plus max_tokens (or the tenant's
// reserve_output_tokens); completion replaces it with the real usage. Every response says
// where the tenant stands, in OpenAI's x-ratelimit-* headers.
class RateLimitFilter final : public Filter {
 public:
  std::string_view name() const override { return "rate_limit"; }
  unsigned hooks() const override { return kOnRequest | kOnComplete; }

  Verdict on_request(RequestContext& ctx, Env& env) const override {
    const config::Tenant* t = env.limits ? tenant_limits(ctx) : nullptr;
    if (!t || ctx.endpoint == Endpoint::kModels) return Verdict::next();
    if (!may_call(*t, ctx.resolution ? ctx.resolution->route : std::string_view())) {
      ApiError e = not_found("The model `" + ctx.info.model + "` does not exist or you do not have access to it.",
                             "model_not_found");
      e.param = "model";
      env.metrics.refused(t->name, "route_not_allowed");
      return Verdict::fail(std::move(e));
    }
    const int64_t now = unix_millis();
    if (t->budget_usd_per_day > 0 || t->budget_usd_per_month > 0) {
      const admission::Budget::View spent = env.limits->budget(t->name).spent(now);
      const bool day = t->budget_usd_per_day > 0 && spent.day_micro_usd >= micro_usd(t->budget_usd_per_day);
      const bool month = t->budget_usd_per_month > 0 && spent.month_micro_usd >= micro_usd(t->budget_usd_per_month);
      if (day || month) {
        // A budget does not come back within a retry: tell OpenAI's clients not to retry.
        ctx.response_headers.emplace_back("x-should-retry", "false");
        env.metrics.refused(t->name, day ? "budget_day" : "budget_month");
        return Verdict::fail(error_of(
            ErrorKind::kQuotaExceeded,
            "You exceeded your current quota: tenant '" + t->name + "' spent its " + (day ? "daily" : "monthly") +
                " budget of $" + num_text(day ? t->budget_usd_per_day : t->budget_usd_per_month) + " (resets at " +
                (day ? "00:00 UTC" : "the start of next month, UTC") + "). Ask an operator to raise it."));
      }
    }
    const int64_t prompt = ctx.body ? static_cast<int64_t>(ctx.body->size() / 4) : 0;
    if (t->max_input_tokens > 0 && prompt > t->max_input_tokens) {
      ApiError e = bad_request("This request's input is about " + std::to_string(prompt) +
                                   " tokens, above the max_input_tokens limit of " + std::to_string(t->max_input_tokens) +
                                   " for your key. Shorten the messages.",
                               "input_too_long");
      e.param = "messages";
      env.metrics.refused(t->name, "input_too_long");
      return Verdict::fail(std::move(e));
    }
    const int64_t reserve = prompt + (ctx.info.max_tokens > 0 ? ctx.info.max_tokens : t->reserve_output_tokens);
    admission::Decision d = env.limits->get(t->name).reserve(t->limits, reserve, now);
    headers(ctx, d);
    if (!d.admitted) {
      const int64_t ms = std::max<int64_t>(d.retry_after_ms, 1);
      ctx.retry_after(ms);
      using W = admission::Decision::Why;
      if (d.why == W::kUnavailable) {  // shared limits, store unreachable, on_unavailable: fail_closed
        ApiError e = error_of(ErrorKind::kOverloaded, "The rate limit store is unavailable, so tenant '" + t->name +
                                                          "' cannot be admitted (shared_limits fails closed). Please try again in " +
                                                          admission::reset_text(ms) + ".");
        e.code = "rate_limit_store_unavailable";
        env.metrics.refused(t->name, "limit_store_unavailable");
        return Verdict::fail(std::move(e));
      }
      const char* what = d.why == W::kRequests ? "requests per min (RPM)"
                         : d.why == W::kTokens ? "tokens per min (TPM)"
                                               : "concurrent requests";
      const int64_t limit = d.why == W::kRequests ? t->limits.rpm
                            : d.why == W::kTokens ? t->limits.tpm
                                                  : t->limits.max_concurrent;
      ApiError e = error_of(ErrorKind::kRateLimited,
                            "Rate limit reached for tenant '" + t->name + "' on " + what + ": Limit " + std::to_string(limit) +
                                (d.why == W::kTokens ? ", Requested " + std::to_string(reserve) : std::string()) +
                                ". Please try again in " + admission::reset_text(ms) + ".");
      if (d.why == W::kTokens) e.type = "tokens";
      env.metrics.refused(t->name, d.why == W::kRequests ? "rpm" : d.why == W::kTokens ? "tpm" : "concurrency");
      return Verdict::fail(std::move(e));
    }
    ctx.rate = {t, reserve, prompt, true};
    return Verdict::next();
  }

  void on_complete(RequestContext& ctx, Clock::time_point, Env& env) const override {
    if (!ctx.rate.admitted) return;
    ctx.rate.admitted = false;
    int64_t used;
    if (ctx.tokens_in >= 0 || ctx.tokens_out >= 0) {
      used = std::max<int64_t>(ctx.tokens_in, 0) + std::max<int64_t>(ctx.tokens_out, 0);
    } else if (ctx.content_chunks > 0 || ctx.status == 499) {
      used = ctx.rate.reserved_tokens;  // something was generated, how much is unknown: keep it
    } else {
      used = 0;  // nothing reached an upstream's model: a refund
    }
    const int64_t now = unix_millis();
    env.limits->get(ctx.rate.tenant->name).reconcile(ctx.rate.tenant->limits, ctx.rate.reserved_tokens, used, now);
    if (ctx.cost_usd > 0) env.limits->budget(ctx.rate.tenant->name).charge(micro_usd(ctx.cost_usd), now);
  }

  static int64_t micro_usd(double usd) { return static_cast<int64_t>(usd * 1e6 + 0.5); }
  static bool may_call(const config::Tenant& t, std::string_view route) {
    if (t.routes.empty()) return true;
    for (const auto& r : t.routes)
      if (r == route) return true;
    return false;
  }

 private:
  static void headers(RequestContext& ctx, const admission::Decision& d) {
    auto put = [&](const admission::BucketView& b, const char* limit, const char* remaining, const char* reset) {
      if (b.limit <= 0) return;
      ctx.response_headers.emplace_back(limit, std::to_string(b.limit));
      ctx.response_headers.emplace_back(remaining, std::to_string(b.remaining));
      ctx.response_headers.emplace_back(reset, admission::reset_text(b.reset_ms));
    };
    put(d.requests, "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests");
    put(d.tokens, "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens");
  }
};

// Exact-match response cache, opt-in per route, for deterministic requests only (temperature
// 0 or a seed). A hit answers at once (replayed as a stream when the client asked for one);
// a whole 2xx answer from the route's own upstreams fills it.
class ResponseCacheFilter final : public Filter {
 public:
  std::string_view name() const override { return "response_cache"; }
  unsigned hooks() const override { return kOnRequest | kOnBody; }

  Verdict on_request(RequestContext& ctx, Env& env) const override {
    const config::CacheRoute* rule = ctx.resolution ? ctx.resolution->cache : nullptr;
    if (!rule || !env.cache || ctx.endpoint != Endpoint::kChat || !deterministic(env.json, *ctx.body))
      return Verdict::next();
    ctx.cache.rule = rule;
    std::string scope = ctx.resolution->route + "\x1f" + (ctx.release ? ctx.release->id : std::string());
    ctx.cache.key = cache::cache_key(rule->shared_across_tenants ? std::string_view() : std::string_view(ctx.tenant),
                                     scope, unstreamed_body(ctx));
    ctx.cache.outcome = "miss";
    auto hit = env.cache->get(ctx.cache.key, unix_millis());
    if (!hit) return Verdict::next();
    std::optional<Reply> r = stored_answer(ctx, env, *hit);
    if (!r) return Verdict::next();  // cannot be replayed as this stream: ask upstream
    ctx.cache.outcome = "hit";
    ctx.cache.key.clear();  // nothing to store
    r->headers.emplace_back("x-sluice-cache", "hit");
    return Verdict::answer(std::move(*r));
  }

  std::optional<ApiError> on_body(RequestContext& ctx, std::string_view body, Env& env) const override {
    // Only answers of the route's own upstreams: a fallback's answer is not this route's.
    if (!ctx.cache.key.empty() && ctx.fallback.empty() && ctx.status == 200 && ctx.error == ErrorKind::kNone)
      env.cache->put(ctx.cache.key, std::string(body), unix_millis(), ctx.cache.rule->ttl_ms);
    return std::nullopt;
  }
};

// The "last good answer" store of a route whose fallback chain has {last_good: true}: every
// good answer of the route's own upstreams (any temperature) is kept per tenant and request,
// bounded, so the chain can still answer during an outage (x-sluice-degraded: cache).
// Streams are kept as the whole completion they amount to (their text is captured).
class LastGoodFilter final : public Filter {
 public:
  std::string_view name() const override { return "last_good"; }
  unsigned hooks() const override { return kOnRequest | kOnBody | kOnComplete; }

  Verdict on_request(RequestContext& ctx, Env& env) const override {
    const config::CompiledFallback* fb = ctx.resolution ? ctx.resolution->fallback : nullptr;
    if (!fb || !fb->keeps_last_good || !env.last_good || ctx.endpoint != Endpoint::kChat) return Verdict::next();
    ctx.cache.last_good_key = cache::cache_key(ctx.tenant, ctx.resolution->route + "\x1elast_good", unstreamed_body(ctx));
    if (ctx.info.stream) ctx.capture = true;  // a stream is kept as its text
    return Verdict::next();
  }

  std::optional<ApiError> on_body(RequestContext& ctx, std::string_view body, Env& env) const override {
    if (keep(ctx)) env.last_good->put(ctx.cache.last_good_key, std::string(body), unix_millis(), ttl(ctx));
    return std::nullopt;
  }

  void on_complete(RequestContext& ctx, Clock::time_point, Env& env) const override {
    if (!ctx.streamed || !keep(ctx) || ctx.answer.empty() || ctx.info.n > 1 || ctx.finish_reason == "tool_calls" ||
        ctx.answer.size() >= kMaxCapturedAnswer)
      return;
    std::string content, usage = "{\"prompt_tokens\":" + std::to_string(std::max<int64_t>(ctx.tokens_in, 0)) +
                                 ",\"completion_tokens\":" + std::to_string(std::max<int64_t>(ctx.tokens_out, 0)) +
                                 ",\"total_tokens\":" +
                                 std::to_string(std::max<int64_t>(ctx.tokens_in, 0) + std::max<int64_t>(ctx.tokens_out, 0)) + "}";
    append_json_string(content, ctx.answer);
    env.last_good->put(ctx.cache.last_good_key,
                       completion_json(ctx, content, ctx.finish_reason.empty() ? "stop" : ctx.finish_reason, usage),
                       unix_millis(), ttl(ctx));
  }

 private:
  // Only answers of the route's own upstreams, finished well.
  static bool keep(const RequestContext& ctx) {
    return !ctx.cache.last_good_key.empty() && ctx.fallback.empty() && ctx.status == 200 && ctx.error == ErrorKind::kNone;
  }
  static int64_t ttl(const RequestContext& ctx) { return ctx.snap->config().response_cache.last_good_ttl_ms; }
};

// Token accounting and the answer: usage, first and last token times, and (when a rollout
// or the request log keeps it) the answer text and finish reason.
class AnswerFilter final : public Filter {
 public:
  std::string_view name() const override { return "answer"; }
  unsigned hooks() const override { return kOnEvent | kOnBody; }

  void on_event(RequestContext& ctx, const Event& e, Env&) const override {
    const json::ChunkInfo& c = e.chunk;
    if (c.usage.present()) {
      ctx.tokens_in = c.usage.prompt_tokens;
      ctx.tokens_out = c.usage.completion_tokens;
      ctx.tokens_cached = c.usage.cached_tokens;
    }
    if (c.has_content) {
      if (ctx.content_chunks++ == 0) ctx.t_first_token = e.at;
      ctx.t_last_token = e.at;
    }
    if (!c.finish_reason.empty()) ctx.finish_reason.assign(c.finish_reason);
    if (ctx.capture && !c.content.empty() && ctx.answer.size() < kMaxCapturedAnswer)
      ctx.answer.append(c.content.substr(0, kMaxCapturedAnswer - ctx.answer.size()));
  }

  std::optional<ApiError> on_body(RequestContext& ctx, std::string_view body, Env& env) const override {
    if (ctx.endpoint == Endpoint::kModels || ctx.status != 200) return std::nullopt;
    // One parse: usage, and the answer when a rollout or the request log needs it.
    std::optional<json::Usage> usage = json::response_usage_and_answer(
        env.json, body, kMaxCapturedAnswer, ctx.capture ? &ctx.answer : nullptr, &ctx.finish_reason);
    if (!usage) {
      env.metrics.upstream_error(ctx.upstream, code_of(ErrorKind::kBadResponse));
      return error_of(ErrorKind::kBadResponse, "upstream '" + ctx.upstream + "' returned an invalid response");
    }
    ctx.tokens_in = usage->prompt_tokens;
    ctx.tokens_out = usage->completion_tokens;
    ctx.tokens_cached = usage->cached_tokens;
    return std::nullopt;
  }
};

class MetricsFilter final : public Filter {
 public:
  std::string_view name() const override { return "metrics"; }
  unsigned hooks() const override { return kOnHead | kOnComplete; }
  void on_head(RequestContext& ctx, const Head& h, Env& env) const override {
    if (h.status < 400) return;
    env.metrics.upstream_error(ctx.upstream,
                               h.status == 429 ? "status_429" : (h.status >= 500 ? "status_5xx" : "status_4xx"));
  }
  void on_complete(RequestContext& ctx, Clock::time_point t_end, Env& env) const override {
    metrics::RequestSample sample = to_sample(ctx, t_end);
    if (ctx.check_refusal && ctx.status == 200) {
      sample.refusal_checked = true;
      sample.refused = quality::is_refusal(ctx.answer, ctx.finish_reason);
    }
    env.metrics.record(sample);
  }
};

// A route whose refusal rate an alarm watches keeps its answers' text, so the metrics filter
// can check them. In the chain only when some alarm needs refusals; other routes pay one
// comparison per alarm-watched route.
class AlarmRefusalFilter final : public Filter {
 public:
  std::string_view name() const override { return "alarm_refusal"; }
  unsigned hooks() const override { return kOnRequest; }
  Verdict on_request(RequestContext& ctx, Env&) const override {
    if (!ctx.resolution) return Verdict::next();
    for (const std::string& r : ctx.snap->config().alarm_refusal_routes)
      if (r == "*" || r == ctx.resolution->route) {
        ctx.capture = true;
        ctx.check_refusal = true;
        break;
      }
    return Verdict::next();
  }
};

class RequestLogFilter final : public Filter {
 public:
  std::string_view name() const override { return "request_log"; }
  unsigned hooks() const override { return kOnComplete; }
  void on_complete(RequestContext& ctx, Clock::time_point t_end, Env& env) const override {
    if (env.reqlog) env.reqlog->push(env.worker, request_log_line(ctx, t_end));
  }
};

// What a rollout learns from each request of a route under a rollout: the arm's observation
// (errors, latency, tokens, cost, refusals, schema validity), the mirror to the candidate,
// and a candidate that failed before the stable release answered in its place.
class RolloutFilter final : public Filter {
 public:
  std::string_view name() const override { return "rollout"; }
  unsigned hooks() const override { return kOnComplete; }

  void on_complete(RequestContext& ctx, Clock::time_point t_end, Env& env) const override {
    if (!env.rollout_sink || !ctx.resolution || !ctx.resolution->live) return;
    if (ctx.flags.pinned) return;  // a release flag chose the release: no arm of the rollout answered
    if (ctx.capture) report(ctx, t_end, env);
    if (ctx.rollout.candidate_failure != ErrorKind::kNone) report_candidate_failure(ctx, env);
  }

 private:
  static void report(RequestContext& ctx, Clock::time_point t_end, Env& env) {
    if (!says_something_about_release(ctx)) return;
    const config::RolloutLive& live = *ctx.resolution->live;
    rollout::Observation o = observe(ctx, t_end);
    if (ctx.rollout.shadow && ctx.status == 200) {
      ShadowJob job{ctx.resolution->route, live.id,      ctx.request_id,
                    std::move(ctx.rollout.shadow_body), std::string(ctx.vars_header), ctx.info.json_schema,
                    o,                                  ctx.answer};
      if (!env.mirror || !env.mirror(std::move(job), live.shadow_max_inflight))
        const_cast<config::RolloutLive&>(live).shadow_dropped.fetch_add(1, std::memory_order_relaxed);
    }
    env.rollout_sink->push(env.worker,
                           rollout::Sample{live.id, rollout::request_key(ctx.request_id), ctx.rollout.candidate, o});
  }

  // An upstream 4xx is the candidate's fault only if stable then answered the same request.
  static void report_candidate_failure(const RequestContext& ctx, Env& env) {
    if (ctx.rollout.candidate_failure == ErrorKind::kStatus4xx && ctx.status != 200) return;
    rollout::Observation o;
    o.error = true;
    o.latency_ms = ctx.rollout.candidate_failed_ms;
    env.rollout_sink->push(env.worker, rollout::Sample{ctx.resolution->live->id, 0, true, o});
  }
};

const StageFilter kAuthenticate{"authenticate", authenticate};
const StageFilter kTranslate{"translate", translate};
const StageFilter kParse{"parse", parse};
const StageFilter kAdmit{"admit", admit};
const StageFilter kRoute{"route", route};
const StageFilter kRender{"render", render};
const StageFilter kSelectUpstream{"select_upstream", select_upstream};
const GateFilter kGate;
const RateLimitFilter kRateLimit;
const ResponseCacheFilter kResponseCache;
const LastGoodFilter kLastGood;
const AnswerFilter kAnswer;
const MetricsFilter kMetrics;
const AlarmRefusalFilter kAlarmRefusal;
const RequestLogFilter kRequestLog;
const RolloutFilter kRollout;

// Authentication runs before the body is parsed: unauthenticated clients learn nothing
// about their payload and cost no parse. The cache answers only after render (a hit is
// keyed by the rendered request and the release that would have answered).
// The answer filter reads usage and the answer before last_good and response_cache keep it.
// Shedding before rate limits (a shed request spends none of its tenant's tokens); rate
// limits before the cache (a cache hit still counts as a request).
// The answer filter checks a whole answer before the caches keep it (it has no request hook:
// its place changes nothing on the way in).
// Translation (another API's front door) is a parse too: after authentication as well.
// The flags filter sits between route and render: a kill switch or a release flag acts on
// the resolved route before the release is rendered.
const std::array<const Filter*, 17> kBuiltin = {&kAuthenticate, &kTranslate, &kParse,     &kAdmit,         &kRoute,
                                                &kAlarmRefusal, &flags_filter(), &kRender,       &kSelectUpstream, &kRateLimit, &kAnswer,
                                                &kResponseCache, &kLastGood,  &kGate,       &kMetrics,
                                                &kRequestLog,   &kRollout};

}  // namespace

const Filter* builtin_filter(std::string_view name) {
  for (const Filter* f : kBuiltin)
    if (f->name() == name) return f;
  return nullptr;
}

std::vector<const Filter*> Chain::builtin() { return {kBuiltin.begin(), kBuiltin.end()}; }

namespace {
bool sheds(const config::Config& c) {
  for (const auto& p : c.pools)
    if (p.admission.enabled()) return true;
  return false;
}

bool keeps_last_good(const config::Config& c) {
  for (const auto& f : c.fallbacks)
    for (const auto& st : f.chain)
      if (st.last_good) return true;
  return false;
}
}  // namespace

std::optional<Reply> stored_answer(RequestContext& ctx, Env& env, const std::string& stored) {
  std::string out = ctx.info.stream ? replay_as_stream(env.json, ctx, stored) : stored;
  if (out.empty()) return std::nullopt;
  if (auto usage = json::response_usage_and_answer(env.json, stored, kMaxCapturedAnswer,
                                                   ctx.capture ? &ctx.answer : nullptr, &ctx.finish_reason)) {
    ctx.tokens_in = usage->prompt_tokens;
    ctx.tokens_out = usage->completion_tokens;
    ctx.tokens_cached = usage->cached_tokens;
  }
  Reply r;
  r.body = std::move(out);
  r.content_type = ctx.info.stream ? "text/event-stream" : "application/json";
  return r;
}

std::shared_ptr<const Chain> Chain::compile(const config::Snapshot& snap) {
  std::vector<const Filter*> fs;
  for (const Filter* f : kBuiltin) {
    if (f == &kResponseCache && snap.config().response_cache.routes.empty()) continue;
    if (f == &kLastGood && !keeps_last_good(snap.config())) continue;
    if (f == &kRateLimit && snap.config().tenants.empty()) continue;
    if (f == &kGate && !sheds(snap.config())) continue;
    if (f == &kAlarmRefusal && snap.config().alarm_refusal_routes.empty()) continue;
    if (f == &flags_filter() && !snap.flags().acts_on_requests()) continue;
    fs.push_back(f);
  }
  // Last: its request hook runs only for requests that will be forwarded; traced requests
  // refused earlier are decided at completion.
  if (snap.config().telemetry.otlp.enabled()) fs.push_back(&otel_filter());
  return std::make_shared<const Chain>(std::move(fs));
}

double request_cost(const RequestContext& ctx, Clock::time_point t_end) {
  if (ctx.upstream.empty() || !ctx.snap) return -1;
  for (const auto& u : ctx.snap->upstreams()) {
    if (u.cfg->name != ctx.upstream) continue;
    const double seconds = std::chrono::duration<double>(t_end - ctx.t_start).count();
    if (ctx.tokens_in >= 0 || ctx.tokens_out >= 0) return u.cfg->cost(ctx.tokens_in, ctx.tokens_cached, ctx.tokens_out, seconds);
    // Unknown usage of an answer that was (partly) generated costs its estimate, as the
    // limiter keeps it: hanging up before the usage chunk does not dodge a budget.
    if ((ctx.content_chunks > 0 || ctx.status == 499) && ctx.rate.reserved_tokens > 0)
      return u.cfg->cost(ctx.rate.prompt_tokens, 0, std::max<int64_t>(0, ctx.rate.reserved_tokens - ctx.rate.prompt_tokens),
                         seconds);
    return u.cfg->cost(0, 0, 0, seconds);  // nothing generated: only time on a self-hosted upstream
  }
  return -1;
}

bool says_something_about_release(const RequestContext& ctx) {
  // Client mistakes and hang-ups say nothing about a release (a template that needs a
  // variable clients do not send does: missing_variable counts as an error).
  // Nor does the gateway's own admission (a tenant's limit, a pool shedding load).
  if (ctx.status == 499 || ctx.status == 0 || ctx.error == ErrorKind::kRateLimited ||
      ctx.error == ErrorKind::kQuotaExceeded || ctx.error == ErrorKind::kOverloaded)
    return false;
  return !(ctx.status >= 400 && ctx.status < 500 && ctx.status != 429 && ctx.error != ErrorKind::kMissingVariable);
}

rollout::Observation observe(const RequestContext& ctx, Clock::time_point t_end) {
  rollout::Observation o;
  o.error = ctx.status >= 500 || ctx.status == 429 || ctx.error == ErrorKind::kMissingVariable;
  o.latency_ms = static_cast<double>(micros_between(ctx.t_start, t_end)) / 1000.0;
  if (ctx.streamed && ctx.t_first_token != Clock::time_point{}) {
    o.ttft_ms = static_cast<double>(micros_between(ctx.t_start, ctx.t_first_token)) / 1000.0;
    int64_t n = ctx.tokens_out > 0 ? ctx.tokens_out : ctx.content_chunks;
    if (n > 1) o.tpot_ms = static_cast<double>(micros_between(ctx.t_first_token, ctx.t_last_token)) / 1000.0 / double(n - 1);
  }
  if (ctx.tokens_in >= 0) o.tokens_in = static_cast<double>(ctx.tokens_in);
  if (ctx.tokens_out >= 0) o.tokens_out = static_cast<double>(ctx.tokens_out);
  o.cost = ctx.cost_usd;
  if (ctx.status == 200) {
    o.refusal = quality::is_refusal(ctx.answer, ctx.finish_reason) ? 1 : 0;
    if (ctx.info.response_format == "json_object" || ctx.info.response_format == "json_schema")
      o.schema_valid = quality::check_json(ctx.answer, ctx.info.json_schema).valid ? 1 : 0;
  }
  return o;
}

}  // namespace sluice::pipeline
