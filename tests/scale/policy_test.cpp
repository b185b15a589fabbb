// The replica policy: each signal's wish, tolerance, and the HPA's stabilization windows.
#include "scale/policy.hpp"

#include <gtest/gtest.h>

namespace sluice::scale {
namespace {

Policy tokens_policy() {
  Policy p;
  p.target_tokens_in_flight = 1000;
  p.min_replicas = 1;
  p.max_replicas = 20;
  p.scale_down_stabilization_s = 300;
  p.scale_up_stabilization_s = 0;
  p.tolerance = 0.1;
  return p;
}

std::vector<Signal> tokens(double v) { return signals_of(tokens_policy(), v, 0, -1); }

TEST(ScalePolicy, TotalOverTargetPerReplica) {
  EXPECT_EQ(desired_for({"t", 4500, 1000, false}, 2, 0.1), 5);
  EXPECT_EQ(desired_for({"t", 4000, 1000, false}, 2, 0.1), 4);
  EXPECT_EQ(desired_for({"t", 0, 1000, false}, 3, 0.1), 0);
  EXPECT_EQ(desired_for({"t", 100, 0, false}, 3, 0.1), -1);  // no target: no opinion
}

TEST(ScalePolicy, WithinToleranceKeepsTheCurrentCount) {
  // 4 replicas at 1000 each: 3650 (ratio 0.9125) and 4390 (1.0975) stay at 4.
  EXPECT_EQ(desired_for({"t", 3650, 1000, false}, 4, 0.1), 4);
  EXPECT_EQ(desired_for({"t", 4390, 1000, false}, 4, 0.1), 4);
  EXPECT_EQ(desired_for({"t", 4500, 1000, false}, 4, 0.1), 5);
  EXPECT_EQ(desired_for({"t", 3500, 1000, false}, 4, 0.1), 4);  // ceil(3.5) = 4 anyway
  EXPECT_EQ(desired_for({"t", 2900, 1000, false}, 4, 0.1), 3);
}

TEST(ScalePolicy, LatencyOnlyPushesUpAndAtMostDoubles) {
  EXPECT_EQ(desired_for({"ttft", 500, 1000, true}, 4, 0.1), -1);   // fast: no opinion, not "fewer"
  EXPECT_EQ(desired_for({"ttft", 1050, 1000, true}, 4, 0.1), -1);  // within tolerance
  EXPECT_EQ(desired_for({"ttft", 1500, 1000, true}, 4, 0.1), 6);
  EXPECT_EQ(desired_for({"ttft", 9000, 1000, true}, 4, 0.1), 8);
}

TEST(ScalePolicy, LargestSignalWinsAndBoundsHold) {
  Policy p = tokens_policy();
  p.target_queue = 10;
  p.ttft_p99_slo_ms = 2000;
  Recommender r(p);
  Decision d = r.decide(signals_of(p, 2000, 55, 100), 0);
  EXPECT_EQ(d.raw, 6);  // the queue asks for 6, tokens for 2, TTFT nothing
  EXPECT_EQ(d.replicas, 6);
  ASSERT_EQ(d.by_signal.size(), 3u);
  EXPECT_EQ(d.by_signal[2].second, -1);
  EXPECT_EQ(r.decide(signals_of(p, 1e9, 0, -1), 1000).replicas, 20);  // max_replicas
}

TEST(ScalePolicy, NoSignalMeansMinReplicas) {
  Policy p = tokens_policy();
  p.min_replicas = 2;
  p.scale_down_stabilization_s = 0;
  Recommender r(p);
  EXPECT_EQ(r.decide({}, 0, 7).replicas, 2);
}

TEST(ScalePolicy, ScaleUpIsImmediateScaleDownWaitsForTheWindow) {
  Recommender r(tokens_policy());
  int64_t t = 0;
  EXPECT_EQ(r.decide(tokens(8000), t).replicas, 8);
  // Load falls at once; for 300 s the highest recent recommendation (8) holds.
  for (t = 15000; t < 300000; t += 15000) EXPECT_EQ(r.decide(tokens(2000), t).replicas, 8) << t;
  // Once the 8 is older than the window, the count falls to what the window still saw.
  EXPECT_EQ(r.decide(tokens(2000), 300000 + 15000).replicas, 2);
}

TEST(ScalePolicy, ScaleDownGoesToTheMaxOfTheWindowNotTheLatest) {
  Recommender r(tokens_policy());
  EXPECT_EQ(r.decide(tokens(10000), 0).replicas, 10);
  EXPECT_EQ(r.decide(tokens(6000), 200000).replicas, 10);
  EXPECT_EQ(r.decide(tokens(3000), 400000).replicas, 6);  // the 10 left the window, the 6 did not
  EXPECT_EQ(r.decide(tokens(3000), 600000).replicas, 3);
}

TEST(ScalePolicy, ScaleUpWindowTakesTheMinimumOfTheWindow) {
  Policy p = tokens_policy();
  p.scale_up_stabilization_s = 60;
  Recommender r(p);
  EXPECT_EQ(r.decide(tokens(2000), 0).replicas, 2);
  // A spike alone does not scale up while the window still holds lower recommendations.
  EXPECT_EQ(r.decide(tokens(9000), 30000).replicas, 2);
  EXPECT_EQ(r.decide(tokens(9000), 61000).replicas, 9);
}

TEST(ScalePolicy, FlappingAroundTheTargetDoesNotChurn) {
  Recommender r(tokens_policy());
  EXPECT_EQ(r.decide(tokens(5000), 0).replicas, 5);
  int changes = 0, last = 5;
  for (int i = 1; i < 200; ++i) {
    const double v = i % 2 ? 5400 : 4600;  // +-8%: inside the tolerance
    int n = r.decide(tokens(v), i * 15000).replicas;
    changes += n != last;
    last = n;
  }
  EXPECT_EQ(changes, 0);
}

}  // namespace
}  // namespace sluice::scale
