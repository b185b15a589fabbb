// rollout/experiment.hpp: experiments on release flags. A release flag that splits traffic
// between releases (flags/flagset.hpp) is an experiment: every answered request is an
// observation of its variant's arm, and the readout compares each variant with the control
// (the flag's metadata.control, else its default variant) using the same always-valid
// statistics as rollout gates (rollout/gates.hpp): a variant has lost when it is worse than
// the control on a guardrail (errors, refusals, latency, cost) with confidence, won when it
// is better on the experiment's metric (metadata.metric, default feedback_mean) and worse on
// none. Evidence lives in the gateway process (it starts over at a restart).
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "rollout/evidence.hpp"

namespace sluice::rollout {

class ExperimentBook {
 public:
  // One answered request of `flag`'s `variant` (remembered by request id for feedback).
  void add(const std::string& flag, const std::string& variant, const std::string& request_id, const Observation& o);
  // Feedback on a request (POST /v1/feedback): false when it was no experiment's.
  bool feedback(const std::string& request_id, double score);
  // The readout of a flag's experiment (JSON). `control` is the variant the others are
  // compared with; `metric` the one that decides a win.
  std::string readout_json(const std::string& flag, const std::string& control, const std::string& metric,
                           double alpha = 0.05) const;
  void clear(const std::string& flag);

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, ArmEvidence>> arms_;  // flag -> variant -> evidence
  std::unordered_map<std::string, std::pair<std::string, std::string>> recent_;  // request id -> (flag, variant)
  std::deque<std::string> recent_order_;
  static constexpr size_t kRecent = 100000;
};

}  // namespace sluice::rollout
