// The chain and each built-in filter on its own: what it decides on the request, and what
// it learns from the response hooks.
#include "pipeline/filters.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstdio>
#include <map>
#include <fstream>
#include <sstream>

#include "admission/limiter.hpp"
#include "cache/response_cache.hpp"
#include "config/loader.hpp"
#include "metrics/metrics.hpp"
#include "pipeline/stages.hpp"
#include "reqlog/request_log.hpp"
#include "rollout/sink.hpp"

namespace sluice::pipeline {

namespace {

std::shared_ptr<const config::Snapshot> build(const std::string& yaml) {
  auto r = config::load_string(yaml, "t.yaml");
  config::validate(r);
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? std::string() : r.errors[0]);
  std::string err;
  auto snap = config::Snapshot::build(r.config, 1, err);
  EXPECT_TRUE(snap) << err;
  return snap;
}

const char* kPlain = R"(
upstreams:
  - {name: a, url: 'http://127.0.0.1:1', price: {input_per_1m: 1, output_per_1m: 2}}
routes:
  - {name: bot, upstream: a}
)";

const char* kCached = R"(
upstreams:
  - {name: a, url: 'http://127.0.0.1:1'}
routes:
  - {name: bot, upstream: a}
response_cache:
  routes:
    - {route: bot, ttl_ms: 60000}
)";

const char* kLastGood = R"(
upstreams:
  - {name: a, url: 'http://127.0.0.1:1'}
routes:
  - {name: bot, upstream: a}
fallbacks:
  - {route: bot, chain: [{last_good: true}, {static: busy}]}
)";

struct Rig {
  std::shared_ptr<const config::Snapshot> snap;
  std::shared_ptr<const Chain> chain;
  simdjson::dom::parser json;
  metrics::Registry reg{1};
  cache::ResponseCache cache;
  rollout::Sink sink{1, 64};
  Env env{json, reg.shard(0), 0, 100, nullptr, &sink, &cache, {}};

  explicit Rig(const std::string& yaml) : snap(build(yaml)), chain(Chain::compile(*snap)) {}

  RequestContext ctx(std::string& body) {
    RequestContext c;
    c.request_id = "req_1";
    c.t_start = Clock::now();
    c.snap = snap.get();
    c.body = &body;
    return c;
  }
};

const std::string kWhole =
    R"({"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Paris."},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}})";

// A filter that records what it saw, to check the chain's dispatch.
class Probe final : public Filter {
 public:
  Probe(std::string_view name, unsigned hooks, bool fail = false) : name_(name), hooks_(hooks), fail_(fail) {}
  std::string_view name() const override { return name_; }
  unsigned hooks() const override { return hooks_; }
  Verdict on_request(RequestContext& ctx, Env&) const override {
    ctx.error_code += std::string(name_) + ";";
    return fail_ ? Verdict::fail(bad_request("no", "probe")) : Verdict::next();
  }
  void on_head(RequestContext& ctx, const Head&, Env&) const override { ctx.fallback += "head;"; }
  void on_complete(RequestContext& ctx, Clock::time_point, Env&) const override { ctx.upstream += name_; }

 private:
  std::string_view name_;
  unsigned hooks_;
  bool fail_;
};

}  // namespace

TEST(Chain, CompilesOnlyTheFiltersASnapshotNeeds) {
  Rig plain(kPlain);
  auto names = plain.chain->names();
  EXPECT_EQ(std::find(names.begin(), names.end(), "response_cache"), names.end());
  ASSERT_EQ(names.front(), "authenticate");  // nothing is parsed before the key is checked
  EXPECT_EQ(names[1], "translate");  // another API's body is a parse too: after the key
  EXPECT_EQ(names[2], "parse");
  Rig cached(kCached);
  names = cached.chain->names();
  auto cache_at = std::find(names.begin(), names.end(), "response_cache");
  auto render_at = std::find(names.begin(), names.end(), "render");
  ASSERT_NE(cache_at, names.end());
  EXPECT_LT(render_at, cache_at);  // a hit is keyed by the rendered request
  for (std::string_view n : {"answer", "metrics", "request_log", "rollout"})
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  EXPECT_EQ(builtin_filter("metrics")->name(), "metrics");
  EXPECT_EQ(builtin_filter("nope"), nullptr);
}

