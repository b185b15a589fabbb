// stats/sequential.cpp: normal-mixture confidence sequences (see sequential.hpp for the
// method and its references).
#include "stats/sequential.hpp"

#include <algorithm>
#include <cmath>

namespace sluice::stats {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

bool options_ok(const SequentialOptions& o) noexcept {
  return o.alpha > 0 && o.alpha < 1 && o.effect > 0 && std::isfinite(o.effect);
}

bool enough(const Moments& x, const SequentialOptions& o) noexcept {
  return x.n >= std::max(o.min_n, 2.0);
}

// p(1 - p) with p smoothed as (sum + 1) / (n + 2): never 0, even before the first event.
double smoothed_bernoulli_variance(double sum, double n) noexcept {
  const double p = std::clamp((sum + 1) / (n + 2), 0.0, 1.0);
  return p * (1 - p);
}

Interval invalid(double estimate) noexcept {
  Interval ci;
  ci.estimate = estimate;
  return ci;
}

}  // namespace

double Moments::variance() const {
  if (n < 2) return 0;
  const double v = (sumsq - sum * sum / n) / (n - 1);
  return v > 0 ? v : 0;  // cancellation can leave a tiny negative number
}

double mixture_half_width(double v, double tau2, double alpha) noexcept {
  if (!(v > 0)) return 0;
  if (!(tau2 > 0)) return kInf;
  const double r = v / tau2;  // V / tau2
  return std::sqrt(v * (1 + r) * (2 * std::log(1 / alpha) + std::log1p(1 / r)));
}

Interval mean_cs(const Moments& x, const SequentialOptions& o) noexcept {
  const double est = x.mean();
  if (!options_ok(o) || !enough(x, o)) return invalid(est);
  const double e2 = o.effect * o.effect;
  Interval ci;
  ci.estimate = est;
  ci.valid = true;
  if (!o.bernoulli) {
    const double var = x.variance();
    const double hw = mixture_half_width(var / x.n, e2 * var, o.alpha);
    ci.lo = est - hw;
    ci.hi = est + hw;
    return ci;
  }
  // Plug-in interval with the smoothed variance.
  const double var = smoothed_bernoulli_variance(x.sum, x.n);
  const double hw = mixture_half_width(var / x.n, e2 * var, o.alpha);
  // Score interval: {p : |est - p| <= k sqrt(p (1 - p) / n)}. k = hw / sqrt(var / n) does not
  // depend on var (V / tau2 = 1 / (n effect^2)), so it is computed at var = 1.
  const double n = x.n;
  const double k = mixture_half_width(1 / n, e2, o.alpha) * std::sqrt(n);
  const double k2n = k * k / n;
  const double p = std::clamp(est, 0.0, 1.0);
  const double center = (p + k2n / 2) / (1 + k2n);
  const double half = k / (1 + k2n) * std::sqrt(p * (1 - p) / n + k2n / (4 * n));
  ci.lo = std::max(0.0, std::min(est - hw, center - half));
  ci.hi = std::min(1.0, std::max(est + hw, center + half));
  return ci;
}

Interval diff_cs(const Moments& a, const Moments& b, double factor,
                 const SequentialOptions& o) noexcept {
  const double est = a.mean() - factor * b.mean();
  if (!options_ok(o) || !enough(a, o) || !enough(b, o) || !std::isfinite(factor)) {
    return invalid(est);
  }
  double var_a, var_b;
  if (o.bernoulli) {
    const double pooled = smoothed_bernoulli_variance(a.sum + b.sum, a.n + b.n);
    var_a = std::max(smoothed_bernoulli_variance(a.sum, a.n), pooled);
    var_b = std::max(smoothed_bernoulli_variance(b.sum, b.n), pooled);
  } else {
    var_a = a.variance();
    var_b = b.variance();
  }
  const double f2 = factor * factor;
  const double v = var_a / a.n + f2 * var_b / b.n;
  const double sigma2 = (a.n * var_a + b.n * f2 * var_b) / (a.n + b.n);
  const double hw = mixture_half_width(v, o.effect * o.effect * sigma2, o.alpha);
  Interval ci;
  ci.estimate = est;
  ci.lo = est - hw;
  ci.hi = est + hw;
  ci.valid = true;
  return ci;
}

Verdict decide(const Interval& ci, double limit, bool lower_is_better) noexcept {
  if (!ci.valid || std::isnan(ci.lo) || std::isnan(ci.hi) || std::isnan(limit)) {
    return Verdict::kKeepCollecting;
  }
  if (lower_is_better) {
    if (ci.hi <= limit) return Verdict::kPass;
    if (ci.lo > limit) return Verdict::kFail;
  } else {
    if (ci.lo >= limit) return Verdict::kPass;
    if (ci.hi < limit) return Verdict::kFail;
  }
  return Verdict::kKeepCollecting;
}

}  // namespace sluice::stats
