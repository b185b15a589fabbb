// stats/normal.cpp: the standard normal CDF and quantile (Wichura 1988, AS 241 PPND16).
#include "stats/normal.hpp"

#include <cmath>
#include <limits>

namespace sluice::stats {
namespace {

double poly(const double* c, int n, double x) noexcept {  // c[0] + c[1] x + ... + c[n-1] x^(n-1)
  double r = c[n - 1];
  for (int i = n - 2; i >= 0; --i) r = r * x + c[i];
  return r;
}

constexpr double kA[] = {3.3871328727963666080e0, 1.3314166789178437745e+2,
                         1.9715909503065514427e+3, 1.3731693765509461125e+4,
                         4.5921953931549871457e+4, 6.7265770927008700853e+4,
                         3.3430575583588128105e+4, 2.5090809287301226727e+3};
constexpr double kB[] = {1.0,
                         4.2313330701600911252e+1, 6.8718700749205790830e+2,
                         5.3941960214247511077e+3, 2.1213794301586595867e+4,
                         3.9307895800092710610e+4, 2.8729085735721942674e+4,
                         5.2264952788528545610e+3};
constexpr double kC[] = {1.42343711074968357734e0, 4.63033784615654529590e0,
                         5.76949722146069140550e0, 3.64784832476320460504e0,
                         1.27045825245236838258e0, 2.41780725177450611770e-1,
                         2.27238449892691845833e-2, 7.74545014278341407640e-4};
constexpr double kD[] = {1.0,
                         2.05319162663775882187e0, 1.67638483018380384940e0,
                         6.89767334985100004550e-1, 1.48103976427480074590e-1,
                         1.51986665636164571966e-2, 5.47593808499534494600e-4,
                         1.05075007164441684324e-9};
constexpr double kE[] = {6.65790464350110377720e0, 5.46378491116411436990e0,
                         1.78482653991729133580e0, 2.96560571828504891230e-1,
                         2.65321895265761230930e-2, 1.24266094738807843860e-3,
                         2.71155556874348757815e-5, 2.01033439929228813265e-7};
constexpr double kF[] = {1.0,
                         5.99832206555887937690e-1, 1.36929880922735805310e-1,
                         1.48753612908506148525e-2, 7.86869131145613259100e-4,
                         1.84631831751005468180e-5, 1.42151175831644588870e-7,
                         2.04426310338993978564e-15};

}  // namespace

double normal_cdf(double x) noexcept { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

double normal_quantile(double p) noexcept {
  if (std::isnan(p) || p < 0 || p > 1) return std::numeric_limits<double>::quiet_NaN();
  if (p == 0) return -std::numeric_limits<double>::infinity();
  if (p == 1) return std::numeric_limits<double>::infinity();
  const double q = p - 0.5;
  double x;
  if (std::fabs(q) <= 0.425) {
    const double r = 0.180625 - q * q;
    x = q * poly(kA, 8, r) / poly(kB, 8, r);
  } else {
    double r = std::sqrt(-std::log(q < 0 ? p : 1 - p));
    if (r <= 5) {
      r -= 1.6;
      x = poly(kC, 8, r) / poly(kD, 8, r);
    } else {
      r -= 5;
      x = poly(kE, 8, r) / poly(kF, 8, r);
    }
    if (q < 0) x = -x;
  }
  // One Newton step on the tail that is computed accurately (erfc keeps relative precision).
  if (std::isfinite(x)) {
    const double density = std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI);
    if (density > 0) {
      // Phi(x) - p, from the tail that erfc computes to full relative precision.
      const double err = x < 0 ? normal_cdf(x) - p : (1 - p) - normal_cdf(-x);
      x -= err / density;
    }
  }
  return x;
}

}  // namespace sluice::stats