TEST(Chain, ARequestVerdictStopsTheChainAndHooksReachOnlyTheirFilters) {
  Probe a("a", kOnRequest | kOnComplete), b("b", kOnRequest | kOnHead, true), c("c", kOnRequest | kOnComplete);
  Chain chain({&a, &b, &c});
  simdjson::dom::parser p;
  metrics::Registry reg{1};
  Env env{p, reg.shard(0)};
  RequestContext ctx;
  Verdict v = chain.on_request(ctx, env);
  ASSERT_TRUE(v.error);
  EXPECT_EQ(v.error->code, "probe");
  EXPECT_EQ(ctx.error_code, "a;b;");  // c never ran
  chain.on_head(ctx, Head{200, "application/json", false}, env);
  EXPECT_EQ(ctx.fallback, "head;");  // only b asked for the head
  chain.on_complete(ctx, Clock::now(), env);
  EXPECT_EQ(ctx.upstream, "ac");  // in order, b has no completion hook
}

TEST(ResponseCacheFilter, MissStoresTheWholeAnswerAndAHitAnswersWithoutUpstream) {
  Rig rig(kCached);
  const Filter* f = builtin_filter("response_cache");
  std::string body = R"({"model":"bot","temperature":0,"messages":[{"role":"user","content":"capital?"}]})";
  RequestContext miss = rig.ctx(body);
  ASSERT_FALSE(rig.chain->on_request(miss, rig.env).error);
  EXPECT_EQ(miss.cache.outcome, "miss");
  ASSERT_FALSE(miss.cache.key.empty());
  miss.status = 200;
  miss.upstream = "a";
  ASSERT_FALSE(rig.chain->on_body(miss, kWhole, rig.env));  // answer, then the cache fills

  std::string again = body;
  RequestContext hit = rig.ctx(again);
  Verdict v = rig.chain->on_request(hit, rig.env);
  ASSERT_TRUE(v.reply);
  EXPECT_EQ(v.reply->body, kWhole);
  EXPECT_EQ(hit.cache.outcome, "hit");
  EXPECT_EQ(hit.tokens_in, 7);  // accounted as the cached answer's usage
  EXPECT_EQ(hit.tokens_out, 2);
  ASSERT_EQ(v.reply->headers.size(), 1u);
  EXPECT_EQ(v.reply->headers[0].second, "hit");

  // The same question as a stream is replayed as one.
  std::string streamed =
      R"({"model":"bot","temperature":0,"stream":true,"messages":[{"role":"user","content":"capital?"}]})";
  RequestContext s = rig.ctx(streamed);
  v = rig.chain->on_request(s, rig.env);
  ASSERT_TRUE(v.reply);
  EXPECT_EQ(v.reply->content_type, "text/event-stream");
  EXPECT_NE(v.reply->body.find("data: [DONE]"), std::string::npos);
  EXPECT_NE(v.reply->body.find("Paris."), std::string::npos);
  (void)f;
}

TEST(ResponseCacheFilter, AnInvalidAnswerIsNeverCached) {
  Rig rig(kCached);
  std::string body = R"({"model":"bot","temperature":0,"messages":[{"role":"user","content":"q"}]})";
  RequestContext c = rig.ctx(body);
  ASSERT_TRUE(rig.chain->on_request(c, rig.env).proceed());
  c.status = 200;
  c.upstream = "a";
  auto e = rig.chain->on_body(c, "<html>truncated", rig.env);
  ASSERT_TRUE(e);  // the answer filter refuses it before the cache sees it
  EXPECT_EQ(e->code, "bad_response");
  std::string again = body;
  RequestContext next = rig.ctx(again);
  EXPECT_FALSE(rig.chain->on_request(next, rig.env).reply);
}

