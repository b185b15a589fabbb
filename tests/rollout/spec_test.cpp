#include <gtest/gtest.h>

#include "rollout/spec.hpp"

using namespace sluice::rollout;

TEST(RolloutSpec, ParsesStepsGatesAndApprovals) {
  std::string err;
  auto s = parse_spec(R"(
strategy: shadow-canary
alpha: 0.02
sticky_header: X-Session-Id
shadow: {share: 0.3, agreement: number}
require_approval_above: 50
steps:
  - shadow: 30s
  - setWeight: 5
  - pause: 10m
  - setWeight: 100
gates:
  - error_rate <= stable + 0.005
  - {check: "p99_ttft_ms < 800ms", min_samples: 200, max_duration: 1h, on_inconclusive: rollback, guardrail: false}
  - cost_per_call <= stable * 1.10
  - {check: "p99_latency_ms <= stable * 1.2", must_pass: false}
webhook: http://127.0.0.1:9/hook
)",
                      err);
  ASSERT_TRUE(s) << err;
  EXPECT_EQ(s->strategy, "shadow-canary");
  EXPECT_DOUBLE_EQ(s->alpha, 0.02);
  EXPECT_EQ(s->sticky_header, "x-session-id");
  EXPECT_DOUBLE_EQ(s->shadow_share, 0.3);
  ASSERT_EQ(s->steps.size(), 5u);  // an approval was inserted before setWeight 100
  EXPECT_EQ(s->steps[0].kind, StepKind::kShadow);
  EXPECT_EQ(s->steps[0].duration_ms, 30000);
  EXPECT_EQ(s->steps[2].duration_ms, 600000);
  EXPECT_EQ(s->steps[3].kind, StepKind::kApproval);
  EXPECT_EQ(s->steps[4].weight, 100);
  ASSERT_EQ(s->gates.size(), 4u);
  EXPECT_TRUE(s->gates[0].must_pass);
  EXPECT_FALSE(s->gates[3].must_pass);
  EXPECT_TRUE(s->gates[0].relative);
  EXPECT_DOUBLE_EQ(s->gates[0].limit, 0.005);
  EXPECT_DOUBLE_EQ(s->gates[0].factor, 1);
  EXPECT_FALSE(s->gates[1].relative);
  EXPECT_DOUBLE_EQ(s->gates[1].limit, 800);
  EXPECT_EQ(s->gates[1].min_samples, 200);
  EXPECT_EQ(s->gates[1].max_duration_ms, 3600000);
  EXPECT_EQ(s->gates[1].on_inconclusive, OnInconclusive::kRollback);
  EXPECT_FALSE(s->gates[1].guardrail);
  EXPECT_DOUBLE_EQ(s->gates[2].factor, 1.10);

  // The stored form reads back to the same spec.
  auto again = parse_spec(spec_json(*s), err);
  ASSERT_TRUE(again) << err;
  EXPECT_EQ(spec_json(*again), spec_json(*s));
}

TEST(RolloutSpec, RejectsWithTheFieldAtFault) {
  std::string err;
  EXPECT_FALSE(parse_spec("strategy: yolo", err));
  EXPECT_NE(err.find("strategy"), std::string::npos);
  EXPECT_FALSE(parse_spec("gates: [\"latency_p999 < 3\"]", err));
  EXPECT_NE(err.find("gates[0]"), std::string::npos);
  EXPECT_FALSE(parse_spec("gates: [\"error_rate ~ 3\"]", err));
  EXPECT_FALSE(parse_spec("steps: [{setWeight: 150}]", err));
  EXPECT_NE(err.find("steps[0]"), std::string::npos);
  EXPECT_FALSE(parse_spec("steps: [{pause: forever}]", err));
  EXPECT_FALSE(parse_spec("alpha: 0.9", err));
  EXPECT_FALSE(parse_spec("webhook: ftp://x", err));
  EXPECT_FALSE(parse_spec("shadow: {share: 0}", err));
  EXPECT_FALSE(parse_spec("[1, 2", err));
  EXPECT_FALSE(parse_spec("- just a list", err));
}

TEST(RolloutSpec, MetricsAndDefaults) {
  EXPECT_EQ(metric_info("p99_ttft_ms")->kind, MetricKind::kQuantile);
  EXPECT_DOUBLE_EQ(metric_info("p95_latency_ms")->q, 0.95);
  EXPECT_EQ(metric_info("p95_latency_ms")->base, "latency_ms");
  EXPECT_EQ(metric_info("shadow_agreement")->kind, MetricKind::kShadowProportion);
  EXPECT_FALSE(metric_info("p42_latency_ms"));
  EXPECT_EQ(metric_info("tokens_in")->kind, MetricKind::kMean);
  for (const char* s : {"canary", "shadow", "blue-green", "shadow-canary"}) {
    Spec d = default_spec(s);
    EXPECT_FALSE(d.steps.empty()) << s;
    EXPECT_FALSE(d.gates.empty()) << s;
  }
  EXPECT_EQ(default_spec("blue-green").steps[0].kind, StepKind::kWarm);
  EXPECT_TRUE(default_spec("canary").gates[0].must_pass);
  EXPECT_FALSE(default_spec("canary").gates[1].must_pass);  // the p99 gate only acts on a fail
}

TEST(RolloutSpec, RoutePolicyInsertsApprovalsTheSpecDidNotAskFor) {
  std::string err;
  auto s = parse_spec("steps: [{setWeight: 10}, {pause: 1m}, {setWeight: 60}, {pause: 1m}, {setWeight: 100}]", err);
  ASSERT_TRUE(s) << err;
  ASSERT_EQ(s->steps.size(), 5u);
  require_approval_above(*s, 50);
  ASSERT_EQ(s->steps.size(), 7u);
  EXPECT_EQ(s->steps[2].kind, StepKind::kApproval);
  EXPECT_EQ(s->steps[3].weight, 60);
  EXPECT_EQ(s->steps[5].kind, StepKind::kApproval);
  require_approval_above(*s, 90);  // a laxer policy changes nothing
  EXPECT_EQ(s->steps.size(), 7u);
  EXPECT_DOUBLE_EQ(s->require_approval_above, 50);
}
