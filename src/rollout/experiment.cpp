#include "rollout/experiment.hpp"

#include "core/error.hpp"
#include "core/strings.hpp"
#include "rollout/gates.hpp"

#include <climits>

namespace sluice::rollout {

void ExperimentBook::add(const std::string& flag, uint64_t version, const std::string& variant,
                         const std::string& request_id, const Observation& o) {
  std::lock_guard<std::mutex> lock(mu_);
  Experiment& x = experiments_[flag];
  if (x.version != version) x = Experiment{version, {}};
  x.arms[variant].add(o);
  if (request_id.empty()) return;
  if (recent_.emplace(request_id, std::make_pair(flag, variant)).second) {
    recent_order_.push_back(request_id);
    if (recent_order_.size() > kRecent) {
      recent_.erase(recent_order_.front());
      recent_order_.pop_front();
    }
  }
}

bool ExperimentBook::feedback(const std::string& request_id, double score) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = recent_.find(request_id);
  if (it == recent_.end()) return false;
  experiments_[it->second.first].arms[it->second.second].feedback.add(score);
  return true;
}

void ExperimentBook::clear(const std::string& flag) {
  std::lock_guard<std::mutex> lock(mu_);
  experiments_.erase(flag);
}

std::string ExperimentBook::readout_json(const std::string& flag, uint64_t version, const std::string& control,
                                         const std::string& metric, const std::string& guardrails, double alpha) const {
  std::map<std::string, ArmEvidence> arms;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = experiments_.find(flag);
    if (it != experiments_.end() && it->second.version == version) arms = it->second.arms;
  }
  // Each metric as a relative gate "variant vs control": pass = better, fail = worse.
  static const char* const kChecks[] = {"error_rate", "refusal_rate",      "latency_ms",   "ttft_ms",
                                        "cost_per_call", "schema_valid_rate", "feedback_mean"};
  auto is_guardrail = [&](const std::string& m) {
    for (auto g : split(guardrails, ','))
      if (trim(g) == m) return true;
    return false;
  };
  auto higher_is_better = [](const std::string& m) { return m == "feedback_mean" || m == "schema_valid_rate"; };
  std::string out = "{\"flag\":";
  append_json_string(out, flag);
  out += ",\"control\":";
  append_json_string(out, control);
  out += ",\"metric\":";
  append_json_string(out, metric);
  out += ",\"guardrails\":";
  append_json_string(out, guardrails);
  out += ",\"confidence\":" + num_text(1 - alpha, 6) + ",\"variants\":[";
  const ArmEvidence empty;
  const auto ctl = arms.find(control);
  const ArmEvidence& c = ctl == arms.end() ? empty : ctl->second;
  bool first = true;
  for (const auto& [variant, ev] : arms) {
    if (!first) out += ',';
    first = false;
    out += "{\"variant\":";
    append_json_string(out, variant);
    out += ",\"requests\":" + std::to_string(static_cast<int64_t>(ev.error.n));
    out += ",\"error_rate\":" + num_text(ev.error.mean(), 6) + ",\"refusal_rate\":" + num_text(ev.refusal.mean(), 6) +
           ",\"latency_ms\":" + num_text(ev.latency.mean(), 6) + ",\"p99_latency_ms\":" +
           num_text(ev.latency_h.quantile(0.99), 6) + ",\"ttft_ms\":" + num_text(ev.ttft.mean(), 6) +
           ",\"cost_per_call\":" + num_text(ev.cost.mean(), 8) + ",\"feedback_mean\":" + num_text(ev.feedback.mean(), 6) +
           ",\"feedback_n\":" + std::to_string(static_cast<int64_t>(ev.feedback.n));
    if (variant == control) {
      out += ",\"role\":\"control\"}";
      continue;
    }
    Evidence pair;
    pair.stable = c;
    pair.candidate = ev;
    out += ",\"comparisons\":[";
    bool lost = false, better_on_metric = false, any = false;
    const double share = alpha / static_cast<double>(std::size(kChecks));
    for (const char* k : kChecks) {
      Gate g;
      std::string err;
      const std::string m = k;
      parse_gate(m + (higher_is_better(m) ? " >= stable" : " <= stable"), g, err);
      g.min_samples = 30;
      g.max_duration_ms = INT64_MAX;
      GateStatus s = evaluate(g, pair, Phase::kLive, share, 0.1, 0);
      if (s.verdict == "n/a" || s.n_candidate == 0 || s.n_stable == 0) continue;
      // pass: the variant is better than the control with confidence; fail: worse.
      const std::string said = s.verdict == "pass" ? "better" : s.verdict == "fail" ? "worse" : "no difference yet";
      if (s.verdict == "fail" && (is_guardrail(m) || m == metric)) lost = true;
      if (s.verdict == "pass" && m == metric) better_on_metric = true;
      if (any) out += ',';
      any = true;
      out += "{\"metric\":\"" + m + "\",\"verdict\":\"" + said + "\",\"variant\":" + num_text(s.candidate_value, 6) +
             ",\"control\":" + num_text(s.stable_value, 6) + ",\"difference\":" + num_text(s.estimate, 6) +
             ",\"lo\":" + num_text(s.lo, 6) + ",\"hi\":" + num_text(s.hi, 6) + "}";
    }
    out += "],\"outcome\":\"";
    out += lost ? "lost" : better_on_metric ? "won" : "running";
    out += "\"}";
  }
  return out + "]}";
}

}  // namespace sluice::rollout