TEST(ResponseCacheFilter, NeitherSamplingNorFallbackAnswersNorOtherTenantsShareIt) {
  Rig rig(kCached);
  std::string sampled = R"({"model":"bot","temperature":0.7,"messages":[{"role":"user","content":"q"}]})";
  RequestContext c1 = rig.ctx(sampled);
  ASSERT_FALSE(rig.chain->on_request(c1, rig.env).error);
  EXPECT_TRUE(c1.cache.key.empty());  // not deterministic: never cached
  EXPECT_TRUE(c1.cache.outcome.empty());

  std::string body = R"({"model":"bot","seed":1,"messages":[{"role":"user","content":"q"}]})";
  RequestContext fb = rig.ctx(body);
  ASSERT_FALSE(rig.chain->on_request(fb, rig.env).error);
  fb.status = 200;
  fb.fallback = "other-pool";  // another model answered: not this route's answer
  ASSERT_FALSE(rig.chain->on_body(fb, kWhole, rig.env));
  std::string b2 = body;
  RequestContext again = rig.ctx(b2);
  EXPECT_FALSE(rig.chain->on_request(again, rig.env).reply);

  again.status = 200;
  ASSERT_FALSE(rig.chain->on_body(again, kWhole, rig.env));  // stored for tenant ""
  std::string b3 = body;
  RequestContext other = rig.ctx(b3);
  other.tenant = "globex";
  // authenticate clears nothing without keys; set the tenant the way it would be.
  Verdict v = Verdict::next();
  for (const Filter* f : rig.chain->filters()) {
    if (!(f->hooks() & kOnRequest)) continue;
    if (f->name() == "authenticate") continue;
    v = f->on_request(other, rig.env);
    if (!v.proceed()) break;
  }
  EXPECT_FALSE(v.reply);  // another tenant's answer is not served
}

TEST(LastGoodFilter, KeepsGoodAnswersOfTheRoutesOwnUpstreamsPerTenantWholeOrStreamed) {
  Rig plain(kPlain);
  auto names = plain.chain->names();
  EXPECT_EQ(std::find(names.begin(), names.end(), "last_good"), names.end());
  Rig rig(kLastGood);
  names = rig.chain->names();
  ASSERT_NE(std::find(names.begin(), names.end(), "last_good"), names.end());
  cache::ResponseCache kept;
  rig.env.last_good = &kept;

  // A sampled (temperature 0.9) whole answer is kept.
  std::string body = R"({"model":"bot","temperature":0.9,"messages":[{"role":"user","content":"capital?"}]})";
  RequestContext whole = rig.ctx(body);
  ASSERT_TRUE(rig.chain->on_request(whole, rig.env).proceed());
  ASSERT_FALSE(whole.cache.last_good_key.empty());
  whole.status = 200;
  whole.upstream = "a";
  ASSERT_FALSE(rig.chain->on_body(whole, kWhole, rig.env));
  EXPECT_EQ(kept.get(whole.cache.last_good_key, unix_millis()), kWhole);

  // Another tenant asking the same never sees it.
  std::string same = body;
  RequestContext other = rig.ctx(same);
  other.tenant = "globex";
  for (const Filter* f : rig.chain->filters())
    if ((f->hooks() & kOnRequest) && f->name() != "authenticate") ASSERT_TRUE(f->on_request(other, rig.env).proceed());
  EXPECT_NE(other.cache.last_good_key, whole.cache.last_good_key);
  EXPECT_FALSE(kept.get(other.cache.last_good_key, unix_millis()));

  // A stream is kept as the whole completion it amounts to, and replays as a stream.
  std::string sbody = R"({"model":"bot","stream":true,"messages":[{"role":"user","content":"hello?"}]})";
  RequestContext s = rig.ctx(sbody);
  ASSERT_TRUE(rig.chain->on_request(s, rig.env).proceed());
  EXPECT_TRUE(s.capture);
  json::ChunkInfo c;
  c.valid_json = c.has_content = true;
  c.content = "Hello there";
  c.finish_reason = "stop";
  rig.chain->on_event(s, Event{c, Clock::now()}, rig.env);
  s.streamed = true;
  s.status = 200;
  rig.chain->on_complete(s, Clock::now(), rig.env);
  auto stored = kept.get(s.cache.last_good_key, unix_millis());
  ASSERT_TRUE(stored);
  EXPECT_NE(stored->find("\"object\":\"chat.completion\""), std::string::npos) << *stored;
  std::string again = sbody;
  RequestContext replay = rig.ctx(again);
  ASSERT_TRUE(rig.chain->on_request(replay, rig.env).proceed());
  auto r = stored_answer(replay, rig.env, *stored);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->content_type, "text/event-stream");
  EXPECT_NE(r->body.find("Hello there"), std::string::npos);
  EXPECT_NE(r->body.find("data: [DONE]"), std::string::npos);

  // Fallback and failed answers are never kept as good ones.
  std::string fb = R"({"model":"bot","messages":[{"role":"user","content":"new"}]})";
  RequestContext degraded = rig.ctx(fb);
  ASSERT_TRUE(rig.chain->on_request(degraded, rig.env).proceed());
  degraded.status = 200;
  degraded.fallback = "static";
  ASSERT_FALSE(rig.chain->on_body(degraded, kWhole, rig.env));
  EXPECT_FALSE(kept.get(degraded.cache.last_good_key, unix_millis()));
}

