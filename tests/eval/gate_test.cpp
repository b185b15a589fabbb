// The gate's decisions on constructed data, and its error rates on synthetic paired
// outcomes with known effects: the false-fail rate under no change stays at or below alpha,
// and the power for small regressions is measured (printed; see docs/evals.md).
#include "eval/gate.hpp"

#include <gtest/gtest.h>

#include <cstdio>

#include "stats/random.hpp"

namespace sluice::eval {
namespace {

Suite make_suite(size_t n, std::vector<LimitSpec> limits, double alpha = 0.05) {
  Suite s;
  s.name = "t";
  for (size_t i = 0; i < n; ++i) {
    Case c;
    c.id = "c" + std::to_string(i);
    c.category = "target";
    s.cases.push_back(c);
  }
  s.gate.alpha = alpha;
  s.gate.limits = std::move(limits);
  s.gate.resamples = 1000;
  return s;
}

LimitSpec drop(double m) { return {"target", "max_drop", Metric::kPassRate, LimitKind::kMaxDrop, m}; }
LimitSpec floor_(double m) { return {"target", "min_pass_rate", Metric::kPassRate, LimitKind::kFloor, m}; }

ArmData arm(const std::vector<int>& passes, int repeat, double cost = 1, double ms = 100) {
  ArmData a;
  for (int p : passes) {
    a.passes.push_back(p);
    a.pass.push_back(static_cast<double>(p) / repeat);
    a.cost.push_back(cost);
    a.ttft.push_back(ms);
    a.latency.push_back(ms);
    a.flaky.push_back(p > 0 && p < repeat);
  }
  return a;
}

// n paired cases: base passes with pb; discordant pairs with probability d, of which the
// candidate wins (d + delta) / 2 and the baseline (d - delta) / 2: true change = delta.
void paired(stats::Rng& rng, size_t n, double pb, double d, double delta, std::vector<int>& b, std::vector<int>& c) {
  double p_bo = (d - delta) / 2, p_co = (d + delta) / 2, p_both = pb - p_bo;
  b.assign(n, 0);
  c.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    double u = rng.uniform();
    if (u < p_both) {
      b[i] = c[i] = 1;
    } else if (u < p_both + p_bo) {
      b[i] = 1;
    } else if (u < p_both + p_bo + p_co) {
      c[i] = 1;
    }
  }
}

struct Rates {
  double pass = 0, fail = 0, inconclusive = 0;
};

Rates simulate(size_t n, double pb, double d, double delta, double margin, int sims, uint64_t seed) {
  Suite s = make_suite(n, {drop(margin)});
  std::vector<bool> incl(n, true);
  stats::Rng rng(seed);
  std::vector<int> b, c;
  Rates r;
  for (int k = 0; k < sims; ++k) {
    paired(rng, n, pb, d, delta, b, c);
    ArmData ba = arm(b, 1), ca = arm(c, 1);
    auto g = decide_gate(s, incl, ca, &ba, 1);
    Verdict v = g.limits[0].verdict;
    r.pass += v == Verdict::kPass;
    r.fail += v == Verdict::kFail;
    r.inconclusive += v == Verdict::kInconclusive;
  }
  r.pass /= sims, r.fail /= sims, r.inconclusive /= sims;
  return r;
}

TEST(Gate, IdenticalAnswersPassAndBigDropsFail) {
  const size_t n = 1319;
  Suite s = make_suite(n, {floor_(0.3), drop(0.02)});
  std::vector<bool> incl(n, true);
  std::vector<int> b(n), c(n);
  for (size_t i = 0; i < n; ++i) b[i] = c[i] = i % 16 < 9;  // 56%
  ArmData ba = arm(b, 1), ca = arm(c, 1);
  auto g = decide_gate(s, incl, ca, &ba, 1);
  ASSERT_EQ(g.limits.size(), 2u);
  EXPECT_EQ(g.limits[0].verdict, Verdict::kPass);
  EXPECT_EQ(g.limits[1].verdict, Verdict::kPass);
  EXPECT_TRUE(g.passed);
  EXPECT_LT(g.limits[1].hi - g.limits[1].lo, 0.01);  // no discordant pair: a narrow interval
  // 20 points worse: fail, with McNemar's evidence.
  for (size_t i = 0; i < n; ++i) c[i] = i % 16 < 6;
  ca = arm(c, 1);
  g = decide_gate(s, incl, ca, &ba, 1);
  EXPECT_EQ(g.limits[1].verdict, Verdict::kFail);
  EXPECT_LT(g.limits[1].p_worse, 1e-10);
  EXPECT_FALSE(g.passed);
  ASSERT_EQ(g.categories.size(), 2u);  // target, all
  int64_t regressed = 0;
  for (size_t i = 0; i < n; ++i) regressed += b[i] && !c[i];
  EXPECT_EQ(g.categories[0].base_only, regressed);
  EXPECT_EQ(g.limits[1].base_only, regressed);
}

TEST(Gate, InconclusiveFailsClosedUnlessConfigured) {
  const size_t n = 60;
  Suite s = make_suite(n, {drop(0.02)});
  std::vector<bool> incl(n, true);
  std::vector<int> b(n), c(n);
  for (size_t i = 0; i < n; ++i) b[i] = c[i] = i % 2;
  c[1] = 0;  // one regression in 60: the interval straddles -2 points
  ArmData ba = arm(b, 1), ca = arm(c, 1);
  auto g = decide_gate(s, incl, ca, &ba, 1);
  EXPECT_EQ(g.limits[0].verdict, Verdict::kInconclusive);
  EXPECT_TRUE(g.limits[0].blocks);
  EXPECT_FALSE(g.passed);
  s.gate.inconclusive_fails = false;
  g = decide_gate(s, incl, ca, &ba, 1);
  EXPECT_FALSE(g.limits[0].blocks);
  EXPECT_TRUE(g.passed);
}

TEST(Gate, WithoutBaselineRegressionLimitsAreSkipped) {
  const size_t n = 100;
  Suite s = make_suite(n, {drop(0.02)});
  std::vector<bool> incl(n, true);
  ArmData ca = arm(std::vector<int>(n, 1), 1);
  auto g = decide_gate(s, incl, ca, nullptr, 1);
  EXPECT_EQ(g.limits[0].verdict, Verdict::kSkipped);
  EXPECT_EQ(g.decided, 0);
  EXPECT_FALSE(g.passed);  // nothing decided: the runner refuses (exit 2)
  s.gate.limits.push_back(floor_(0.9));
  g = decide_gate(s, incl, ca, nullptr, 1);
  EXPECT_EQ(g.decided, 1);
  EXPECT_TRUE(g.passed);
}

TEST(Gate, CostAndLatencyRatios) {
  const size_t n = 400;
  LimitSpec cost{"", "max_cost_increase", Metric::kCost, LimitKind::kMaxIncrease, 0.10};
  LimitSpec p95{"", "max_p95_ttft_increase", Metric::kP95Ttft, LimitKind::kMaxIncrease, 0.20};
  LimitSpec ceil{"", "max_p95_ttft_ms", Metric::kP95Ttft, LimitKind::kCeiling, 250};
  Suite s = make_suite(n, {cost, p95, ceil});
  std::vector<bool> incl(n, true);
  stats::Rng rng(7);
  ArmData b = arm(std::vector<int>(n, 1), 1), c = b;
  for (size_t i = 0; i < n; ++i) {
    b.cost[i] = 0.001 * (1 + rng.uniform());
    b.ttft[i] = 100 + 50 * rng.uniform();
    c.cost[i] = b.cost[i] * 1.02;
    c.ttft[i] = b.ttft[i] * 1.05;
  }
  auto g = decide_gate(s, incl, c, &b, 1);
  EXPECT_EQ(g.limits[0].verdict, Verdict::kPass) << g.limits[0].detail;
  EXPECT_EQ(g.limits[1].verdict, Verdict::kPass) << g.limits[1].detail;
  EXPECT_EQ(g.limits[2].verdict, Verdict::kPass) << g.limits[2].detail;
  for (size_t i = 0; i < n; ++i) c.cost[i] = b.cost[i] * 1.4, c.ttft[i] = b.ttft[i] * 2;
  g = decide_gate(s, incl, c, &b, 1);
  EXPECT_EQ(g.limits[0].verdict, Verdict::kFail) << g.limits[0].detail;
  EXPECT_EQ(g.limits[1].verdict, Verdict::kFail) << g.limits[1].detail;
  EXPECT_EQ(g.limits[2].verdict, Verdict::kFail) << g.limits[2].detail;
  // No prices: cost limits cannot be decided and are skipped, not failed.
  for (size_t i = 0; i < n; ++i) b.cost[i] = c.cost[i] = 0;
  g = decide_gate(s, incl, c, &b, 1);
  EXPECT_EQ(g.limits[0].verdict, Verdict::kSkipped);
}

TEST(Gate, ExcludedCasesAreLeftOutOfBothArms) {
  const size_t n = 200;
  Suite s = make_suite(n, {drop(0.05)});
  std::vector<bool> incl(n, true);
  std::vector<int> b(n, 1), c(n, 1);
  for (size_t i = 0; i < 50; ++i) c[i] = 0, incl[i] = false;  // errored cases, not regressions
  ArmData ba = arm(b, 1), ca = arm(c, 1);
  auto g = decide_gate(s, incl, ca, &ba, 1);
  EXPECT_EQ(g.limits[0].n, 150);
  EXPECT_EQ(g.limits[0].verdict, Verdict::kPass);
}

TEST(Gate, Wilson) {
  double lo, hi;
  wilson(0, 10, 0.05, lo, hi);
  EXPECT_EQ(lo, 0);
  EXPECT_NEAR(hi, 0.2775, 1e-3);
  wilson(50, 100, 0.05, lo, hi);
  EXPECT_NEAR(lo, 0.4038, 1e-3);
  EXPECT_NEAR(hi, 0.5962, 1e-3);
}

// ---- error rates on synthetic paired outcomes

TEST(GateStatistics, FalseFailRateUnderNoChangeAtMostAlpha) {
  const double alpha = 0.05, margin = 0.02;
  const int sims = 2000;
  std::printf("A/A (no change), max_drop %.0f pts, alpha %.2f, %d simulations each:\n", 100 * margin, alpha, sims);
  std::printf("  %6s %12s %8s %8s %14s\n", "cases", "discordant", "fail", "pass", "not enough ev.");
  for (size_t n : {100, 300, 1319}) {
    for (double d : {0.05, 0.2, 0.4}) {
      Rates r = simulate(n, 0.5, d, 0.0, margin, sims, 1000 + n + static_cast<uint64_t>(d * 100));
      std::printf("  %6zu %11.0f%% %7.2f%% %7.1f%% %13.1f%%\n", n, 100 * d, 100 * r.fail, 100 * r.pass,
                  100 * r.inconclusive);
      EXPECT_LE(r.fail, alpha) << "n=" << n << " d=" << d;
    }
  }
}

TEST(GateStatistics, FalseFailAtTheLimitItself) {
  // The least favourable "no regression": the candidate is exactly max_drop worse.
  const double alpha = 0.05, margin = 0.02;
  for (size_t n : {300, 1319}) {
    Rates r = simulate(n, 0.5, 0.2, -margin, margin, 2000, 77 + n);
    std::printf("at the limit (-%.0f pts), n=%zu: fail %.2f%%\n", 100 * margin, n, 100 * r.fail);
    EXPECT_LE(r.fail, alpha);
  }
}

TEST(GateStatistics, PowerForSmallRegressions) {
  const double margin = 0.02;
  const int sims = 1000;
  std::printf("power: P(fail) for a true drop, max_drop %.0f pts, alpha 0.05, 20%% discordant pairs:\n",
              100 * margin);
  std::printf("  %6s %8s %8s %8s %8s\n", "cases", "-3 pts", "-5 pts", "-8 pts", "-12 pts");
  double last_big = 0;
  for (size_t n : {300, 1319, 5000}) {
    std::printf("  %6zu", n);
    double prev = -1;
    for (double delta : {-0.03, -0.05, -0.08, -0.12}) {
      Rates r = simulate(n, 0.5, 0.2, delta, margin, sims, 4242 + n);
      std::printf(" %7.1f%%", 100 * r.fail);
      EXPECT_GE(r.fail + 0.03, prev);  // larger drops are caught at least as often (MC slack)
      prev = r.fail;
      last_big = r.fail;
    }
    std::printf("\n");
  }
  EXPECT_GE(last_big, 0.99);  // 12 points on 5,000 cases: always caught
  EXPECT_GE(simulate(1319, 0.5, 0.2, -0.08, margin, sims, 99).fail, 0.9);
}

TEST(GateStatistics, RepeatsUseThePairedBootstrapAndStayBelowAlpha) {
  // Each case has its own pass probability (unchanged between releases); 3 repeats per case.
  const size_t n = 200;
  const int R = 3, sims = 300;
  Suite s = make_suite(n, {drop(0.02)});
  s.gate.resamples = 500;
  std::vector<bool> incl(n, true);
  stats::Rng rng(2024);
  int fails = 0, flaky_seen = 0;
  for (int k = 0; k < sims; ++k) {
    std::vector<int> b(n), c(n);
    for (size_t i = 0; i < n; ++i) {
      double p = rng.uniform();
      for (int r = 0; r < R; ++r) {
        b[i] += rng.uniform() < p;
        c[i] += rng.uniform() < p;
      }
    }
    ArmData ba = arm(b, R), ca = arm(c, R);
    auto g = decide_gate(s, incl, ca, &ba, R);
    fails += g.limits[0].verdict == Verdict::kFail;
    flaky_seen += g.categories[0].cand_flaky > 0;
    if (k == 0) EXPECT_NE(g.limits[0].method.find("bootstrap"), std::string::npos);
  }
  double rate = static_cast<double>(fails) / sims;
  std::printf("A/A with 3 repeats (bootstrap), n=%zu: fail %.2f%% of %d\n", n, 100 * rate, sims);
  EXPECT_LE(rate, 0.05);
  EXPECT_EQ(flaky_seen, sims);  // nondeterministic cases are reported as flaky
}

TEST(GateStatistics, FloorFalseFailAtMostAlpha) {
  const size_t n = 300;
  Suite s = make_suite(n, {floor_(0.6)});
  std::vector<bool> incl(n, true);
  stats::Rng rng(31);
  int fails = 0;
  const int sims = 2000;
  for (int k = 0; k < sims; ++k) {
    std::vector<int> c(n);
    for (size_t i = 0; i < n; ++i) c[i] = rng.uniform() < 0.6;  // exactly at the floor
    ArmData ca = arm(c, 1);
    fails += decide_gate(s, incl, ca, nullptr, 1).limits[0].verdict == Verdict::kFail;
  }
  std::printf("floor 60%% with a true rate of 60%%, n=%zu: fail %.2f%%\n", n, 100.0 * fails / sims);
  EXPECT_LE(static_cast<double>(fails) / sims, 0.05);
}

}  // namespace
}  // namespace sluice::eval
