#include "pipeline/stages.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include "config/loader.hpp"
#include "core/crypto.hpp"

namespace sluice::pipeline {

namespace {
struct Fixture {
  std::shared_ptr<const config::Snapshot> snap;
  simdjson::dom::parser json;
  metrics::Registry reg{1};
  Env env{json, reg.shard(0), 0, 100};

  explicit Fixture(const std::string& yaml) {
    auto r = config::load_string(yaml, "t.yaml");
    config::validate(r);
    EXPECT_TRUE(r.ok());
    std::string err;
    snap = config::Snapshot::build(r.config, 1, err);
  }
  std::optional<ApiError> run(RequestContext& ctx) {
    ctx.snap = snap.get();
    return Chain::compile(*snap)->on_request(ctx, env).error;
  }
};
const char* kRoutes = R"(
upstreams:
  - {name: a, url: 'http://127.0.0.1:1'}
routes:
  - {name: bot, upstream: a, model: pinned-1}
api_keys:
  - {tenant: acme, key_sha256: 0000000000000000000000000000000000000000000000000000000000000000}
)";
}  // namespace

TEST(Stages, AuthenticateRunsBeforeParse) {
  Fixture f(kRoutes);
  std::string body = "{broken";
  RequestContext ctx;
  ctx.body = &body;
  auto e = f.run(ctx);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, 401);
}

TEST(Stages, RouteRewritesModelAndAsksForUsage) {
  std::string yaml = kRoutes;
  yaml.replace(yaml.find("0000000000000000000000000000000000000000000000000000000000000000"), 64, sha256_hex("sk-1"));
  Fixture f(yaml);
  std::string body = R"({"model":"bot","stream":true,"messages":[{"role":"user","content":"hi"}],"extra":[1, 2]})";
  RequestContext ctx;
  ctx.body = &body;
  ctx.authorization = "Bearer sk-1";
  auto e = f.run(ctx);
  ASSERT_FALSE(e) << e->message;
  EXPECT_EQ(ctx.tenant, "acme");
  EXPECT_TRUE(ctx.strip_usage);
  EXPECT_EQ(body,
            R"({"model":"pinned-1","stream":true,"messages":[{"role":"user","content":"hi"}],"extra":[1, 2],"stream_options":{"include_usage":true}})");
  EXPECT_EQ(ctx.candidates, std::vector<size_t>{0});
}

TEST(Stages, ErrorsForUnknownModelBadJsonAndOverload) {
  Fixture f("upstreams:\n  - {name: a, url: 'http://127.0.0.1:1', models: [m]}\n  - {name: b, url: 'http://127.0.0.1:2'}\n");
  std::string body = R"({"model":"zzz","messages":[{"role":"user","content":"x"}]})";
  RequestContext ctx;
  ctx.body = &body;
  auto e = f.run(ctx);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, 404);
  EXPECT_EQ(e->code, "model_not_found");

  std::string bad = R"({"model":"m","messages":[)";
  RequestContext c2;
  c2.body = &bad;
  e = f.run(c2);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, 400);

  std::string ok = R"({"model":"m","messages":[{"role":"user","content":"x"}]})";
  RequestContext c3;
  c3.body = &ok;
  f.env.metrics.inflight.store(1000);
  e = f.run(c3);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, 503);
}

TEST(Stages, LongPromptsGoToTheRoutesLongContextTargets) {
  Fixture f(R"(
upstreams:
  - {name: a, url: 'http://127.0.0.1:1'}
  - {name: big1, url: 'http://127.0.0.1:2'}
  - {name: big2, url: 'http://127.0.0.1:3'}
pools:
  - {name: long, upstreams: [big1, big2], balance: least_request}
routes:
  - {name: bot, upstream: a}
long_context:
  - {route: bot, above_tokens: 100, upstream: long}
)");
  std::string small = R"({"model":"bot","messages":[{"role":"user","content":"hi"}]})";
  RequestContext c1;
  c1.body = &small;
  ASSERT_FALSE(f.run(c1));
  EXPECT_EQ(c1.candidates, std::vector<size_t>{0});
  EXPECT_FALSE(c1.long_context);
  std::string big = R"({"model":"bot","messages":[{"role":"user","content":")" + std::string(600, 'x') + "\"}]}";
  RequestContext c2;
  c2.body = &big;
  ASSERT_FALSE(f.run(c2));
  EXPECT_EQ(c2.candidates, (std::vector<size_t>{1, 2}));
  EXPECT_TRUE(c2.long_context);
  ASSERT_TRUE(c2.balance);
  EXPECT_EQ(c2.balance->policy, upstream::Policy::kLeastRequest);
  EXPECT_NE(request_log_line(c2, Clock::now()).find("\"long_context\":true"), std::string::npos);
}

TEST(Stages, AnAbsurdMaxTokensCannotOverflowAnEstimate) {
  Fixture f(kRoutes);
  std::string body = R"({"model":"bot","max_tokens":9223372036854775807,"messages":[{"role":"user","content":"hi"}]})";
  RequestContext ctx;
  ctx.body = &body;
  ctx.authorization = "Bearer x";
  simdjson::dom::parser p;
  ctx.snap = f.snap.get();
  ASSERT_FALSE(parse(ctx, f.env));
  EXPECT_EQ(ctx.info.max_tokens, int64_t(1) << 30);
}

TEST(Account, LogLineHasEveryField) {
  RequestContext ctx;
  ctx.request_id = "req_1";
  ctx.t_start = Clock::now();
  ctx.status = 200;
  ctx.upstream = "a";
  ctx.tokens_in = 3;
  std::string line = request_log_line(ctx, ctx.t_start + std::chrono::milliseconds(5));
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  ASSERT_FALSE(p.parse(line).get(doc)) << line;
  for (const char* k : {"ts", "request_id", "tenant", "route", "model", "upstream", "status", "stream", "attempts",
                        "tokens_in", "tokens_out", "ttft_ms", "total_ms", "error_kind"}) {
    EXPECT_EQ(doc[k].error(), simdjson::SUCCESS) << k;
  }
  double total = 0;
  ASSERT_FALSE(doc["total_ms"].get_double().get(total));
  EXPECT_NEAR(total, 5.0, 0.01);
}

}  // namespace sluice::pipeline
