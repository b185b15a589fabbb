// stats/paired.cpp: exact McNemar, Newcombe's paired-proportion interval, the paired
// bootstrap and the empirical quantile.
#include "stats/paired.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "stats/normal.hpp"
#include "stats/random.hpp"

namespace sluice::stats {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// log C(n, k) for 0 <= k <= n, as a sum over the shorter side.
double log_choose(int64_t n, int64_t k) {
  k = std::min(k, n - k);
  double r = 0;
  for (int64_t i = 1; i <= k; ++i) {
    r += std::log(static_cast<double>(n - k + i)) - std::log(static_cast<double>(i));
  }
  return r;
}

// P(X <= k) for X ~ Binomial(n, 1/2).
double binomial_half_cdf(int64_t n, int64_t k) {
  if (k < 0) return 0;
  if (k >= n) return 1;
  if (2 * k >= n) return 1 - binomial_half_cdf(n, n - k - 1);  // the complement is the short tail
  // Terms grow towards k, so sum downward from k relative to the k-th term, in log space.
  double sum = 1, term = 1;
  for (int64_t i = k; i >= 1; --i) {
    term *= static_cast<double>(i) / static_cast<double>(n - i + 1);
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  const double log_p = log_choose(n, k) - static_cast<double>(n) * std::log(2.0) + std::log(sum);
  return std::min(1.0, std::exp(log_p));
}

struct Wilson {
  double lo, hi;
};

Wilson wilson(double x, double n, double z) {
  const double p = x / n, z2 = z * z;
  const double center = (x + z2 / 2) / (n + z2);
  const double half = z * std::sqrt(n) / (n + z2) * std::sqrt(p * (1 - p) + z2 / (4 * n));
  return {std::max(0.0, center - half), std::min(1.0, center + half)};
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

// Type-7 quantile of non-empty `v`, q in [0, 1]; reorders `v`.
double quantile_in_place(std::vector<double>& v, double q) {
  const double h = static_cast<double>(v.size() - 1) * q;
  const auto i = static_cast<size_t>(std::floor(h));
  const auto it = v.begin() + static_cast<std::ptrdiff_t>(i);
  std::nth_element(v.begin(), it, v.end());
  const double lo = *it;
  if (i + 1 >= v.size() || h == static_cast<double>(i)) return lo;
  const double hi = *std::min_element(it + 1, v.end());  // the next order statistic
  return lo + (h - static_cast<double>(i)) * (hi - lo);
}

// The statistic on one (re)sample; `b` and `c` may be reordered (quantiles).
double statistic(std::vector<double>& b, std::vector<double>& c, Statistic s, double q) {
  switch (s) {
    case Statistic::kMeanDiff:
      return mean_of(c) - mean_of(b);
    case Statistic::kMeanRatio:
      return mean_of(c) / mean_of(b);
    case Statistic::kQuantileRatio:
      return quantile_in_place(c, q) / quantile_in_place(b, q);
  }
  return kNaN;
}

}  // namespace

McNemar mcnemar_exact(int64_t base_only, int64_t cand_only) {
  McNemar r;
  r.base_only = base_only;
  r.cand_only = cand_only;
  if (base_only < 0 || cand_only < 0) {
    r.p_two_sided = r.p_cand_worse = r.p_cand_better = kNaN;
    return r;
  }
  const int64_t n = base_only + cand_only;
  if (n == 0) return r;
  r.p_cand_worse = binomial_half_cdf(n, cand_only);            // P(X <= cand_only)
  r.p_cand_better = binomial_half_cdf(n, n - cand_only);       // P(X >= cand_only), by symmetry
  r.p_two_sided = std::min(1.0, 2 * std::min(r.p_cand_worse, r.p_cand_better));
  return r;
}

Interval paired_proportion_diff(int64_t both, int64_t base_only, int64_t cand_only, int64_t neither,
                                double alpha) {
  Interval ci;
  if (both < 0 || base_only < 0 || cand_only < 0 || neither < 0 || !(alpha > 0 && alpha < 1)) {
    ci.estimate = kNaN;
    return ci;
  }
  const double n = static_cast<double>(both + base_only + cand_only + neither);
  if (n == 0) {
    ci.estimate = kNaN;
    return ci;
  }
  // Rows: candidate pass/fail; columns: baseline pass/fail.
  const double a = static_cast<double>(both), b = static_cast<double>(cand_only),
               c = static_cast<double>(base_only), d = static_cast<double>(neither);
  const double p1 = (a + b) / n;  // candidate's pass rate
  const double p2 = (a + c) / n;  // baseline's pass rate
  const double z = normal_quantile(1 - alpha / 2);
  const Wilson w1 = wilson(a + b, n, z), w2 = wilson(a + c, n, z);
  double phi = 0;
  const double margins = (a + b) * (c + d) * (a + c) * (b + d);
  if (margins > 0) {
    const double num = a * d - b * c;
    if (num > n / 2) {
      phi = (num - n / 2) / std::sqrt(margins);
    } else if (num < 0) {
      phi = num / std::sqrt(margins);
    }
  }
  const double l1 = p1 - w1.lo, u1 = w1.hi - p1, l2 = p2 - w2.lo, u2 = w2.hi - p2;
  ci.estimate = p1 - p2;
  ci.lo = ci.estimate - std::sqrt(std::max(0.0, l1 * l1 - 2 * phi * l1 * u2 + u2 * u2));
  ci.hi = ci.estimate + std::sqrt(std::max(0.0, u1 * u1 - 2 * phi * u1 * l2 + l2 * l2));
  ci.valid = true;
  return ci;
}

Interval paired_bootstrap(std::span<const double> base, std::span<const double> cand, Statistic s,
                          double alpha, uint64_t seed, int resamples, double q) {
  Interval ci;
  ci.estimate = kNaN;
  if (base.size() != cand.size() || base.empty() || !(alpha > 0 && alpha < 1) || resamples < 1 ||
      std::isnan(q)) {
    return ci;
  }
  q = std::clamp(q, 0.0, 1.0);
  const size_t n = base.size();
  std::vector<double> rb(base.begin(), base.end()), rc(cand.begin(), cand.end());
  ci.estimate = statistic(rb, rc, s, q);
  Rng rng(seed);
  std::vector<double> stats;
  stats.reserve(static_cast<size_t>(resamples));
  for (int r = 0; r < resamples; ++r) {
    for (size_t i = 0; i < n; ++i) {
      const size_t j = rng.below(n);
      rb[i] = base[j];
      rc[i] = cand[j];
    }
    const double v = statistic(rb, rc, s, q);
    if (std::isfinite(v)) stats.push_back(v);
  }
  if (2 * stats.size() < static_cast<size_t>(resamples)) return ci;
  ci.lo = quantile_in_place(stats, alpha / 2);
  ci.hi = quantile_in_place(stats, 1 - alpha / 2);
  ci.valid = true;
  return ci;
}

double quantile(std::span<const double> data, double q) {
  if (data.empty() || std::isnan(q)) return kNaN;
  std::vector<double> v(data.begin(), data.end());
  return quantile_in_place(v, std::clamp(q, 0.0, 1.0));
}

}  // namespace sluice::stats
