// stats/normal.hpp: the standard normal distribution, for the intervals and tests in this
// module (Wilson intervals, Mann-Whitney p-values). Pure functions.
#pragma once

namespace sluice::stats {

// P(Z <= x) for Z ~ N(0, 1).
double normal_cdf(double x) noexcept;

// The x with P(Z <= x) = p, for p in (0, 1); -inf at 0, +inf at 1, NaN outside [0, 1].
// Wichura's AS 241 (relative error about 1e-16) followed by one Newton step.
double normal_quantile(double p) noexcept;

}  // namespace sluice::stats