TEST(RateLimitFilter, ReservesAnswersWithHeadersAndRefundsWhatWasNotUsed) {
  Rig rig(R"(
upstreams:
  - {name: a, url: 'http://127.0.0.1:1'}
routes:
  - {name: bot, upstream: a}
tenants:
  - {name: acme, rpm: 2, tpm: 1000, max_input_tokens: 200}
)");
  admission::Registry limits;
  rig.env.limits = &limits;
  auto names = rig.chain->names();
  ASSERT_NE(std::find(names.begin(), names.end(), "rate_limit"), names.end());
  auto header = [](const RequestContext& c, std::string_view name) {
    for (const auto& [n, v] : c.response_headers)
      if (n == name) return v;
    return std::string("-");
  };
  std::string body = R"({"model":"bot","max_tokens":100,"messages":[{"role":"user","content":"hi"}]})";
  RequestContext first = rig.ctx(body);
  first.tenant = "acme";
  ASSERT_TRUE(rig.chain->on_request(first, rig.env).proceed());
  EXPECT_EQ(header(first, "x-ratelimit-limit-requests"), "2");
  EXPECT_EQ(header(first, "x-ratelimit-remaining-requests"), "1");
  EXPECT_EQ(header(first, "x-ratelimit-limit-tokens"), "1000");
  const int64_t reserved = first.rate.reserved_tokens;
  EXPECT_EQ(reserved, static_cast<int64_t>(body.size() / 4) + 100);
  EXPECT_EQ(header(first, "x-ratelimit-remaining-tokens"), std::to_string(1000 - reserved));
  // It used 10 tokens: the rest comes back.
  first.status = 200;
  first.tokens_in = 6;
  first.tokens_out = 4;
  rig.chain->on_complete(first, Clock::now(), rig.env);
  std::string b2 = body;
  RequestContext second = rig.ctx(b2);
  second.tenant = "acme";
  ASSERT_TRUE(rig.chain->on_request(second, rig.env).proceed());
  EXPECT_EQ(header(second, "x-ratelimit-remaining-tokens"), std::to_string(1000 - 10 - reserved));
  std::string b3 = body;
  RequestContext third = rig.ctx(b3);
  third.tenant = "acme";
  Verdict v = rig.chain->on_request(third, rig.env);
  ASSERT_TRUE(v.error);  // the third request in the minute
  EXPECT_EQ(v.error->status, 429);
  EXPECT_EQ(v.error->code, "rate_limit_exceeded");
  EXPECT_EQ(v.error->kind, ErrorKind::kRateLimited);
  EXPECT_NE(header(third, "Retry-After"), "-");
  EXPECT_NE(header(third, "retry-after-ms"), "-");
  EXPECT_NE(rig.reg.render_prometheus().find("sluice_admission_refused_total{tenant=\"acme\",reason=\"rpm\"} 1"),
            std::string::npos);
  // Another tenant, and a tenant without limits, are not touched.
  std::string b4 = body;
  RequestContext free = rig.ctx(b4);
  free.tenant = "initech";
  EXPECT_TRUE(rig.chain->on_request(free, rig.env).proceed());
  EXPECT_TRUE(free.response_headers.empty());
  // An input above max_input_tokens is a 400 that names the limit.
  std::string big = R"({"model":"bot","messages":[{"role":"user","content":")" + std::string(2000, 'x') + "\"}]}";
  RequestContext huge = rig.ctx(big);
  huge.tenant = "acme";
  v = rig.chain->on_request(huge, rig.env);
  ASSERT_TRUE(v.error);
  EXPECT_EQ(v.error->status, 400);
  EXPECT_EQ(v.error->code, "input_too_long");
  EXPECT_NE(v.error->message.find("max_input_tokens limit of 200"), std::string::npos);
}

