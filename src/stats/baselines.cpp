// stats/baselines.cpp: Mann-Whitney U and the Argo- and Kayenta-style analyses that
// bench/canary compares the sequential gates with.
#include "stats/baselines.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "stats/normal.hpp"

namespace sluice::stats {
namespace {

// U of sample a from its rank sum, with the tie term sum(t^3 - t) over tie groups.
MannWhitney finish(double n1, double n2, double rank_sum_a, double ties) noexcept {
  MannWhitney r;
  r.u = rank_sum_a - n1 * (n1 + 1) / 2;
  const double n = n1 + n2;
  if (n1 <= 0 || n2 <= 0) return r;
  const double var = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)));
  if (!(var > 0)) return r;
  const double sd = std::sqrt(var);
  const double d = r.u - n1 * n2 / 2;
  r.z = d / sd;
  r.p_a_greater = 1 - normal_cdf((d - 0.5) / sd);
  r.p_a_less = normal_cdf((d + 0.5) / sd);
  r.p_two_sided = std::min(1.0, 2 * (1 - normal_cdf((std::fabs(d) - 0.5) / sd)));
  r.p_a_greater = std::min(1.0, r.p_a_greater);
  r.p_a_less = std::min(1.0, r.p_a_less);
  r.valid = true;
  return r;
}

}  // namespace

MannWhitney mann_whitney(std::span<const double> a, std::span<const double> b) {
  std::vector<std::pair<double, bool>> all;  // value, from a
  all.reserve(a.size() + b.size());
  for (double x : a) all.emplace_back(x, true);
  for (double x : b) all.emplace_back(x, false);
  std::sort(all.begin(), all.end(),
            [](const auto& x, const auto& y) { return x.first < y.first; });
  double rank_sum_a = 0, ties = 0;
  for (size_t i = 0; i < all.size();) {
    size_t j = i;
    double in_a = 0;
    while (j < all.size() && all[j].first == all[i].first) in_a += all[j++].second ? 1 : 0;
    const double t = static_cast<double>(j - i);
    const double mid_rank = static_cast<double>(i) + (t + 1) / 2;  // ranks i+1 .. j
    rank_sum_a += in_a * mid_rank;
    ties += t * t * t - t;
    i = j;
  }
  return finish(static_cast<double>(a.size()), static_cast<double>(b.size()), rank_sum_a, ties);
}

MannWhitney mann_whitney_binned(std::span<const double> a_counts,
                                std::span<const double> b_counts) noexcept {
  const size_t k = std::max(a_counts.size(), b_counts.size());
  double below = 0, rank_sum_a = 0, ties = 0, n1 = 0, n2 = 0;
  for (size_t i = 0; i < k; ++i) {
    const double ca = i < a_counts.size() ? a_counts[i] : 0;
    const double cb = i < b_counts.size() ? b_counts[i] : 0;
    const double t = ca + cb;
    if (t <= 0) continue;
    rank_sum_a += ca * (below + (t + 1) / 2);
    ties += t * t * t - t;
    below += t;
    n1 += ca;
    n2 += cb;
  }
  return finish(n1, n2, rank_sum_a, ties);
}

int LogBins::index(double x) const noexcept {
  if (!(x > lo)) return 0;
  if (!(x < hi)) return bins - 1;
  const int i = static_cast<int>(std::log(x / lo) / std::log(hi / lo) * bins);
  return std::clamp(i, 0, bins - 1);
}

Verdict FixedWindowAnalysis::measure(const Moments& canary, const Moments& stable) noexcept {
  ++measurements_;
  if (canary.n < std::max(o_.min_n, 1.0) || stable.n < 1) {
    ++inconclusive_;
    last_value_ = std::numeric_limits<double>::quiet_NaN();
  } else {
    last_value_ = value(canary, stable, o_.factor);
    const bool bad = o_.lower_is_better ? last_value_ > o_.threshold : last_value_ < o_.threshold;
    if (bad) ++failed_;
  }
  return failed_ > o_.failure_limit ? Verdict::kFail : Verdict::kKeepCollecting;
}

Verdict FixedWindowAnalysis::advance(double now) noexcept {
  Verdict v = failed_ > o_.failure_limit ? Verdict::kFail : Verdict::kKeepCollecting;
  while (o_.interval_s > 0 && now >= next_boundary()) {
    v = measure(canary_, stable_);
    canary_ = {};
    stable_ = {};
  }
  return v;
}

Verdict RepeatedMannWhitney::judge(const MannWhitney& r, double n_canary,
                                   double n_baseline) noexcept {
  const double floor_n = std::max(o_.min_n, 1.0);
  if (n_canary < floor_n || n_baseline < floor_n || !r.valid) return Verdict::kKeepCollecting;
  ++checks_;
  const double p = p_worse(r);
  min_p_ = std::min(min_p_, p);
  return p < o_.alpha ? Verdict::kFail : Verdict::kKeepCollecting;
}

}  // namespace sluice::stats
