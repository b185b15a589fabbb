#include <gtest/gtest.h>

#include <map>
#include <set>
#include <random>

#include "upstream/balancer.hpp"

namespace sluice::upstream {
namespace {

struct Pool {
  std::vector<std::unique_ptr<Health>> h;
  std::vector<Target> t;
  explicit Pool(size_t n) {
    for (size_t i = 0; i < n; ++i) {
      h.push_back(std::make_unique<Health>());
      t.push_back({i, h.back().get()});
    }
  }
  std::vector<size_t> order(const BalanceSettings& s, PlanRequest r) {
    std::vector<size_t> o;
    for (const auto& st : make_plan(s, t, r).steps) o.push_back(st.index);
    return o;
  }
};

TEST(Balancer, OrderedKeepsThePoolOrderAndPutsOpenTargetsAside) {
  Pool p(3);
  BalanceSettings s;
  EXPECT_EQ(p.order(s, {}), (std::vector<size_t>{0, 1, 2}));
  for (int i = 0; i < 5; ++i) p.h[0]->record(Outcome::kFailure, 0, false, "x");
  EXPECT_EQ(p.order(s, {0, 0, 0, 1}), (std::vector<size_t>{1, 2})) << "an open breaker is not tried";
}

TEST(Balancer, NeverEjectsMoreThanTheConfiguredShare) {
  Pool p(4);
  BalanceSettings s;
  s.max_ejected_share = 0.5;
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < 5; ++i) p.h[static_cast<size_t>(k)]->record(Outcome::kFailure, 0, false, "x");
  auto plan = make_plan(s, p.t, {0, 0, 0, 1});
  ASSERT_EQ(plan.steps.size(), 2u);  // the healthy one, then one forced back in
  EXPECT_EQ(plan.steps[0].index, 3u);
  EXPECT_FALSE(plan.steps[0].forced);
  EXPECT_TRUE(plan.steps[1].forced);
}

TEST(Balancer, EveryTargetOpenGivesAnEmptyPlanWithTheEarliestRecovery) {
  Pool p(2);
  BalanceSettings s;
  s.max_ejected_share = 1;
  for (int i = 0; i < 5; ++i) p.h[0]->record(Outcome::kFailure, 100, false, "x");
  for (int i = 0; i < 5; ++i) p.h[1]->record(Outcome::kFailure, 300, false, "x");
  auto plan = make_plan(s, p.t, {0, 0, 0, 400});
  EXPECT_TRUE(plan.steps.empty());
  EXPECT_EQ(plan.earliest_ms, 100 + 5000);
}

TEST(Balancer, AnUpstreamThatAskedForTimeGoesLastButIsNeverDropped) {
  Pool p(3);
  BalanceSettings s;
  p.h[0]->hold_off_until(10'000);
  EXPECT_EQ(p.order(s, {0, 0, 0, 5'000}), (std::vector<size_t>{1, 2, 0}));
  EXPECT_EQ(p.order(s, {0, 0, 0, 10'000}), (std::vector<size_t>{0, 1, 2})) << "Retry-After passed";
  Pool one(1);
  one.h[0]->hold_off_until(10'000);
  EXPECT_EQ(one.order(s, {0, 0, 0, 5'000}), (std::vector<size_t>{0})) << "alone: its own 429 answers the client";
}

TEST(Balancer, RoundRobinRotates) {
  Pool p(3);
  BalanceSettings s;
  s.policy = Policy::kRoundRobin;
  std::map<size_t, int> first;
  for (uint64_t i = 0; i < 30; ++i) ++first[p.order(s, {0, i, 0, 0})[0]];
  EXPECT_EQ(first[0], 10);
  EXPECT_EQ(first[1], 10);
  EXPECT_EQ(first[2], 10);
}

TEST(Balancer, LeastRequestPicksTheLeastLoaded) {
  Pool p(3);
  p.h[0]->outstanding = 5;
  p.h[1]->outstanding = 1;
  p.h[2]->outstanding = 3;
  BalanceSettings s;
  s.policy = Policy::kLeastRequest;
  EXPECT_EQ(p.order(s, {0, 7, 0, 0}), (std::vector<size_t>{1, 2, 0}));
}

TEST(Balancer, AnUpstreamInSlowStartTakesLessOfThePool) {
  Pool p(2);
  BreakerSettings b;
  b.consecutive_failures = 1;
  b.slow_start_ms = 10000;
  p.h[0]->set_settings(b);
  p.h[0]->record(Outcome::kFailure, 0, false, "x");
  p.h[0]->record_check(true, 1000, "", 1);  // readmitted at t=1 s, weight 0.1
  p.h[1]->outstanding = 3;
  BalanceSettings s;
  s.policy = Policy::kLeastRequest;
  // Idle but ramping (1 / 0.1 = 10) loses to a full-weight upstream with 3 in flight (4).
  EXPECT_EQ(p.order(s, {0, 0, 0, 1000}).front(), 1u);
  // Once ramped (t = 11 s), the idle one wins again.
  EXPECT_EQ(p.order(s, {0, 0, 0, 11000}).front(), 0u);
  // Round robin: it keeps about its weight's share of first places.
  s.policy = Policy::kRoundRobin;
  p.h[1]->outstanding = 0;
  int first = 0;
  std::mt19937_64 rng(7);
  for (uint64_t i = 0; i < 2000; ++i)
    if (p.order(s, {0, i, rng(), 1000}).front() == 0) ++first;
  EXPECT_GT(first, 40);   // about 0.1 x 1000 turns it had
  EXPECT_LT(first, 200);  // far fewer than the 1000 of an even split
}

TEST(Balancer, LeastTokensPrefersFewerTokensInFlight) {
  Pool p(4);
  p.h[0]->outstanding_tokens = 9000;
  p.h[1]->outstanding_tokens = 100;
  p.h[2]->outstanding_tokens = 8000;
  p.h[3]->outstanding_tokens = 7000;
  BalanceSettings s;
  s.policy = Policy::kLeastTokens;
  for (uint64_t seq = 0; seq < 8; ++seq) EXPECT_EQ(p.order(s, {0, seq, seq * 7919, 0}), (std::vector<size_t>{1, 3, 2, 0}));
}

TEST(Balancer, LeastTokensBreaksRequestTiesByTheWorkLeft) {
  Pool p(3);
  // Equal requests in flight: the one with the least left to generate frees a slot first.
  p.h[0]->outstanding = 2;
  p.h[0]->outstanding_tokens = 3000;
  p.h[1]->outstanding = 2;
  p.h[1]->outstanding_tokens = 400;
  p.h[2]->outstanding = 3;
  p.h[2]->outstanding_tokens = 10;
  BalanceSettings s;
  s.policy = Policy::kLeastTokens;
  for (uint64_t seq = 0; seq < 6; ++seq) EXPECT_EQ(p.order(s, {0, seq, 0, 0}), (std::vector<size_t>{1, 0, 2}));
  // least_request sees a tie between 0 and 1 and only rotates.
  s.policy = Policy::kLeastRequest;
  std::set<size_t> firsts;
  for (uint64_t seq = 0; seq < 6; ++seq) firsts.insert(p.order(s, {0, seq, 0, 0}).front());
  EXPECT_EQ(firsts, (std::set<size_t>{0, 1}));
}

TEST(Balancer, PrefixAffinityIsStableAndBoundedByLoad) {
  Pool p(4);
  BalanceSettings s;
  s.policy = Policy::kPrefix;
  s.bounded_load = 1.25;
  uint64_t key = affinity_hash("You are a helpful math tutor. Solve step by step.");
  size_t home = p.order(s, {key, 0, 0, 0})[0];
  for (uint64_t i = 0; i < 10; ++i) EXPECT_EQ(p.order(s, {key, i, i * 77, 0})[0], home);
  // Different prefixes spread over the pool.
  std::map<size_t, int> homes;
  for (int i = 0; i < 400; ++i) ++homes[p.order(s, {affinity_hash("system prompt " + std::to_string(i)), 0, 0, 0})[0]];
  EXPECT_EQ(homes.size(), 4u);
  for (auto& [k, n] : homes) EXPECT_GT(n, 50);
  // The home is overloaded (8 in flight, others 0): the valve sends the request elsewhere.
  p.h[home]->outstanding = 8;
  size_t moved = p.order(s, {key, 0, 0, 0})[0];
  EXPECT_NE(moved, home);
  // Load evened out: back home.
  for (auto& h : p.h) h->outstanding = 8;
  EXPECT_EQ(p.order(s, {key, 0, 0, 0})[0], home);
}

TEST(Balancer, AffinityGivesWayWhenTheHomeIsWellAboveTheLeastLoaded) {
  Pool p(8);
  BalanceSettings s;
  s.policy = Policy::kPrefix;
  s.bounded_load = 4;  // loose on purpose: only the slack decides here
  s.affinity_slack = 2;
  uint64_t key = affinity_hash("shared system prompt");
  size_t home = p.order(s, {key, 0, 0, 0})[0];
  for (auto& h : p.h) h->outstanding = 3;
  p.h[home]->outstanding = 5;  // 5 + 1 <= 3 + 1 + 2: stays home
  EXPECT_EQ(p.order(s, {key, 0, 0, 0})[0], home);
  p.h[home]->outstanding = 6;  // 6 + 1 > 6: leaves
  EXPECT_NE(p.order(s, {key, 0, 0, 0})[0], home);
}

TEST(Balancer, PolicyNames) {
  for (auto n : {"ordered", "round_robin", "least_request", "least_tokens", "prefix", "session"})
    EXPECT_STREQ(policy_name(*policy_from_name(n)), n);
  EXPECT_FALSE(policy_from_name("random"));
}

}  // namespace
}  // namespace sluice::upstream
