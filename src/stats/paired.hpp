// stats/paired.hpp: fixed-sample paired statistics for the eval gate: both releases answer
// the same cases, so differences are taken per case.
#pragma once
#include <cstdint>
#include <span>

#include "stats/sequential.hpp"

namespace sluice::stats {

// Exact McNemar test on discordant pairs: `base_only` cases passed by the baseline only,
// `cand_only` by the candidate only. Binomial(base_only + cand_only, 1/2).
struct McNemar {
  int64_t base_only = 0, cand_only = 0;
  double p_two_sided = 1;
  double p_cand_worse = 1;   // one-sided: evidence that the candidate passes less often
  double p_cand_better = 1;  // one-sided: evidence that it passes more often
};
McNemar mcnemar_exact(int64_t base_only, int64_t cand_only);

// Two-sided (1 - alpha) interval for the mean paired difference (cand - base) of pass/fail
// outcomes (0/1), exact-ish for small samples (Wilson-type / Newcombe for paired proportions).
Interval paired_proportion_diff(int64_t both, int64_t base_only, int64_t cand_only, int64_t neither, double alpha);

// Paired bootstrap (seeded, deterministic) percentile interval for
//   kind=kMeanDiff:   mean(cand) - mean(base)
//   kind=kMeanRatio:  mean(cand) / mean(base)
//   kind=kQuantileRatio: quantile_q(cand) / quantile_q(base)
enum class Statistic { kMeanDiff, kMeanRatio, kQuantileRatio };
Interval paired_bootstrap(std::span<const double> base, std::span<const double> cand, Statistic s, double alpha,
                          uint64_t seed, int resamples = 2000, double q = 0.95);

// Empirical quantile (linear interpolation) of unsorted data.
double quantile(std::span<const double> data, double q);

}  // namespace sluice::stats
