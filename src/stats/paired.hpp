// stats/paired.hpp: fixed-sample paired statistics for the eval gate: both releases answer
// the same cases, so differences are taken per case.
#pragma once
#include <cstdint>
#include <span>

#include "stats/sequential.hpp"

namespace sluice::stats {

// Exact McNemar test on discordant pairs: `base_only` cases passed by the baseline only,
// `cand_only` by the candidate only. Binomial(base_only + cand_only, 1/2).
// Tails are summed in log space from the extreme term inward (no overflow at thousands of
// cases; a p-value below ~1e-308 underflows to 0). Two-sided: twice the smaller tail, at
// most 1. Negative counts give NaN p-values.
struct McNemar {
  int64_t base_only = 0, cand_only = 0;
  double p_two_sided = 1;
  double p_cand_worse = 1;   // one-sided: evidence that the candidate passes less often
  double p_cand_better = 1;  // one-sided: evidence that it passes more often
};
McNemar mcnemar_exact(int64_t base_only, int64_t cand_only);

// Two-sided (1 - alpha) interval for the mean paired difference (cand - base) of pass/fail
// outcomes (0/1), exact-ish for small samples (Wilson-type / Newcombe for paired proportions).
// Method: Newcombe (1998, Stat Med 17:2635) method 10, square-and-add of the two marginal
// Wilson score intervals with the correlation correction phi (numerator ad - bc reduced by
// n/2 when above it, 0 when in [0, n/2]), as in Fagerland, Lydersen & Laake (2017), ch. 8.
// Invalid for n = 0, negative counts or alpha outside (0, 1).
Interval paired_proportion_diff(int64_t both, int64_t base_only, int64_t cand_only, int64_t neither, double alpha);

// Paired bootstrap (seeded, deterministic) percentile interval for
//   kind=kMeanDiff:   mean(cand) - mean(base)
//   kind=kMeanRatio:  mean(cand) / mean(base)
//   kind=kQuantileRatio: quantile_q(cand) / quantile_q(base)
// Cases are resampled with replacement as pairs. The estimate is the statistic on the data;
// lo/hi are the alpha/2 and 1 - alpha/2 quantiles (as `quantile`) of the resampled
// statistics. The same inputs and seed give the same interval on every platform (own
// generator, see random.hpp). Invalid when the spans differ in length or are empty, alpha is
// outside (0, 1), resamples < 1, or more than half of the resamples give a non-finite ratio.
enum class Statistic { kMeanDiff, kMeanRatio, kQuantileRatio };
Interval paired_bootstrap(std::span<const double> base, std::span<const double> cand, Statistic s, double alpha,
                          uint64_t seed, int resamples = 2000, double q = 0.95);

// Empirical quantile (linear interpolation) of unsorted data.
// Hyndman-Fan type 7 (R's default, numpy's "linear"): h = (n - 1) q, x[floor h] plus the
// fraction of the way to the next order statistic. q is clamped to [0, 1]; NaN when empty.
double quantile(std::span<const double> data, double q);

}  // namespace sluice::stats
