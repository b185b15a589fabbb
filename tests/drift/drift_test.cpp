// Drift statistics: PSI against hand-computed values, sketches, the permutation test on
// texts from one source and from two, and Page-Hinkley on a stationary and a shifted stream.
// Everything is seeded, so each verdict is a fixed computation.
#include "drift/drift.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace sluice::drift {
namespace {

TEST(Drift, PsiMatchesTheFormula) {
  // (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5)
  EXPECT_NEAR(psi({0.5, 0.5}, {0.25, 0.75}), 0.25 * std::log(2.0) + 0.25 * std::log(1.5), 1e-12);
  EXPECT_DOUBLE_EQ(psi({0.2, 0.3, 0.5}, {0.2, 0.3, 0.5}), 0.0);
  EXPECT_TRUE(std::isfinite(psi({0.5, 0.5}, {1.0, 0.0})));  // an empty bin is floored, not infinite
}

TEST(Drift, QuantileBinsAndPsiOfShiftedLengths) {
  std::mt19937 rng(7);
  std::lognormal_distribution<double> base(5.0, 1.0), shifted(5.7, 1.0);
  std::vector<double> b, same, moved;
  for (int i = 0; i < 4000; ++i) b.push_back(base(rng));
  for (int i = 0; i < 1000; ++i) same.push_back(base(rng)), moved.push_back(shifted(rng));
  Bins bins(b, 10);
  EXPECT_EQ(bins.size(), 10u);
  auto ref = bins.shares(b);
  for (double s : ref) EXPECT_NEAR(s, 0.1, 0.01);
  EXPECT_LT(psi(ref, bins.shares(same)), 0.05);
  EXPECT_GT(psi(ref, bins.shares(moved)), 0.25);
  // Repeated values make fewer bins, never empty ones at the edges.
  Bins few(std::vector<double>(100, 3.0), 10);
  EXPECT_EQ(few.size(), 2u);
}

TEST(Drift, SketchesAreNormalisedAndCaseFree) {
  Sketch a = sketch("Natalia sold clips to 48 of her friends");
  double norm = 0;
  for (float x : a) norm += x * x;
  EXPECT_NEAR(norm, 1.0, 1e-5);
  EXPECT_NEAR(mean_distance({a}, {sketch("NATALIA sold clips to 48 of her friends!")}), 0.0, 1e-6);
  EXPECT_GT(mean_distance({a}, {sketch("How can I kill a Python process?")}), 0.5);
  for (float x : sketch("")) EXPECT_EQ(x, 0.0f);
}

std::vector<std::string> texts(const std::vector<std::string>& vocab, int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    std::string t;
    for (int w = 0; w < 12; ++w) t += vocab[rng() % vocab.size()] + " ";
    out.push_back(t);
  }
  return out;
}

std::vector<Sketch> sketches(const std::vector<std::string>& t) {
  std::vector<Sketch> out;
  for (const auto& x : t) out.push_back(sketch(x));
  return out;
}

TEST(Drift, PermutationTestSeparatesSourcesAndNotHalves) {
  const std::vector<std::string> math = {"apples", "she", "bought", "each", "cost", "dollars", "how", "many",
                                         "total", "left", "per", "week", "times", "more", "than", "half"};
  const std::vector<std::string> other = {"kill", "process", "how", "can", "i", "terminate", "program",
                                          "what", "is", "the", "best", "way", "to", "execute", "plan"};
  auto base = sketches(texts(math, 200, 1));
  // 20 windows of 100 texts from the baseline's source, 20 with a fifth from elsewhere: at
  // p <= 0.01, about 1 in 100 same-source windows may alarm; nearly every mixed one must.
  int false_alarms = 0, detections = 0;
  double same_distance = 0, mixed_distance = 0;
  for (uint32_t w = 0; w < 20; ++w) {
    auto same = sketches(texts(math, 100, 100 + w));
    auto mixed = sketches(texts(math, 80, 200 + w));
    for (auto& x : sketches(texts(other, 20, 300 + w))) mixed.push_back(x);
    PermutationResult r0 = permutation_test(base, same, 199, w);
    PermutationResult r1 = permutation_test(base, mixed, 199, w);
    false_alarms += r0.p_value <= 0.01;
    detections += r1.p_value <= 0.01;
    same_distance += r0.distance;
    mixed_distance += r1.distance;
  }
  EXPECT_LE(false_alarms, 2);
  EXPECT_GE(detections, 19);
  EXPECT_GT(mixed_distance, 2 * same_distance);
  auto same = sketches(texts(math, 100, 100));
  EXPECT_EQ(permutation_test(base, same, 199, 5).p_value, permutation_test(base, same, 199, 5).p_value)
      << "seeded: the same verdict";
}

TEST(Drift, PageHinkleyQuietOnAStationaryStreamFiresAfterAShift) {
  std::mt19937 rng(3);
  std::bernoulli_distribution low(0.05), high(0.20);
  PageHinkley ph(0.02, 5.0);
  int alarms = 0;
  for (int i = 0; i < 5000; ++i) alarms += ph.add(low(rng) ? 1.0 : 0.0);
  EXPECT_EQ(alarms, 0) << "a refusal rate holding at 5%";
  int delay = -1;
  for (int i = 0; i < 2000 && delay < 0; ++i)
    if (ph.add(high(rng) ? 1.0 : 0.0)) delay = i + 1;
  EXPECT_GT(delay, 0) << "the rate went to 20%";
  EXPECT_LT(delay, 500);
  // A drop is seen too.
  PageHinkley down(0.02, 5.0);
  for (int i = 0; i < 1000; ++i) down.add(high(rng) ? 1.0 : 0.0);
  int fired = 0;
  for (int i = 0; i < 1000; ++i) fired += down.add(low(rng) ? 1.0 : 0.0);
  EXPECT_GE(fired, 1);
}

}  // namespace
}  // namespace sluice::drift
