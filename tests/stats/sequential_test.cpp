#include "stats/sequential.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "stats/baselines.hpp"
#include "stats/normal.hpp"
#include "stats/random.hpp"

namespace sluice::stats {
namespace {

Moments moments_of(std::initializer_list<double> xs) {
  Moments m;
  for (double x : xs) m.add(x);
  return m;
}

Moments bernoulli_moments(double n, double events) { return Moments{n, events, events}; }

TEST(Moments, UnbiasedVarianceAndSmallSamples) {
  EXPECT_DOUBLE_EQ(moments_of({1, 2, 3, 4}).variance(), 5.0 / 3);
  EXPECT_DOUBLE_EQ(moments_of({7}).variance(), 0);
  EXPECT_DOUBLE_EQ(Moments{}.variance(), 0);
  EXPECT_DOUBLE_EQ(Moments{}.mean(), 0);
  Moments a = moments_of({1, 2}), b = moments_of({3, 4});
  a.merge(b);
  EXPECT_DOUBLE_EQ(a.mean(), 2.5);
  EXPECT_DOUBLE_EQ(a.variance(), 5.0 / 3);
}

TEST(Normal, QuantileKnownValuesAndRoundTrip) {
  EXPECT_NEAR(normal_quantile(0.975), 1.959963984540054, 1e-13);
  EXPECT_NEAR(normal_quantile(0.995), 2.5758293035489004, 1e-13);
  EXPECT_NEAR(normal_quantile(0.5), 0, 1e-15);
  EXPECT_NEAR(normal_quantile(1e-10), -6.3613409024040557, 1e-11);
  for (double p : {1e-300, 1e-20, 1e-5, 0.01, 0.3, 0.7, 0.99, 1 - 1e-9}) {
    const double x = normal_quantile(p);
    const double back = x < 0 ? normal_cdf(x) : 1 - normal_cdf(-x);
    EXPECT_NEAR(back / p, 1, 1e-12) << p;
  }
  EXPECT_TRUE(std::isinf(normal_quantile(0)));
  EXPECT_TRUE(std::isnan(normal_quantile(1.5)));
}

TEST(MixtureHalfWidth, KnownValue) {
  // sqrt(V (V + tau2) / tau2 * (2 log(1/alpha) + log((V + tau2) / V))) at V = tau2 = 1e-4:
  // sqrt(2e-4 * (2 ln 100 + ln 2)) = sqrt(2e-4 * 9.903487553) = 0.0445050279.
  EXPECT_NEAR(mixture_half_width(1e-4, 1e-4, 0.01), 0.0445050279, 1e-9);
  EXPECT_EQ(mixture_half_width(0, 1e-4, 0.01), 0);
  EXPECT_TRUE(std::isinf(mixture_half_width(1e-4, 0, 0.01)));
  // Tighter at larger alpha, wider as the variance grows.
  EXPECT_LT(mixture_half_width(1e-4, 1e-4, 0.05), mixture_half_width(1e-4, 1e-4, 0.01));
  EXPECT_LT(mixture_half_width(1e-4, 1e-4, 0.01), mixture_half_width(2e-4, 1e-4, 0.01));
}

TEST(MeanCs, InvalidBelowMinNThenTheMixtureWidth) {
  SequentialOptions o;  // alpha 0.01, effect 0.1, min_n 30
  Moments m{29, 29 * 5.0, 29 * (25.0 + 4)};
  Interval ci = mean_cs(m, o);
  EXPECT_FALSE(ci.valid);
  EXPECT_TRUE(std::isinf(ci.lo) && std::isinf(ci.hi));
  EXPECT_DOUBLE_EQ(ci.estimate, 5);
  // n = 100, mean 5, sample variance 4: V = 0.04, tau2 = 0.1^2 * 4 = 0.04.
  const double n = 100, var = 4;
  m = Moments{n, n * 5, var * (n - 1) + n * 25};
  ci = mean_cs(m, o);
  ASSERT_TRUE(ci.valid);
  const double hw = std::sqrt(0.04 * 2 * (2 * std::log(100.0) + std::log(2.0)));
  EXPECT_NEAR(ci.lo, 5 - hw, 1e-12);
  EXPECT_NEAR(ci.hi, 5 + hw, 1e-12);
  // Bad options are an invalid interval, not a crash.
  EXPECT_FALSE(mean_cs(m, SequentialOptions{.alpha = 0}).valid);
  EXPECT_FALSE(mean_cs(m, SequentialOptions{.effect = -1}).valid);
}

TEST(MeanCs, BernoulliZeroEventsIsNotAZeroWidthInterval) {
  SequentialOptions o{.bernoulli = true};
  Interval ci = mean_cs(bernoulli_moments(200, 0), o);
  ASSERT_TRUE(ci.valid);
  EXPECT_EQ(ci.estimate, 0);
  EXPECT_EQ(ci.lo, 0);
  EXPECT_GT(ci.hi, 0.01);  // 0 of 200 does not rule out a 1 % rate
  EXPECT_LT(ci.hi, 0.2);
  ci = mean_cs(bernoulli_moments(200, 200), o);
  EXPECT_EQ(ci.hi, 1);
  EXPECT_LT(ci.lo, 0.99);
  // Without the flag, constant data has zero width (a constant is a constant).
  ci = mean_cs(Moments{200, 0, 0}, SequentialOptions{});
  EXPECT_EQ(ci.lo, 0);
  EXPECT_EQ(ci.hi, 0);
}

TEST(DiffCs, TwoSampleMixtureWidthFactorAndMinN) {
  SequentialOptions o;
  // a: n 400, mean 3, var 1; b: n 1600, mean 1, var 4; factor 2.
  const Moments a{400, 1200, 1 * 399 + 400 * 9.0};
  const Moments b{1600, 1600, 4 * 1599 + 1600 * 1.0};
  Interval ci = diff_cs(a, b, 2, o);
  ASSERT_TRUE(ci.valid);
  EXPECT_NEAR(ci.estimate, 1, 1e-12);
  const double v = 1.0 / 400 + 4 * 4.0 / 1600;             // 0.0125
  const double sigma2 = (400 * 1.0 + 1600 * 4 * 4.0) / 2000;  // 13
  const double tau2 = 0.01 * sigma2;
  const double hw = std::sqrt(v * (v + tau2) / tau2 * (2 * std::log(100.0) + std::log((v + tau2) / v)));
  EXPECT_NEAR(ci.hi - ci.estimate, hw, 1e-12);
  EXPECT_NEAR(ci.estimate - ci.lo, hw, 1e-12);
  EXPECT_FALSE(diff_cs(Moments{29, 29, 29}, b, 1, o).valid);
  EXPECT_FALSE(diff_cs(a, Moments{29, 29, 29}, 1, o).valid);
}

TEST(DiffCs, BernoulliCanaryWithoutEventsGetsAtLeastThePooledVariance) {
  SequentialOptions o{.bernoulli = true};
  const Moments stable = bernoulli_moments(100000, 1000);  // 1 %
  const Interval ci = diff_cs(bernoulli_moments(300, 0), stable, 1, o);
  ASSERT_TRUE(ci.valid);
  // 0 of 300 cannot show that the canary's rate is below stable's 1 % (P = 0.05 at 1 %).
  EXPECT_GT(ci.hi, 0);
  EXPECT_NE(decide(ci, 0, true), Verdict::kPass);
  // With enough evidence it does pass and fail.
  EXPECT_EQ(decide(diff_cs(bernoulli_moments(20000, 20), stable, 1, o), 0, true), Verdict::kPass);
  EXPECT_EQ(decide(diff_cs(bernoulli_moments(2000, 100), stable, 1, o), 0, true), Verdict::kFail);
}

TEST(Decide, BothDirectionsAndInvalid) {
  Interval ci{.estimate = 1, .lo = 0.5, .hi = 1.5, .valid = true};
  EXPECT_EQ(decide(ci, 2, true), Verdict::kPass);
  EXPECT_EQ(decide(ci, 1.5, true), Verdict::kPass);
  EXPECT_EQ(decide(ci, 0.4, true), Verdict::kFail);
  EXPECT_EQ(decide(ci, 0.5, true), Verdict::kKeepCollecting);
  EXPECT_EQ(decide(ci, 1, true), Verdict::kKeepCollecting);
  EXPECT_EQ(decide(ci, 0.4, false), Verdict::kPass);
  EXPECT_EQ(decide(ci, 2, false), Verdict::kFail);
  EXPECT_EQ(decide(ci, 1, false), Verdict::kKeepCollecting);
  ci.valid = false;
  EXPECT_EQ(decide(ci, 2, true), Verdict::kKeepCollecting);
  EXPECT_EQ(decide(Interval{}, 0, true), Verdict::kKeepCollecting);
}

// --- Monte-Carlo: coverage when checked after every observation --------------------------

constexpr int kSequences = 2000;
constexpr int kSteps = 2000;
constexpr double kAlpha = 0.01;
// Allowed crossing rate: alpha plus three Monte-Carlo standard errors.
const double kMaxRate = kAlpha + 3 * std::sqrt(kAlpha * (1 - kAlpha) / kSequences);

void expect_coverage(int crossed, const char* what) {
  std::printf("  %s: %d of %d sequences crossed (alpha %.2f)\n", what, crossed, kSequences, kAlpha);
  EXPECT_LE(crossed / double(kSequences), kMaxRate) << what << ": " << crossed;
}

// Bernoulli(p) outcomes drawn by geometric gaps between events: one draw per event.
class BernoulliStream {
 public:
  BernoulliStream(double p, Rng& rng) : log_q_(std::log1p(-p)), rng_(rng) { gap_ = draw(); }
  // Number of events among the next k trials.
  double take(int64_t k) {
    double events = 0;
    while (gap_ < k) {
      ++events;
      k -= gap_ + 1;
      gap_ = draw();
    }
    gap_ -= k;
    return events;
  }