TEST(GateFilter, ShedsTheLowestTierFirstOverflowsFirstAndTheHeaderOnlyLowers) {
  Rig rig(R"(
upstreams:
  - {name: a, url: 'http://127.0.0.1:1'}
  - {name: b, url: 'http://127.0.0.1:2'}
  - {name: hosted, url: 'http://127.0.0.1:3'}
pools:
  - {name: p, upstreams: [a, b], balance: least_request, max_inflight: 10, shed_at: 0.8}
  - {name: q, upstreams: [a], max_inflight: 10, shed_at: 0.8, overflow: hosted, overflow_model: gpt-hosted}
routes:
  - {name: bot, upstream: p}
  - {name: spill, upstream: q}
tenants:
  - {name: ops, tier: critical}
  - {name: batch, tier: sheddable}
)");
  const Filter* gate_filter = builtin_filter("admission");
  ASSERT_TRUE(gate_filter);
  admission::Gate& gate = *rig.snap->config().pools[0].balance.gate;
  std::vector<int> held;
  auto load = [&](int n) {  // n slots held by other requests
    while (static_cast<int>(held.size()) > n) {
      gate.release(0, -1, 0);
      held.pop_back();
    }
    while (static_cast<int>(held.size()) < n) {
      ASSERT_EQ(gate.acquire(admission::Tier::kCritical, 0, nullptr, 0), admission::Gate::Result::kAdmitted);
      held.push_back(1);
    }
  };
  std::string overflowed;
  auto run = [&](std::string tenant, std::string priority = "", std::string model = "bot") {
    std::string body = R"({"model":")" + model + R"(","messages":[{"role":"user","content":"hi"}]})";
    RequestContext c = rig.ctx(body);
    c.tenant = tenant;
    c.header = [priority](std::string_view n) { return n == "x-sluice-priority" ? std::string_view(priority) : std::string_view(); };
    Verdict v = Verdict::next();
    for (const Filter* f : rig.chain->filters()) {
      if (!(f->hooks() & kOnRequest) || f->name() == "authenticate") continue;
      v = f->on_request(c, rig.env);
      if (!v.proceed()) break;
    }
    overflowed = c.admission.overflow.empty() ? "" : c.admission.overflow + " " + body;
    if (v.error) {
      bool retry_after = false;
      for (const auto& [k, val] : c.response_headers) retry_after = retry_after || (k == "Retry-After" && !val.empty());
      EXPECT_TRUE(v.error->status != 503 || retry_after) << "a 503 says when to retry";
    }
    c.status = v.error ? v.error->status : 200;
    gate_filter->on_complete(c, Clock::now(), rig.env);  // gives its slot back
    return v.error ? v.error->status : 0;
  };
  load(7);  // 70 %: everyone
  EXPECT_EQ(run("batch"), 0);
  load(8);  // 80 %: sheddable refused, fast, with Retry-After
  EXPECT_EQ(run("batch"), 503);
  EXPECT_EQ(run(""), 0);                 // standard
  EXPECT_EQ(run("", "sheddable"), 503);  // a standard key lowering itself
  load(9);  // 90 %: standard refused too
  EXPECT_EQ(run(""), 503);
  EXPECT_EQ(run("ops"), 0);
  load(10);  // full: critical refused as well (no queue configured in this rig)
  EXPECT_EQ(run("ops"), 503);
  load(0);
  EXPECT_EQ(gate.view().in_flight, 0) << "every admitted request gave its slot back";
  EXPECT_EQ(run("batch", "critical"), 400);  // never raised
  EXPECT_EQ(run("", "urgent"), 400);
  EXPECT_EQ(run("ops", "standard"), 0);
  // A pool with an overflow target spills there before it sheds anyone, with the model renamed.
  admission::Gate& q = *rig.snap->config().pools[1].balance.gate;
  for (int i = 0; i < 10; ++i) ASSERT_EQ(q.acquire(admission::Tier::kCritical, 0, nullptr, 0), admission::Gate::Result::kAdmitted);
  EXPECT_EQ(run("batch", "", "spill"), 0);
  EXPECT_NE(overflowed.find("hosted "), std::string::npos) << overflowed;
  EXPECT_NE(overflowed.find("\"model\":\"gpt-hosted\""), std::string::npos) << overflowed;
  EXPECT_EQ(q.view().overflowed, 1);
  const std::string m = rig.reg.render_prometheus();
  EXPECT_NE(m.find("sluice_admission_refused_total{tenant=\"batch\",reason=\"shed_sheddable\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("reason=\"shed_critical\"} 1"), std::string::npos) << m;
  EXPECT_EQ(gate.view().shed[0], 1);
  EXPECT_EQ(gate.view().shed[2], 2);
}

