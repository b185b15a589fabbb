// drift/drift.hpp: has what a route receives (or answers) moved away from a baseline?
//
// - Numeric features (prompt tokens, message count, answer length...): a baseline's
//   quantile bins, and the population stability index (PSI) of a window against it.
// - Content: each text becomes a hashed sketch of its word unigrams and bigrams (a fixed
//   number of buckets, L2-normalised); a window and the baseline are compared by the
//   distance between their mean sketches, with a permutation p-value (how often a random
//   split of the pooled texts is as far apart), so the verdict does not depend on a
//   hand-picked distance threshold.
// - Output signals over time (refusal rate, answer length, judge score): a two-sided
//   Page-Hinkley test on the stream of values, which raises when the mean shifts.
//
// Pure and deterministic (the permutation test takes a seed); no I/O.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace sluice::drift {

// ---- numeric features

// Bin edges at the baseline's quantiles (`bins` bins; fewer when values repeat).
class Bins {
 public:
  Bins() = default;
  Bins(std::vector<double> baseline, size_t bins);
  size_t size() const { return edges_.size() + 1; }
  size_t bin(double v) const;
  // Share of `values` in each bin.
  std::vector<double> shares(const std::vector<double>& values) const;

 private:
  std::vector<double> edges_;  // upper edges of all bins but the last, ascending
};

// PSI = sum over bins of (p_i - q_i) * ln(p_i / q_i), shares floored at `epsilon` so an empty
// bin does not make it infinite. Rules of thumb: < 0.1 stable, 0.1-0.25 moderate, > 0.25 shift.
double psi(const std::vector<double>& baseline_shares, const std::vector<double>& window_shares,
           double epsilon = 1e-4);

// ---- content sketches

inline constexpr size_t kSketchBuckets = 256;
using Sketch = std::vector<float>;  // kSketchBuckets values, unit L2 norm (all zero for an empty text)

// Word unigrams and bigrams (ASCII letters and digits lowercased; other bytes >= 0x80 kept,
// so any script makes words) hashed into kSketchBuckets buckets, counts then L2-normalised.
Sketch sketch(std::string_view text);

// Euclidean distance between the mean sketches of two sets.
double mean_distance(const std::vector<Sketch>& a, const std::vector<Sketch>& b);

struct PermutationResult {
  double distance = 0;  // between the mean sketches of the two sets
  double p_value = 1;   // (1 + #permutations at least as far) / (1 + permutations)
};
// Permutation test of "a and b come from the same distribution of texts".
PermutationResult permutation_test(const std::vector<Sketch>& a, const std::vector<Sketch>& b,
                                   int permutations = 199, uint64_t seed = 1);

// ---- output signals over time

// Two-sided Page-Hinkley: raises when the running mean moves by more than `delta` (the
// change that matters, in the signal's unit) with cumulative evidence above `lambda`.
class PageHinkley {
 public:
  PageHinkley(double delta, double lambda, size_t min_samples = 30)
      : delta_(delta), lambda_(lambda), min_samples_(min_samples) {}
  // Adds a value; true when a change is detected (then it starts over).
  bool add(double x);
  size_t samples() const { return n_; }
  double mean() const { return mean_; }

 private:
  void reset();
  double delta_, lambda_;
  size_t min_samples_;
  size_t n_ = 0;
  double mean_ = 0, up_ = 0, up_min_ = 0, down_ = 0, down_max_ = 0;
};

}  // namespace sluice::drift
