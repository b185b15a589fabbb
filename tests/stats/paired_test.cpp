#include "stats/paired.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "stats/random.hpp"

namespace sluice::stats {
namespace {

// Known answers: exact binomial tails computed with integer arithmetic (sum of C(n, i) / 2^n).
TEST(McNemarExact, SmallCounts) {
  McNemar r = mcnemar_exact(9, 1);  // P(X <= 1 | n = 10) = 11 / 1024
  EXPECT_DOUBLE_EQ(r.p_cand_worse, 11.0 / 1024);
  EXPECT_DOUBLE_EQ(r.p_cand_better, 1023.0 / 1024);
  EXPECT_DOUBLE_EQ(r.p_two_sided, 22.0 / 1024);
  EXPECT_EQ(r.base_only, 9);
  EXPECT_EQ(r.cand_only, 1);
  // Cavo et al. (2012) in Fagerland, Lydersen & Laake: 16 vs 6 discordant, exact P = 0.052479.
  r = mcnemar_exact(16, 6);
  EXPECT_NEAR(r.p_cand_worse, 0.026239395141601562, 1e-15);
  EXPECT_NEAR(r.p_two_sided, 0.052478790283203125, 1e-15);
  r = mcnemar_exact(3, 3);
  EXPECT_NEAR(r.p_cand_worse, 0.65625, 1e-15);
  EXPECT_DOUBLE_EQ(r.p_two_sided, 1);
  r = mcnemar_exact(0, 0);
  EXPECT_EQ(r.p_two_sided, 1);
  EXPECT_EQ(r.p_cand_worse, 1);
  EXPECT_TRUE(std::isnan(mcnemar_exact(-1, 3).p_two_sided));
}

TEST(McNemarExact, ThousandsOfCasesInLogSpace) {
  // 1,319 discordant cases (GSM8K-sized).
  McNemar r = mcnemar_exact(700, 619);
  EXPECT_NEAR(r.p_cand_worse / 0.01378684812969859, 1, 1e-10);
  EXPECT_NEAR(r.p_cand_better, 0.98804014401446194, 1e-12);
  EXPECT_NEAR(r.p_two_sided / 0.027573696259397179, 1, 1e-10);
  r = mcnemar_exact(619, 700);  // mirror image
  EXPECT_NEAR(r.p_cand_better / 0.01378684812969859, 1, 1e-10);
  r = mcnemar_exact(760, 559);
  EXPECT_NEAR(r.p_cand_worse / 1.7222754144466355e-08, 1, 1e-10);
  EXPECT_NEAR(r.p_two_sided / 3.444550828893271e-08, 1, 1e-10);
  r = mcnemar_exact(1000, 319);
  EXPECT_NEAR(r.p_cand_worse / 2.5725754270800803e-82, 1, 1e-9);
  EXPECT_EQ(r.p_cand_better, 1);
  r = mcnemar_exact(1319, 0);  // 2^-1319 underflows: 0, not NaN
  EXPECT_EQ(r.p_cand_worse, 0);
  EXPECT_EQ(r.p_cand_better, 1);
}

TEST(PairedProportionDiff, NewcombeMethod10KnownAnswer) {
  // Cavo et al. (2012): 59 both, 6 / 16 discordant, 80 neither. Fagerland et al. (and R's
  // contingencytables::Newcombe_square_and_add_CI_paired_2x2): -0.0621 (95 % CI -0.1186 to
  // -0.0046), first measurement minus second; here the candidate is the first.
  Interval ci = paired_proportion_diff(59, /*base_only=*/16, /*cand_only=*/6, 80, 0.05);
  ASSERT_TRUE(ci.valid);
  EXPECT_NEAR(ci.estimate, -10.0 / 161, 1e-12);
  EXPECT_NEAR(ci.lo, -0.1186, 5e-5);
  EXPECT_NEAR(ci.hi, -0.0046, 5e-5);
  // Swapping the releases mirrors the interval.
  const Interval mirrored = paired_proportion_diff(59, 6, 16, 80, 0.05);
  EXPECT_NEAR(mirrored.lo, -ci.hi, 1e-12);
  EXPECT_NEAR(mirrored.hi, -ci.lo, 1e-12);
  // No discordant pairs: 0 inside, a narrower interval at a larger alpha.
  ci = paired_proportion_diff(500, 0, 0, 819, 0.05);
  EXPECT_EQ(ci.estimate, 0);
  EXPECT_LT(ci.lo, 0);
  EXPECT_GT(ci.hi, 0);
  EXPECT_GT(paired_proportion_diff(500, 0, 0, 819, 0.01).hi, ci.hi);
  // Stays inside [-1, 1] at the extremes.
  ci = paired_proportion_diff(0, 0, 20, 0, 0.05);
  EXPECT_DOUBLE_EQ(ci.estimate, 1);
  EXPECT_LE(ci.hi, 1 + 1e-12);
  EXPECT_GT(ci.lo, 0.5);
  EXPECT_FALSE(paired_proportion_diff(0, 0, 0, 0, 0.05).valid);
  EXPECT_FALSE(paired_proportion_diff(1, -1, 0, 0, 0.05).valid);
  EXPECT_FALSE(paired_proportion_diff(1, 1, 1, 1, 0).valid);
}

TEST(Quantile, LinearInterpolationType7) {
  const std::vector<double> x{3, 1, 4, 2};
  EXPECT_DOUBLE_EQ(quantile(x, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(quantile(x, 0.25), 1.75);
  EXPECT_DOUBLE_EQ(quantile(x, 0.9), 3.7);
  EXPECT_DOUBLE_EQ(quantile(x, 0), 1);
  EXPECT_DOUBLE_EQ(quantile(x, 1), 4);
  EXPECT_DOUBLE_EQ(quantile(x, 2), 4);  // clamped
  EXPECT_DOUBLE_EQ(quantile(x, -1), 1);
  EXPECT_DOUBLE_EQ(quantile(std::vector<double>{7}, 0.3), 7);
  EXPECT_TRUE(std::isnan(quantile(std::vector<double>{}, 0.5)));
  // numpy.percentile([10, 20, ..., 100, 1000], 95) = 100 + 0.5 * 900 = 550.
  const std::vector<double> y{1000, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100};
  EXPECT_DOUBLE_EQ(quantile(y, 0.95), 550);
  EXPECT_EQ(x[0], 3);  // input untouched
}

std::vector<double> lognormal_sample(Rng& rng, int n, double scale) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) {
    const double u1 = 1 - rng.uniform(), u2 = rng.uniform();
    v.push_back(scale * std::exp(0.5 * std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2)));
  }
  return v;
}

TEST(PairedBootstrap, DeterministicWithASeed) {
  Rng rng(11);
  const std::vector<double> base = lognormal_sample(rng, 300, 1);
  std::vector<double> cand = lognormal_sample(rng, 300, 1.2);
  for (Statistic s : {Statistic::kMeanDiff, Statistic::kMeanRatio, Statistic::kQuantileRatio}) {
    const Interval a = paired_bootstrap(base, cand, s, 0.05, 42, 500);
    const Interval b = paired_bootstrap(base, cand, s, 0.05, 42, 500);
    const Interval c = paired_bootstrap(base, cand, s, 0.05, 43, 500);
    ASSERT_TRUE(a.valid);
    EXPECT_EQ(a.lo, b.lo);  // bit for bit
    EXPECT_EQ(a.hi, b.hi);
    EXPECT_EQ(a.estimate, b.estimate);
    EXPECT_TRUE(a.lo != c.lo || a.hi != c.hi);
    EXPECT_LT(a.lo, a.estimate);
    EXPECT_GT(a.hi, a.estimate);
  }
}

TEST(PairedBootstrap, EstimatesAndExactShifts) {
  const std::vector<double> base{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  std::vector<double> plus_one, doubled;
  for (double x : base) {
    plus_one.push_back(x + 1);
    doubled.push_back(2 * x);
  }
  // Paired resampling keeps a constant per-case shift constant.
  Interval ci = paired_bootstrap(base, plus_one, Statistic::kMeanDiff, 0.05, 1);
  EXPECT_NEAR(ci.estimate, 1, 1e-12);
  EXPECT_NEAR(ci.lo, 1, 1e-12);
  EXPECT_NEAR(ci.hi, 1, 1e-12);
  ci = paired_bootstrap(base, doubled, Statistic::kMeanRatio, 0.05, 1);
  EXPECT_NEAR(ci.lo, 2, 1e-12);
  EXPECT_NEAR(ci.hi, 2, 1e-12);
  ci = paired_bootstrap(base, doubled, Statistic::kQuantileRatio, 0.05, 1, 200, 0.9);
  EXPECT_NEAR(ci.estimate, 2, 1e-12);
  EXPECT_NEAR(ci.lo, 2, 1e-12);
  EXPECT_NEAR(ci.hi, 2, 1e-12);
  // A real difference: the interval covers it and excludes 0.
  Rng rng(5);
  std::vector<double> b, c;
  for (int i = 0; i < 1319; ++i) {
    const double x = rng.uniform();
    b.push_back(x);
    c.push_back(x + 0.1 + 0.2 * (rng.uniform() - 0.5));
  }
  ci = paired_bootstrap(b, c, Statistic::kMeanDiff, 0.05, 9);
  EXPECT_LT(ci.lo, 0.1);
  EXPECT_GT(ci.hi, 0.1);
  EXPECT_GT(ci.lo, 0.09);
}

TEST(PairedBootstrap, InvalidInputs) {
  const std::vector<double> a{1, 2, 3}, b{1, 2};
  EXPECT_FALSE(paired_bootstrap(a, b, Statistic::kMeanDiff, 0.05, 1).valid);
  EXPECT_FALSE(paired_bootstrap({}, {}, Statistic::kMeanDiff, 0.05, 1).valid);
  EXPECT_FALSE(paired_bootstrap(a, a, Statistic::kMeanDiff, 1.5, 1).valid);
  EXPECT_FALSE(paired_bootstrap(a, a, Statistic::kMeanDiff, 0.05, 1, 0).valid);
  const std::vector<double> zeros{0, 0, 0};
  EXPECT_FALSE(paired_bootstrap(zeros, a, Statistic::kMeanRatio, 0.05, 1).valid);
}

}  // namespace
}  // namespace sluice::stats
