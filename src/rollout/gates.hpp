// rollout/gates.hpp: one gate decided on the evidence so far, with the numbers behind it.
//
// Each gate is an always-valid test (stats/sequential.hpp): it may be evaluated after every
// request. Means and proportions use a confidence sequence on the candidate (absolute
// limits) or on candidate - factor * stable (relative limits). Quantile gates are decided as
// proportions of exceedances: "p99_ttft_ms < 800" holds when P(ttft > 800 ms) < 1%; relative
// quantile limits take the threshold from the stable arm's current quantile.
#pragma once
#include <string>

#include "rollout/evidence.hpp"
#include "rollout/spec.hpp"

namespace sluice::rollout {

enum class Phase { kShadow, kLive };

struct GateStatus {
  std::string check;
  std::string verdict = "collecting";  // collecting | pass | fail | inconclusive | n/a
  double candidate_value = 0, stable_value = 0;  // point estimates of the metric
  double estimate = 0, lo = 0, hi = 0;           // the tested quantity and its interval
  double threshold = 0;                          // what the interval is compared with
  double quantile_ms = -1;  // quantile gates: the latency threshold whose exceedance is tested
  double n_candidate = 0, n_stable = 0;
  double confidence = 0;                         // 1 - alpha of this gate
  bool guardrail = true;
  std::string to_json() const;
};

// `alpha` is this gate's share of the rollout's alpha; `elapsed_ms` the time in the step.
GateStatus evaluate(const Gate& g, const Evidence& ev, Phase phase, double alpha, double effect, int64_t elapsed_ms);

}  // namespace sluice::rollout
