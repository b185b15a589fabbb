// stats/sequential.hpp: always-valid inference for rollout gates. A gate may be checked
// after every request: these intervals hold simultaneously over all sample sizes with
// probability >= 1 - alpha (confidence sequences), so peeking does not inflate false alarms.
//
// Method. Both intervals are normal-mixture confidence sequences: for an estimate with
// variance V and a N(0, tau2) mixture over the true effect, the mixture likelihood ratio
// crosses 1/alpha exactly when
//     |estimate - true| > sqrt( V (V + tau2) / tau2 * (2 log(1/alpha) + log((V + tau2) / V)) )
// (Robbins' normal mixture; two-sided, level alpha, by Ville's inequality). mean_cs is the
// asymptotic confidence sequence of Waudby-Smith et al. (2021) with V = var / n; diff_cs is
// the two-sample mixture SPRT of Johari, Pekelis and Walsh ("Always valid inference", 2017/
// 2022) with V = var_a / n_a + factor^2 var_b / n_b. Variances are plug-in estimates, so the
// guarantee is asymptotic; bench/canary checks it by simulation at the traffic shapes of a
// canary (1-5 % weight, 1 % base rates), and tests/stats checks it on A/A sequences.
//
// The mixing scale: tau = effect * sigma, sigma the observations' standard deviation (for
// diff_cs the pooled one, below). The boundary is tightest, relative to a fixed-n interval,
// near the sample size where the interval's half-width is about effect * sigma, so `effect`
// is the standardized difference the gate is tuned to resolve; the width grows only as the
// square root of a logarithm away from it. effect = 0.1 (default) suits rate gates: 1 % ->
// 2 % errors is 0.1 sigma, 1 % -> 5 % is 0.4 sigma, a 15 % cost increase at a coefficient
// of variation of 0.5 is 0.3 sigma.
//
// Proportions (`bernoulli`): a plug-in variance of 0 after zero events would give a
// zero-width interval, and a normal approximation fails at a handful of events, so:
//   - mean_cs returns the union of two intervals, the plug-in one with p smoothed as
//     (sum + 1) / (n + 2) and the score (Wilson-form) one, whose variance is taken at the
//     endpoint itself; each endpoint is the more cautious of the two (the plug-in lower
//     bound alone undercovers below small p, the score lower bound above it);
//   - diff_cs takes each arm's variance as the larger of its own smoothed p(1-p) and that of
//     the pooled rate (sum_a + sum_b + 1) / (n_a + n_b + 2): a canary that has seen no error
//     yet is given at least the stable arm's variance, so it cannot pass on luck.
//
// Quantile gates. There is no quantile code here: a gate "p99 latency <= L" is expressed by
// the caller as a proportion of exceedances, observations 1{latency > L} with
// `bernoulli = true`, gated as P(latency > L) <= 1 - q (canary vs stable: the difference of
// exceedance proportions over the same limit, e.g. stable's p99, <= 0).
//
// Everything here is noexcept and allocation-free: errors are values (an invalid Interval).
#pragma once
#include <cstdint>
#include <limits>

namespace sluice::stats {

// Sufficient statistics of one arm for one metric: count, sum and sum of squares.
// Proportions are means of 0/1 observations.
struct Moments {
  double n = 0, sum = 0, sumsq = 0;
  void add(double x) {
    n += 1;
    sum += x;
    sumsq += x * x;
  }
  void merge(const Moments& o) {
    n += o.n;
    sum += o.sum;
    sumsq += o.sumsq;
  }
  double mean() const { return n > 0 ? sum / n : 0; }
  double variance() const;  // unbiased sample variance; 0 when n < 2
};

struct Interval {
  double estimate = 0;
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool valid = false;  // false: not enough samples yet (lo/hi are infinite)
};

struct SequentialOptions {
  double alpha = 0.01;
  // Mixing scale of the normal-mixture boundary, in units of the observations' standard
  // deviation: the effect size (relative to sigma) at which the sequence is tightest.
  double effect = 0.1;
  double min_n = 30;  // per arm: below it the interval is invalid
  bool bernoulli = false;  // 0/1 data: variance floored away from 0 (no event seen yet)
};

// Confidence sequence for the mean of one arm. Invalid (estimate set, bounds infinite) when
// n < max(min_n, 2) or the options are out of range (alpha outside (0, 1), effect <= 0).
Interval mean_cs(const Moments& x, const SequentialOptions& o) noexcept;

// Confidence sequence for mean(a) - factor * mean(b), a and b independent arms sampled in
// any (data-independent) ratio, e.g. canary vs stable over the same window.
// The pooled sigma of the mixing scale is sqrt((n_a var_a + n_b factor^2 var_b) / (n_a + n_b)),
// i.e. the spread of one observation, dominated by the larger (stable) arm.
// Invalid when either arm has n < max(min_n, 2) or the options are out of range.
Interval diff_cs(const Moments& a, const Moments& b, double factor,
                 const SequentialOptions& o) noexcept;

// The normal-mixture half-width above for an estimate of variance v and mixing variance
// tau2 (both in squared units of the estimate): 0 when v == 0, +inf when tau2 <= 0.
double mixture_half_width(double v, double tau2, double alpha) noexcept;

enum class Verdict { kKeepCollecting, kPass, kFail };

// `value <= limit` (lower_is_better) or `value >= limit`: pass when the whole interval is on
// the good side, fail when the whole interval is on the bad side, else keep collecting.
// An interval touching the limit passes (hi <= limit) but does not fail (lo > limit is needed);
// an invalid interval keeps collecting.
Verdict decide(const Interval& ci, double limit, bool lower_is_better) noexcept;

}  // namespace sluice::stats