TEST(AnswerFilter, AccountsTokensTimesAndTheAnswerFromEvents) {
  Rig rig(kPlain);
  const Filter* f = builtin_filter("answer");
  std::string body;
  RequestContext ctx = rig.ctx(body);
  ctx.capture = true;
  auto t0 = Clock::now();
  json::ChunkInfo c1;
  c1.valid_json = c1.has_content = true;
  c1.content = "Hel";
  json::ChunkInfo c2 = c1;
  c2.content = "lo";
  c2.finish_reason = "stop";
  json::ChunkInfo usage;
  usage.valid_json = usage.usage_only = true;
  usage.usage.prompt_tokens = 5;
  usage.usage.completion_tokens = 2;
  f->on_event(ctx, Event{c1, t0}, rig.env);
  f->on_event(ctx, Event{c2, t0 + std::chrono::milliseconds(10)}, rig.env);
  f->on_event(ctx, Event{usage, t0 + std::chrono::milliseconds(11)}, rig.env);
  EXPECT_EQ(ctx.answer, "Hello");
  EXPECT_EQ(ctx.finish_reason, "stop");
  EXPECT_EQ(ctx.content_chunks, 2);
  EXPECT_EQ(ctx.t_first_token, t0);
  EXPECT_EQ(ctx.t_last_token, t0 + std::chrono::milliseconds(10));
  EXPECT_EQ(ctx.tokens_in, 5);
  EXPECT_EQ(ctx.tokens_out, 2);
}

TEST(AnswerFilter, AWholeAnswerIsParsedOnceAndGarbageIsABadResponse) {
  Rig rig(kPlain);
  const Filter* f = builtin_filter("answer");
  std::string body;
  RequestContext ctx = rig.ctx(body);
  ctx.status = 200;
  ctx.upstream = "a";
  ASSERT_FALSE(f->on_body(ctx, kWhole, rig.env));
  EXPECT_EQ(ctx.tokens_in, 7);
  EXPECT_TRUE(ctx.answer.empty());  // not captured unless asked
  ctx.capture = true;
  ASSERT_FALSE(f->on_body(ctx, kWhole, rig.env));
  EXPECT_EQ(ctx.answer, "Paris.");
  auto e = f->on_body(ctx, "<html>oops</html>", rig.env);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, 502);
  EXPECT_EQ(e->code, "bad_response");
  EXPECT_NE(rig.reg.render_prometheus().find("bad_response"), std::string::npos);
}

