#include "drift/drift.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>

#include "core/hash.hpp"

namespace sluice::drift {

// ---- numeric features

Bins::Bins(std::vector<double> baseline, size_t bins) {
  if (baseline.empty() || bins < 2) return;
  std::sort(baseline.begin(), baseline.end());
  for (size_t k = 1; k < bins; ++k) {
    double q = baseline[std::min(baseline.size() - 1, k * baseline.size() / bins)];
    if (edges_.empty() || q > edges_.back()) edges_.push_back(q);
  }
}

size_t Bins::bin(double v) const {
  // Bin i holds (edges[i-1], edges[i]]: values equal to an edge go below it.
  return static_cast<size_t>(std::lower_bound(edges_.begin(), edges_.end(), v) - edges_.begin());
}

std::vector<double> Bins::shares(const std::vector<double>& values) const {
  std::vector<double> s(size(), 0.0);
  if (values.empty()) return s;
  for (double v : values) s[bin(v)] += 1;
  for (double& x : s) x /= static_cast<double>(values.size());
  return s;
}

double psi(const std::vector<double>& p, const std::vector<double>& q, double epsilon) {
  double sum = 0;
  for (size_t i = 0; i < p.size() && i < q.size(); ++i) {
    double a = std::max(p[i], epsilon), b = std::max(q[i], epsilon);
    sum += (b - a) * std::log(b / a);
  }
  return sum;
}

// ---- content sketches

namespace {

bool word_byte(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80; }

}  // namespace

Sketch sketch(std::string_view text) {
  Sketch out(kSketchBuckets, 0.0f);
  std::string word, prev;
  auto emit = [&](const std::string& w) {
    out[fnv1a(w) % kSketchBuckets] += 1;
    if (!prev.empty()) out[fnv1a(w, fnv1a(" ", fnv1a(prev))) % kSketchBuckets] += 1;
    prev = w;
  };
  for (unsigned char c : text) {
    if (word_byte(c)) {
      word.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c));
    } else if (!word.empty()) {
      emit(word);
      word.clear();
    }
  }
  if (!word.empty()) emit(word);
  double norm = 0;
  for (float x : out) norm += static_cast<double>(x) * x;
  if (norm > 0) {
    const float inv = static_cast<float>(1.0 / std::sqrt(norm));
    for (float& x : out) x *= inv;
  }
  return out;
}

namespace {

double distance_of_sums(const std::vector<double>& sum_a, size_t na, const std::vector<double>& sum_b, size_t nb) {
  double d = 0;
  for (size_t k = 0; k < kSketchBuckets; ++k) {
    double x = sum_a[k] / static_cast<double>(na) - sum_b[k] / static_cast<double>(nb);
    d += x * x;
  }
  return std::sqrt(d);
}

std::vector<double> sum_of(const std::vector<Sketch>& v) {
  std::vector<double> s(kSketchBuckets, 0.0);
  for (const auto& x : v)
    for (size_t k = 0; k < kSketchBuckets && k < x.size(); ++k) s[k] += x[k];
  return s;
}

}  // namespace

double mean_distance(const std::vector<Sketch>& a, const std::vector<Sketch>& b) {
  if (a.empty() || b.empty()) return 0;
  return distance_of_sums(sum_of(a), a.size(), sum_of(b), b.size());
}

PermutationResult permutation_test(const std::vector<Sketch>& a, const std::vector<Sketch>& b, int permutations,
                                   uint64_t seed) {
  PermutationResult r;
  if (a.empty() || b.empty()) return r;
  r.distance = mean_distance(a, b);
  std::vector<const Sketch*> pooled;
  pooled.reserve(a.size() + b.size());
  for (const auto& x : a) pooled.push_back(&x);
  for (const auto& x : b) pooled.push_back(&x);
  std::vector<double> total(kSketchBuckets, 0.0);
  for (const Sketch* x : pooled)
    for (size_t k = 0; k < kSketchBuckets; ++k) total[k] += (*x)[k];
  std::mt19937_64 rng(seed);
  int as_far = 0;
  std::vector<double> sum_a(kSketchBuckets), sum_b(kSketchBuckets);
  for (int p = 0; p < permutations; ++p) {
    // A random subset of |a| texts (partial Fisher-Yates) against the rest.
    for (size_t i = 0; i < a.size(); ++i) {
      std::uniform_int_distribution<size_t> pick(i, pooled.size() - 1);
      std::swap(pooled[i], pooled[pick(rng)]);
    }
    std::fill(sum_a.begin(), sum_a.end(), 0.0);
    for (size_t i = 0; i < a.size(); ++i)
      for (size_t k = 0; k < kSketchBuckets; ++k) sum_a[k] += (*pooled[i])[k];
    for (size_t k = 0; k < kSketchBuckets; ++k) sum_b[k] = total[k] - sum_a[k];
    if (distance_of_sums(sum_a, a.size(), sum_b, b.size()) >= r.distance - 1e-12) ++as_far;
  }
  r.p_value = (1.0 + as_far) / (1.0 + permutations);
  return r;
}

// ---- Page-Hinkley

void PageHinkley::reset() {
  n_ = 0;
  mean_ = up_ = up_min_ = down_ = down_max_ = 0;
}

bool PageHinkley::add(double x) {
  ++n_;
  mean_ += (x - mean_) / static_cast<double>(n_);
  up_ += x - mean_ - delta_;
  up_min_ = std::min(up_min_, up_);
  down_ += x - mean_ + delta_;
  down_max_ = std::max(down_max_, down_);
  if (n_ >= min_samples_ && (up_ - up_min_ > lambda_ || down_max_ - down_ > lambda_)) {
    reset();
    return true;
  }
  return false;
}

}  // namespace sluice::drift