 private:
  int64_t draw() { return static_cast<int64_t>(std::log(1 - rng_.uniform()) / log_q_); }
  double log_q_;
  Rng& rng_;
  int64_t gap_;
};

// Runs kSequences sequences of kSteps observations. `make` returns a fresh sequence: a step
// function that adds one observation and returns true once the sequence crossed.
template <class Make>
int count_crossings(Make make) {
  int crossed = 0;
  for (int s = 0; s < kSequences; ++s) {
    auto step = make();
    for (int t = 0; t < kSteps; ++t) {
      if (step()) {
        ++crossed;
        break;
      }
    }
  }
  return crossed;
}

bool outside(const Interval& ci, double truth) { return ci.valid && (ci.lo > truth || ci.hi < truth); }

TEST(MonteCarlo, MeanCsKeepsCoverageOnGaussianData) {
  Rng rng(1);
  NormalVariate normal;
  const SequentialOptions o{.alpha = kAlpha};
  expect_coverage(count_crossings([&] {
                    return [&, m = Moments{}]() mutable {
                      m.add(10 + 3 * normal(rng));
                      return outside(mean_cs(m, o), 10);
                    };
                  }),
                  "gaussian mean");
}

void expect_bernoulli_mean_coverage(double p, uint64_t seed) {
  Rng rng(seed);
  const SequentialOptions o{.alpha = kAlpha, .bernoulli = true};
  const std::string what = "bernoulli mean p=" + std::to_string(p);
  expect_coverage(count_crossings([&] {
                    return [&, m = Moments{}, events = BernoulliStream(p, rng)]() mutable {
                      m.add(events.take(1));
                      return outside(mean_cs(m, o), p);
                    };
                  }),
                  what.c_str());
}

TEST(MonteCarlo, MeanCsKeepsCoverageOnRareEvents) { expect_bernoulli_mean_coverage(0.01, 2); }
TEST(MonteCarlo, MeanCsKeepsCoverageOnCommonEvents) { expect_bernoulli_mean_coverage(0.3, 3); }

// A/A canary: 1 canary observation per step against 19 stable ones (5 % weight), 1 % events,
// both sides of the interval counted (a false fail or a false pass at limit 0).
TEST(MonteCarlo, DiffCsAaCanaryAtFivePercentWeightRareEvents) {
  Rng rng(4);
  const SequentialOptions o{.alpha = kAlpha, .bernoulli = true};
  expect_coverage(count_crossings([&] {
                    return [&, canary = Moments{}, stable = Moments{},
                            canary_events = BernoulliStream(0.01, rng),
                            stable_events = BernoulliStream(0.01, rng)]() mutable {
                      canary.add(canary_events.take(1));
                      const double events = stable_events.take(19);
                      stable.merge(Moments{19, events, events});
                      return decide(diff_cs(canary, stable, 1, o), 0, true) !=
                             Verdict::kKeepCollecting;
                    };
                  }),
                  "A/A diff, 1 % events, 1:19 arms");
}

// Unequal variances, unequal arms (1:2) and a factor: mean(a) = 2 mean(b).
TEST(MonteCarlo, DiffCsAaGaussianWithFactor) {
  Rng rng(5);
  NormalVariate normal;
  const SequentialOptions o{.alpha = kAlpha};
  expect_coverage(count_crossings([&] {
                    return [&, a = Moments{}, b = Moments{}]() mutable {
                      a.add(4 + 2 * normal(rng));
                      for (int k = 0; k < 2; ++k) b.add(2 + 0.5 * normal(rng));
                      return outside(diff_cs(a, b, 2, o), 0);
                    };
                  }),
                  "A/A diff, gaussian, factor 2, 1:2 arms");
}

// And it does detect: 1 % -> 5 % errors at 5 % weight fails in every sequence, early.
TEST(MonteCarlo, DiffCsDetectsOnePercentToFivePercent) {
  Rng rng(6);
  const SequentialOptions o{.alpha = kAlpha, .bernoulli = true};
  std::vector<int> steps;
  for (int s = 0; s < 200; ++s) {
    BernoulliStream canary_stream(0.05, rng), stable_stream(0.01, rng);
    Moments canary, stable;
    int t = 0;
    for (; t < 20000; ++t) {
      canary.add(canary_stream.take(1));
      const double events = stable_stream.take(19);
      stable.merge(Moments{19, events, events});
      if (decide(diff_cs(canary, stable, 1, o), 0, true) == Verdict::kFail) break;
    }
    steps.push_back(t + 1);
  }
  std::sort(steps.begin(), steps.end());
  std::printf("  canary requests to detect 1 %% -> 5 %%: median %d, max %d\n", steps[steps.size() / 2],
              steps.back());
  EXPECT_LT(steps.back(), 20000);  // all detected
  EXPECT_LT(steps[steps.size() / 2], 1500) << "median canary requests to detect";
}

// --- baselines ---------------------------------------------------------------------------

TEST(MannWhitney, KnownAnswers) {
  // Values from a direct pair count U and the tie-corrected normal approximation.
  const std::vector<double> a1{1, 2, 3}, b1{4, 5};
  MannWhitney r = mann_whitney(a1, b1);
  ASSERT_TRUE(r.valid);
  EXPECT_DOUBLE_EQ(r.u, 0);
  EXPECT_NEAR(r.z, -1.7320508075688774, 1e-12);
  EXPECT_NEAR(r.p_a_less, 0.074457336589382833, 1e-12);
  EXPECT_NEAR(r.p_a_greater, 0.97834592859460401, 1e-12);
  EXPECT_NEAR(r.p_two_sided, 0.14891467317876561, 1e-12);
  const std::vector<double> a2{1, 2, 2, 3, 7, 7}, b2{2, 3, 4, 5, 5};
  r = mann_whitney(a2, b2);
  EXPECT_DOUBLE_EQ(r.u, 12.5);
  EXPECT_NEAR(r.z, -0.46387494942181934, 1e-12);
  EXPECT_NEAR(r.p_a_less, 0.35528154058252742, 1e-12);
  EXPECT_NEAR(r.p_two_sided, 0.71056308116505473, 1e-12);
  // 0/1 data as two bins: 5/100 vs 10/1000.
  const std::vector<double> ca{95, 5}, cb{990, 10};
  r = mann_whitney_binned(ca, cb);
  EXPECT_DOUBLE_EQ(r.u, 52000);
  EXPECT_NEAR(r.z, 3.2869896676547126, 1e-12);
  EXPECT_NEAR(r.p_a_greater, 0.00050780223178092943, 1e-14);
  // All tied: no test.
  EXPECT_FALSE(mann_whitney(std::vector<double>{1, 1}, std::vector<double>{1}).valid);
  EXPECT_FALSE(mann_whitney(std::vector<double>{}, b1).valid);
}

TEST(MannWhitney, BinnedEqualsRawOnDiscreteData) {
  Rng rng(7);
  std::vector<double> a, b, ca(6, 0), cb(6, 0);
  for (int i = 0; i < 300; ++i) {
    const auto x = static_cast<double>(rng.below(6)), y = static_cast<double>(rng.below(5));
    a.push_back(x);
    ca[static_cast<size_t>(x)] += 1;
    b.push_back(y);
    cb[static_cast<size_t>(y)] += 1;
  }
  const MannWhitney raw = mann_whitney(a, b), binned = mann_whitney_binned(ca, cb);
  EXPECT_DOUBLE_EQ(raw.u, binned.u);
  EXPECT_NEAR(raw.p_two_sided, binned.p_two_sided, 1e-12);
  const LogBins bins{.lo = 1, .hi = 1000, .bins = 3};
  EXPECT_EQ(bins.index(0.5), 0);
  EXPECT_EQ(bins.index(5), 0);
  EXPECT_EQ(bins.index(50), 1);
  EXPECT_EQ(bins.index(500), 2);
  EXPECT_EQ(bins.index(5000), 2);
}

TEST(FixedWindowAnalysis, FailsWhenFailedMeasurementsExceedTheLimit) {
  FixedWindowAnalysis argo(
      FixedWindowOptions{.interval_s = 60, .threshold = 0.01, .failure_limit = 1, .min_n = 10});
  auto window = [&](int canary_errors, double t_end) {  // of 100 canary requests
    for (int i = 0; i < 100; ++i) argo.add_canary(i < canary_errors ? 1 : 0);
    argo.add_stable(Moments{1000, 10, 10});  // 1 %
    return argo.advance(t_end);
  };
  EXPECT_EQ(argo.advance(30), Verdict::kKeepCollecting);
  EXPECT_EQ(argo.measurements(), 0);
  EXPECT_EQ(window(5, 60), Verdict::kKeepCollecting);  // failed 1 (0.04 > 0.01), limit 1
  EXPECT_NEAR(argo.last_value(), 0.04, 1e-12);
  EXPECT_EQ(window(1, 120), Verdict::kKeepCollecting);  // passed
  EXPECT_EQ(window(3, 180), Verdict::kFail);            // failed 2 > 1
  EXPECT_EQ(argo.failed(), 2);
  EXPECT_EQ(argo.measurements(), 3);
  // A window with too few canary observations is inconclusive.
  EXPECT_EQ(argo.advance(240), Verdict::kFail);
  EXPECT_EQ(argo.inconclusive(), 1);
}

TEST(RepeatedMannWhitney, FailsOnTheFirstSignificantWorseTest) {
  RepeatedMannWhitney kayenta(RepeatedMannWhitneyOptions{.alpha = 0.01, .min_n = 20});
  const std::vector<double> even_a{99, 1}, even_b{990, 10};
  EXPECT_EQ(kayenta.judge(mann_whitney_binned(even_a, even_b), 100, 1000),
            Verdict::kKeepCollecting);
  const std::vector<double> worse_a{95, 5};
  EXPECT_EQ(kayenta.judge(mann_whitney_binned(worse_a, even_b), 10, 1000),
            Verdict::kKeepCollecting);  // too few canary observations: skipped
  EXPECT_EQ(kayenta.checks(), 1);
  EXPECT_EQ(kayenta.judge(mann_whitney_binned(worse_a, even_b), 100, 1000), Verdict::kFail);
  EXPECT_NEAR(kayenta.min_p(), 0.00050780223178092943, 1e-14);
  // "Better" is not a failure.
  RepeatedMannWhitney better(RepeatedMannWhitneyOptions{});
  EXPECT_EQ(better.judge(mann_whitney_binned(even_b, worse_a), 1000, 100),
            Verdict::kKeepCollecting);
}

}  // namespace
}  // namespace sluice::stats
