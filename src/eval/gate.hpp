// eval/gate.hpp: the gate's decision. Both releases answer the same cases, so every
// comparison is paired by case:
//  - pass rate vs baseline (max_drop): with one answer per case, Newcombe's interval for a
//    paired difference of proportions (and the exact McNemar test on discordant pairs,
//    reported); with --repeat, a paired bootstrap over cases of per-case pass fractions;
//  - cost and latency vs baseline (max_*_increase): a paired bootstrap interval for the ratio
//    of means (cost) or of 95th percentiles (latency);
//  - absolute limits (min_pass_rate, max_cost_per_case, max_p95_*_ms): an interval for the
//    candidate's own value (Wilson for a pass rate, bootstrap otherwise).
// Each limit is pass (the whole interval on the good side), fail (the whole interval on the
// bad side) or inconclusive (the interval straddles the limit), at two-sided level 1 - alpha:
// a wrong fail, and a wrong pass, each happen with probability <= alpha / 2.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "eval/suite.hpp"

namespace sluice::eval {

// One release's results, one entry per case (aligned with Suite::cases).
struct ArmData {
  std::vector<double> pass;     // fraction of repeats that passed
  std::vector<double> cost;     // mean dollars per call
  std::vector<double> ttft;     // mean ms
  std::vector<double> latency;  // mean ms
  std::vector<int> passes;      // repeats passed
  std::vector<bool> flaky;      // pass/fail changed across repeats
};

enum class Verdict { kPass, kFail, kInconclusive, kSkipped };
const char* verdict_name(Verdict v);

struct LimitResult {
  LimitSpec spec;
  std::string name;  // e.g. "target: max_drop 2.0 pts"
  Verdict verdict = Verdict::kSkipped;
  bool blocks = false;  // counts against the gate
  int64_t n = 0;        // paired cases used
  double base = NAN, cand = NAN;  // the metric for each release
  double estimate = NAN, lo = NAN, hi = NAN;  // interval of the tested quantity
  double limit = NAN;   // the bound the interval is compared with (same scale)
  std::string quantity; // "diff" | "ratio" | "value"
  std::string method;
  double p_worse = NAN;  // exact McNemar, one-sided (candidate passes less often)
  int64_t base_only = 0, cand_only = 0;
  std::string detail;   // one sentence for humans
};

struct CategoryStats {
  std::string category;  // "all" for the total
  int64_t n = 0;
  double base_pass = NAN, cand_pass = NAN;
  int64_t both = 0, base_only = 0, cand_only = 0, neither = 0;  // majority outcome per case
  double base_cost = NAN, cand_cost = NAN;
  double base_p95_ttft = NAN, cand_p95_ttft = NAN;
  double base_p95_latency = NAN, cand_p95_latency = NAN;
  int64_t base_flaky = 0, cand_flaky = 0;
};

struct GateResult {
  bool passed = false;
  int decided = 0;  // limits not skipped
  std::vector<LimitResult> limits;
  std::vector<CategoryStats> categories;  // per category, then "all"
};

// `included[i]`: case i has a usable answer from every arm (errored cases are left out).
// `base` is null without a baseline (regression limits are then skipped).
GateResult decide_gate(const Suite& suite, const std::vector<bool>& included, const ArmData& cand,
                       const ArmData* base, int repeat);

// Wilson score interval for k successes in n at two-sided level 1 - alpha.
void wilson(int64_t k, int64_t n, double alpha, double& lo, double& hi);

}  // namespace sluice::eval
