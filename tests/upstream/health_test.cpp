#include <gtest/gtest.h>

#include "upstream/health.hpp"

namespace sluice::upstream {
namespace {

BreakerSettings fast() {
  BreakerSettings s;
  s.consecutive_failures = 3;
  s.failure_ratio = 0.5;
  s.min_requests = 10;
  s.window_ms = 10000;
  s.open_ms = 1000;
  s.max_open_ms = 4000;
  s.half_open_probes = 1;
  return s;
}

TEST(Breaker, OpensOnConsecutiveFailuresAndProbesAfterTheCooldown) {
  Health h(fast());
  int64_t t = 1'000'000;
  for (int i = 0; i < 2; ++i) h.record(Outcome::kFailure, t, false, "reset");
  EXPECT_TRUE(h.admit(t).allowed);
  h.record(Outcome::kFailure, t, false, "reset");
  EXPECT_EQ(h.view(t).state, BreakerState::kOpen);
  EXPECT_NE(h.view(t).reason.find("3 consecutive failures"), std::string::npos) << h.view(t).reason;
  EXPECT_FALSE(h.admit(t + 999).allowed);
  EXPECT_EQ(h.available_at(t + 10), t + 1000);
  auto a = h.admit(t + 1000);  // half-open: one probe
  EXPECT_TRUE(a.allowed);
  EXPECT_TRUE(a.probe);
  EXPECT_FALSE(h.admit(t + 1001).allowed) << "only one probe at a time";
  h.record(Outcome::kSuccess, t + 1100, true);
  EXPECT_EQ(h.view(t + 1100).state, BreakerState::kClosed);
  EXPECT_TRUE(h.admit(t + 1100).allowed);
}

TEST(Breaker, CooldownDoublesWithEveryReopenUpToTheCap) {
  Health h(fast());
  int64_t t = 0;
  for (int i = 0; i < 3; ++i) h.record(Outcome::kFailure, t, false, "x");
  EXPECT_EQ(h.available_at(t), 1000);
  std::vector<int64_t> cooldowns;
  for (int round = 0; round < 4; ++round) {
    t = h.available_at(t);
    auto a = h.admit(t);
    ASSERT_TRUE(a.probe);
    h.record(Outcome::kFailure, t, true, "probe");
    cooldowns.push_back(h.available_at(t) - t);
  }
  EXPECT_EQ(cooldowns, (std::vector<int64_t>{2000, 4000, 4000, 4000}));
  EXPECT_EQ(h.view(t).opens, 5);
}

TEST(Breaker, OpensOnTheFailureRatioOverTheWindow) {
  Health h(fast());
  int64_t t = 0;
  // Alternating success/failure never makes 3 in a row, but half of 10 requests failed.
  for (int i = 0; i < 10; ++i) h.record(i % 2 ? Outcome::kFailure : Outcome::kSuccess, t + i, false, "5xx");
  EXPECT_EQ(h.view(t + 10).state, BreakerState::kOpen);
  EXPECT_NE(h.view(t + 10).reason.find("5 of 10"), std::string::npos) << h.view(t + 10).reason;
}

TEST(Breaker, OldFailuresLeaveTheWindow) {
  Health h(fast());
  for (int i = 0; i < 4; ++i) h.record(i % 2 ? Outcome::kFailure : Outcome::kSuccess, i, false, "x");
  // 20 s later the window is fresh: 4 successes and 4 failures alternate under min_requests.
  for (int i = 0; i < 8; ++i) h.record(i % 2 ? Outcome::kFailure : Outcome::kSuccess, 20000 + i, false, "x");
  EXPECT_EQ(h.view(20010).state, BreakerState::kClosed);
  EXPECT_EQ(h.view(20010).requests, 8);
}

TEST(Breaker, RateLimitsAndIgnoredOutcomesAreNotFailures) {
  Health h(fast());
  for (int i = 0; i < 10; ++i) h.record(Outcome::kRateLimited, i, false);
  for (int i = 0; i < 10; ++i) h.record(Outcome::kIgnored, i, false);
  EXPECT_EQ(h.view(20).state, BreakerState::kClosed);
  h.hold_off_until(5000);
  EXPECT_TRUE(h.held_off(100)) << "Retry-After in force";
  EXPECT_FALSE(h.held_off(5000));
  EXPECT_EQ(h.available_at(100), 100) << "a 429 does not open the breaker";
  EXPECT_TRUE(h.admit(100).allowed);
}

TEST(Breaker, DisabledNeverOpens) {
  BreakerSettings s = fast();
  s.enabled = false;
  Health h(s);
  for (int i = 0; i < 50; ++i) h.record(Outcome::kFailure, i, false, "x");
  EXPECT_TRUE(h.admit(60).allowed);
}

TEST(Registry, KeepsStateAcrossLookupsAndAppliesNewSettings) {
  Registry r;
  auto a = r.get("a|http://x", fast());
  for (int i = 0; i < 3; ++i) a->record(Outcome::kFailure, 0, false, "x");
  auto again = r.get("a|http://x", fast());  // a reload that keeps the upstream
  EXPECT_EQ(a.get(), again.get());
  EXPECT_EQ(again->view(1).state, BreakerState::kOpen);
  EXPECT_EQ(r.all().size(), 1u);
}

TEST(HealthCheck, FailuresInARowEjectAndOnePassReadmits) {
  Health h(fast());
  h.record_check(true, 100, "", 2);
  EXPECT_EQ(h.view(100).last_check_ok, 1);
  h.record_check(false, 200, "status 500", 2);
  EXPECT_EQ(h.view(200).state, BreakerState::kClosed);  // one failure is not enough
  h.record_check(false, 300, "status 500", 2);
  HealthView v = h.view(300);
  EXPECT_EQ(v.state, BreakerState::kOpen);
  EXPECT_NE(v.reason.find("health check failed 2 time(s) in a row (last: status 500)"), std::string::npos) << v.reason;
  EXPECT_EQ(v.check_failures, 2);
  EXPECT_EQ(v.last_check_error, "status 500");
  EXPECT_FALSE(h.admit(301).allowed);  // user traffic is kept away
  h.record_check(true, 400, "", 2);    // before the cool-down ended: readmitted at once
  EXPECT_EQ(h.view(400).state, BreakerState::kClosed);
  EXPECT_TRUE(h.admit(401).allowed);
  EXPECT_EQ(h.view(401).check_failures, 0);
}

TEST(SlowStart, AReadmittedUpstreamRampsItsWeightOverSlowStart) {
  BreakerSettings s = fast();
  s.slow_start_ms = 10000;
  Health h(s);
  EXPECT_EQ(h.weight(0), 1.0);  // never ejected: full weight
  for (int i = 0; i < 3; ++i) h.record(Outcome::kFailure, 1000, false, "x");
  ASSERT_EQ(h.view(1000).state, BreakerState::kOpen);
  auto probe = h.admit(2000);  // after the 1 s cool-down: the half-open probe
  ASSERT_TRUE(probe.probe);
  h.record(Outcome::kSuccess, 2000, true);
  EXPECT_DOUBLE_EQ(h.weight(2000), 0.1);   // floor: it still gets some traffic
  EXPECT_DOUBLE_EQ(h.weight(7000), 0.5);   // halfway
  EXPECT_DOUBLE_EQ(h.weight(12000), 1.0);  // done
  BreakerSettings off = fast();
  Health h2(off);
  for (int i = 0; i < 3; ++i) h2.record(Outcome::kFailure, 0, false, "x");
  h2.record_check(true, 10, "", 1);
  EXPECT_EQ(h2.weight(10), 1.0);  // slow_start_ms 0: at once
}

TEST(LoadReport, ParsesVllmMetricsAcrossEnginesAndLabels) {
  const char* text =
      "# HELP vllm:num_requests_running Number of requests currently running on GPU.\n"
      "# TYPE vllm:num_requests_running gauge\n"
      "vllm:num_requests_running{engine=\"0\",model_name=\"meta-llama/Llama-3.1-8B\"} 7.0\n"
      "vllm:num_requests_running{engine=\"1\",model_name=\"meta-llama/Llama-3.1-8B\"} 5.0\n"
      "vllm:num_requests_waiting{engine=\"0\",model_name=\"meta-llama/Llama-3.1-8B\"} 3.0 1700000000000\n"
      "vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.5\n"
      "vllm:kv_cache_usage_perc{engine=\"1\",model_name=\"m\"} 0.7\n"
      "vllm:num_requests_waiting_total 99\n"  // another metric that only starts alike
      "process_cpu_seconds_total 12.5\n";
  auto r = parse_vllm_metrics(text);
  ASSERT_TRUE(r);
  EXPECT_DOUBLE_EQ(r->running, 12);
  EXPECT_DOUBLE_EQ(r->waiting, 3);
  EXPECT_DOUBLE_EQ(r->kv_usage, 0.6);
  EXPECT_FALSE(parse_vllm_metrics("process_cpu_seconds_total 1\n"));
  EXPECT_FALSE(parse_vllm_metrics("<html>not metrics</html>"));
  auto bare = parse_vllm_metrics("vllm:num_requests_waiting 2");  // no labels, no newline at the end
  ASSERT_TRUE(bare);
  EXPECT_DOUBLE_EQ(bare->waiting, 2);
  EXPECT_DOUBLE_EQ(bare->kv_usage, -1);
}

TEST(LoadReport, TheBalancerCountsTheHigherOfItsOwnViewAndAFreshReport) {
  Health h;
  h.outstanding = 2;
  EXPECT_EQ(h.load(0), 2);
  h.report_load({3, 6, 0.9}, 1000, 3000);  // 9 there: other clients' traffic too
  EXPECT_EQ(h.load(1500), 9);
  HealthView v = h.view(1500);
  EXPECT_EQ(v.reported_at_ms, 1000);
  EXPECT_DOUBLE_EQ(v.reported_waiting, 3);
  EXPECT_DOUBLE_EQ(v.reported_kv_usage, 0.9);
  h.outstanding = 12;
  EXPECT_EQ(h.load(1500), 12);  // the gateway knows of more: that counts
  EXPECT_EQ(h.load(4001), 12);  // a stale report is ignored
  h.outstanding = 0;
  EXPECT_EQ(h.load(4001), 0);
  EXPECT_EQ(h.view(4001).reported_at_ms, 0);
}

TEST(LoadGuard, CountsInFlightRequestsAndTokens) {
  Health h;
  {
    LoadGuard g(&h, 300);
    LoadGuard g2(&h, 200);
    EXPECT_EQ(h.outstanding.load(), 2);
    EXPECT_EQ(h.outstanding_tokens.load(), 500);
    LoadGuard moved = std::move(g);
    EXPECT_EQ(h.outstanding.load(), 2);
  }
  EXPECT_EQ(h.outstanding.load(), 0);
  EXPECT_EQ(h.outstanding_tokens.load(), 0);
}

}  // namespace
}  // namespace sluice::upstream