TEST(MetricsFilter, CountsUpstreamErrorStatusesAndEveryFinishedRequest) {
  Rig rig(kPlain);
  const Filter* f = builtin_filter("metrics");
  std::string body;
  RequestContext ctx = rig.ctx(body);
  ctx.upstream = "a";
  f->on_head(ctx, Head{429, "application/json", false}, rig.env);
  ctx.status = 429;
  f->on_complete(ctx, Clock::now(), rig.env);
  std::string text = rig.reg.render_prometheus();
  EXPECT_NE(text.find("status_429"), std::string::npos) << text;
  EXPECT_NE(text.find("status_class=\"4xx\"} 1"), std::string::npos) << text;
}

TEST(RequestLogFilter, WritesOneLinePerFinishedRequest) {
  Rig rig(kPlain);
  char path[] = "/tmp/sluice-reqlog-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    reqlog::RequestLog log(path, 1, 16, rig.reg);
    ASSERT_EQ(log.start(), "");
    rig.env.reqlog = &log;
    std::string body;
    RequestContext ctx = rig.ctx(body);
    ctx.status = 200;
    ctx.upstream = "a";
    builtin_filter("request_log")->on_complete(ctx, Clock::now(), rig.env);
    log.stop();
  }
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::remove(path);
  const std::string text = ss.str();
  EXPECT_NE(text.find("\"request_id\":\"req_1\""), std::string::npos) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);
}

TEST(RolloutFilter, ReportsTheArmMirrorsWithinCapacityAndBlamesAFailedCandidate) {
  Rig rig(kPlain);
  const Filter* f = builtin_filter("rollout");
  config::Resolution res;
  res.route = "bot";
  res.live = std::make_shared<config::RolloutLive>();
  res.live->id = "ro_1";
  res.live->shadow_max_inflight = 1;
  int mirrored = 0;
  rig.env.mirror = [&](ShadowJob&& job, int64_t max_inflight) {
    EXPECT_EQ(job.rollout_id, "ro_1");
    EXPECT_EQ(job.body, "{\"client\":1}");
    EXPECT_EQ(job.stable_text, "Paris.");
    if (mirrored >= max_inflight) return false;
    ++mirrored;
    return true;
  };
  auto finished = [&](int status, ErrorKind error) {
    std::string body;
    RequestContext ctx = rig.ctx(body);
    ctx.resolution = &res;
    ctx.capture = true;
    ctx.rollout.shadow = true;
    ctx.rollout.shadow_body = "{\"client\":1}";
    ctx.answer = "Paris.";
    ctx.upstream = "a";
    ctx.tokens_in = 1000;
    ctx.tokens_out = 1000;
    ctx.status = status;
    ctx.error = error;
    ctx.cost_usd = request_cost(ctx, Clock::now());  // as Chain::on_complete sets it
    return ctx;
  };
  RequestContext ok = finished(200, ErrorKind::kNone);
  f->on_complete(ok, Clock::now(), rig.env);
  RequestContext second = finished(200, ErrorKind::kNone);
  f->on_complete(second, Clock::now(), rig.env);  // over capacity: dropped and counted
  RequestContext client_error = finished(400, ErrorKind::kRequest);
  f->on_complete(client_error, Clock::now(), rig.env);  // says nothing about the release
  RequestContext failed = finished(503, ErrorKind::kUpstreamFailed);
  failed.rollout.candidate_failure = ErrorKind::kStatus5xx;
  f->on_complete(failed, Clock::now(), rig.env);

  EXPECT_EQ(mirrored, 1);
  EXPECT_EQ(res.live->shadow_dropped.load(), 1u);
  rollout::Sink::Batch b;
  rig.sink.drain(b);
  ASSERT_EQ(b.samples.size(), 4u);  // two answers, the 503, the candidate's own failure
  EXPECT_FALSE(b.samples[0].obs.error);
  EXPECT_NEAR(b.samples[0].obs.cost, 0.003, 1e-9);  // 1000 in at $1/M + 1000 out at $2/M
  EXPECT_TRUE(b.samples[2].obs.error);
  EXPECT_TRUE(b.samples[3].candidate);
  EXPECT_TRUE(b.samples[3].obs.error);
}

}  // namespace sluice::pipeline
