// stats/baselines.hpp: the canary-analysis methods sluice's sequential gates are compared
// with in bench/canary. Real, tested code, not used by the gateway:
//   - FixedWindowAnalysis: Argo Rollouts-style. Every `interval_s` the metric is measured over
//     that window alone and compared with a threshold; the analysis fails once more than
//     `failure_limit` measurements have failed (Argo's `failureLimit`, default 0: the first
//     failed measurement fails the rollout).
//   - RepeatedMannWhitney: Kayenta-style. Every interval a Mann-Whitney U test of canary vs
//     baseline on the data so far, at level alpha, repeated without multiplicity correction;
//     the first significant "canary worse" fails the rollout. (Kayenta's judge classifies
//     each metric with a Mann-Whitney test and then scores metric groups; this is the test
//     at its core, for one metric.)
#pragma once
#include <cstdint>
#include <span>

#include "stats/sequential.hpp"

namespace sluice::stats {

// Two-sample Mann-Whitney U test, normal approximation with tie correction and a
// continuity correction of 1/2.
struct MannWhitney {
  double u = 0;            // U of sample a: pairs with a_i > b_j, plus half the ties
  double z = 0;            // (u - n_a n_b / 2) / sd, without the continuity correction
  double p_a_greater = 1;  // one-sided: values in a tend to be larger than in b
  double p_a_less = 1;     // one-sided: values in a tend to be smaller
  double p_two_sided = 1;
  bool valid = false;  // false when a sample is empty or every value is tied (p-values are 1)
};

// On raw observations (O((n_a + n_b) log(n_a + n_b))).
MannWhitney mann_whitney(std::span<const double> a, std::span<const double> b);

// On observations already counted into the same ordered categories (bins), e.g. 0/1
// outcomes as two bins or continuous values through LogBins: O(bins), exact tie handling.
MannWhitney mann_whitney_binned(std::span<const double> a_counts,
                                std::span<const double> b_counts) noexcept;

// Log-spaced bins over [lo, hi] (values outside fall into the end bins): a ranking of
// positive values (latency, cost) at a relative resolution of (hi / lo)^(1 / bins).
struct LogBins {
  double lo = 1e-6, hi = 1e6;
  int bins = 2048;
  int index(double x) const noexcept;
};

struct FixedWindowOptions {
  double interval_s = 60;  // the measurement period; each measurement covers one window
  // A measurement is value = mean(canary) - factor * mean(stable) over the window; it fails
  // when value > threshold (lower_is_better) or value < threshold (otherwise).
  double threshold = 0;
  double factor = 1;
  int failure_limit = 0;  // fail when failed measurements > failure_limit
  double min_n = 1;       // fewer canary observations in a window: inconclusive, not failed
  bool lower_is_better = true;
};

class FixedWindowAnalysis {
 public:
  explicit FixedWindowAnalysis(const FixedWindowOptions& o) noexcept : o_(o) {}

  // Observations of the current window, in time order.
  void add_canary(double x) noexcept { canary_.add(x); }
  void add_stable(double x) noexcept { stable_.add(x); }
  void add_stable(const Moments& m) noexcept { stable_.merge(m); }

  // The clock reached `now` (seconds since the analysis started): measures the current
  // window if it has ended (windows are [k interval, (k + 1) interval)) and returns kFail
  // from the measurement that exceeds the failure limit on. Observations added before this
  // call belong to the window that ended; call it before adding observations past a
  // boundary. Windows that passed with no call are measured as empty (inconclusive).
  Verdict advance(double now) noexcept;

  // One measurement of a window aggregated by the caller.
  Verdict measure(const Moments& canary, const Moments& stable) noexcept;

  static double value(const Moments& canary, const Moments& stable, double factor) noexcept {
    return canary.mean() - factor * stable.mean();
  }

  int measurements() const noexcept { return measurements_; }
  int failed() const noexcept { return failed_; }
  int inconclusive() const noexcept { return inconclusive_; }
  double last_value() const noexcept { return last_value_; }  // NaN if inconclusive
  double next_boundary() const noexcept { return (measurements_ + 1) * o_.interval_s; }
  const FixedWindowOptions& options() const noexcept { return o_; }

 private:
  FixedWindowOptions o_;
  Moments canary_, stable_;
  int measurements_ = 0, failed_ = 0, inconclusive_ = 0;
  double last_value_ = 0;
};

struct RepeatedMannWhitneyOptions {
  double interval_s = 60;  // how often the caller runs a test (for bookkeeping only)
  double alpha = 0.01;     // per test, no correction for the repetition
  bool higher_is_worse = true;
  double min_n = 20;  // per arm: fewer observations, the test is skipped
};

class RepeatedMannWhitney {
 public:
  explicit RepeatedMannWhitney(const RepeatedMannWhitneyOptions& o) noexcept : o_(o) {}

  // Judge one test of canary (sample a) vs baseline (sample b) on the data so far; kFail once
  // the canary is significantly worse, kKeepCollecting otherwise (including too few samples).
  Verdict judge(const MannWhitney& r, double n_canary, double n_baseline) noexcept;

  // The one-sided p-value of "canary worse" in `r`.
  double p_worse(const MannWhitney& r) const noexcept {
    return o_.higher_is_worse ? r.p_a_greater : r.p_a_less;
  }

  int checks() const noexcept { return checks_; }
  double min_p() const noexcept { return min_p_; }  // smallest p_worse so far (1 before any)
  const RepeatedMannWhitneyOptions& options() const noexcept { return o_; }

 private:
  RepeatedMannWhitneyOptions o_;
  int checks_ = 0;
  double min_p_ = 1;
};

}  // namespace sluice::stats
