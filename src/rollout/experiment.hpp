// rollout/experiment.hpp: experiments on release flags. A release flag that splits traffic
// between releases (flags/flagset.hpp) is an experiment: every answered request is an
// observation of its variant's arm, and the readout compares each variant with the control
// (the flag's metadata.control, else its default variant) using the same always-valid
// statistics as rollout gates (rollout/gates.hpp): a variant has lost when it is worse than
// the control with confidence on a guardrail (metadata.guardrails, default
// "error_rate,refusal_rate") or on the experiment's metric (metadata.metric, default
// feedback_mean); it has won when it is better on the metric and has not lost. Latency, cost
// and the rest are compared too and reported. Evidence lives in the gateway process (it
// starts over at a restart, and when the flag changes).
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
  // `version` identifies the flag's definition: a changed flag starts a new experiment.
  void add(const std::string& flag, uint64_t version, const std::string& variant, const std::string& request_id,
           const Observation& o);
  // Feedback on a request (POST /v1/feedback): false when it was no experiment's.
  bool feedback(const std::string& request_id, double score);
  // The readout of a flag's experiment (JSON). `control` is the variant the others are
  // compared with; `metric` the one that decides a win.
  std::string readout_json(const std::string& flag, uint64_t version, const std::string& control,
                           const std::string& metric, const std::string& guardrails, double alpha = 0.05) const;
  void clear(const std::string& flag);

 private:
  mutable std::mutex mu_;
  struct Experiment {
    uint64_t version = 0;
    std::map<std::string, ArmEvidence> arms;  // variant -> evidence
  };
  std::map<std::string, Experiment> experiments_;  // by flag
  std::unordered_map<std::string, std::pair<std::string, std::string>> recent_;  // request id -> (flag, variant)
  std::deque<std::string> recent_order_;
  static constexpr size_t kRecent = 100000;
};

}  // namespace sluice::rollout
