// stats/sequential.hpp: always-valid inference for rollout gates. A gate may be checked
// after every request: these intervals hold simultaneously over all sample sizes with
// probability >= 1 - alpha (confidence sequences), so peeking does not inflate false alarms.
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

// Confidence sequence for the mean of one arm.
Interval mean_cs(const Moments& x, const SequentialOptions& o);

// Confidence sequence for mean(a) - factor * mean(b), a and b independent arms sampled in
// any (data-independent) ratio, e.g. canary vs stable over the same window.
Interval diff_cs(const Moments& a, const Moments& b, double factor, const SequentialOptions& o);

enum class Verdict { kKeepCollecting, kPass, kFail };

// `value <= limit` (lower_is_better) or `value >= limit`: pass when the whole interval is on
// the good side, fail when the whole interval is on the bad side, else keep collecting.
Verdict decide(const Interval& ci, double limit, bool lower_is_better);

}  // namespace sluice::stats
