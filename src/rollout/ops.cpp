#include "core/strings.hpp"
#include "rollout/ops.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "core/crypto.hpp"
#include "core/error.hpp"

namespace sluice::rollout {

namespace {

std::string num(double v) { return num_text(v, 4); }

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string new_id() {
  std::random_device rd;
  std::string seed = std::to_string(rd()) + std::to_string(rd()) + std::to_string(now_ms());
  return "ro_" + sha256_hex(seed).substr(0, 12);
}

std::string arm_summary(const ArmEvidence& a) {
  std::string l = "n=" + num(a.error.n) + " errors " + num(a.error.mean() * 100) + "%";
  if (a.latency.n > 0) l += ", latency p50 " + num(a.latency_h.quantile(0.5)) + " p99 " + num(a.latency_h.quantile(0.99)) + " ms";
  if (a.ttft.n > 0) l += ", ttft p99 " + num(a.ttft_h.quantile(0.99)) + " ms";
  if (a.cost.n > 0) l += ", cost/call " + num(a.cost.mean());
  if (a.refusal.n > 0) l += ", refusals " + num(a.refusal.mean() * 100) + "%";
  if (a.feedback.n > 0) l += ", feedback " + num(a.feedback.mean()) + " (n=" + num(a.feedback.n) + ")";
  return l;
}

std::string arm_json(const ArmEvidence& a) {
  std::string o = "{\"requests\":" + num(a.error.n) + ",\"error_rate\":" + num(a.error.mean());
  o += ",\"latency_p50_ms\":" + num(a.latency_h.quantile(0.5)) + ",\"latency_p99_ms\":" + num(a.latency_h.quantile(0.99));
  o += ",\"ttft_p99_ms\":" + num(a.ttft_h.quantile(0.99)) + ",\"cost_per_call\":" + num(a.cost.mean());
  o += ",\"refusal_rate\":" + num(a.refusal.mean()) + ",\"refusal_n\":" + num(a.refusal.n);
  o += ",\"feedback_mean\":" + num(a.feedback.mean()) + ",\"feedback_n\":" + num(a.feedback.n) + "}";
  return o;
}

// The stored state, or false while no controller has started the rollout yet.
bool stored_state(const store::RolloutRecord& r, State& st) {
  if (r.state.find("\"new\"") != std::string::npos) return false;
  st.from_json(r.state);
  return true;
}

// {"id","route","stable","candidate", ... (left open for more members)
std::string record_head_json(const store::RolloutRecord& r) {
  std::string o = "{\"id\":";
  append_json_string(o, r.id);
  o += ",\"route\":";
  append_json_string(o, r.route);
  o += ",\"stable\":";
  append_json_string(o, r.stable_release);
  o += ",\"candidate\":";
  append_json_string(o, r.candidate_release);
  return o;
}

// The suites of the policy's evidence requirement without a passing run from its
// environment ("" when none is missing; "any suite" when the policy names none).
std::string missing_evidence(const store::RoutePolicy& policy, const std::vector<store::EvalRunRecord>& runs) {
  auto passed_there = [&](const std::string& suite) {
    for (const auto& run : runs)
      if (run.passed && run.environment == policy.evidence_environment && (suite.empty() || run.suite_name == suite))
        return true;
    return false;
  };
  if (policy.evidence_suites.empty()) return passed_there("") ? "" : "any suite";
  std::string missing;
  for (const auto& suite : policy.evidence_suites)
    if (!passed_there(suite)) missing += (missing.empty() ? "'" : ", '") + suite + "'";
  return missing;
}

}  // namespace

std::string list_json(store::Store& s) {
  std::string o = "{\"object\":\"list\",\"data\":[";
  bool first = true;
  for (const auto& r : s.list_rollouts("", false)) {
    if (!first) o += ",";
    first = false;
    o += record_head_json(r) + ",\"status\":";
    append_json_string(o, r.status);
    o += ",\"created_at\":" + std::to_string(r.created_at) + "}";
  }
  return o + "]}";
}

control::Result start(store::Store& s, const StartRequest& r) {
  auto rel = s.get_release(r.release);
  if (!rel) return {"no release " + r.release, ""};
  auto route = s.get_route(r.route);
  if (!route) return {"route '" + r.route + "' has no stable release yet: promote one first (sluice route promote)", ""};
  if (rel->route != r.route) return {"release " + rel->id + " is for route '" + rel->route + "'", ""};
  if (rel->id == route->stable_release) return {"release " + rel->id + " is already the stable release of " + r.route, ""};
  // The eval gate: a passing eval run of this release for this route (of the route's suite
  // when its policy names one), unless overridden with a reason.
  auto policy = s.get_route_policy(r.route);
  std::string suite = policy ? policy->eval_suite : "";
  bool passed = false, override_used = false;
  std::string override_note;
  const auto runs = s.list_eval_runs(rel->id);
  for (const auto& run : runs)
    passed = passed || (run.passed && run.environment.empty() && run.route == r.route &&
                        (suite.empty() || run.suite_name == suite));
  // Promotion between environments: evidence from the named environment, which no override
  // replaces (it is what that environment saw, not this one's gate).
  if (policy && !policy->evidence_environment.empty()) {
    if (std::string missing = missing_evidence(*policy, runs); !missing.empty())
      return {"release " + rel->id + " has no evidence from environment '" + policy->evidence_environment +
                  "' (the route's policy): missing a passing run of " + missing +
                  " there; export it from that environment and `sluice release import` the bundle here",
              ""};
  }
  if (!passed) {
    std::string what = "release " + rel->id + " has no passing eval run" +
                       (suite.empty() ? std::string() : " of suite '" + suite + "' (the route's policy)");
    if (!r.override_eval)
      return {what + ": run `sluice eval run --suite ... --release " + rel->id +
                  " --baseline-route " + r.route + "` first, or start with --override --reason \"...\" (audited)",
              ""};
    if (r.reason.empty()) return {"--override needs --reason", ""};
    override_used = true;  // audited once the rollout exists
    override_note = what;
  }
  std::string err;
  std::optional<Spec> spec = r.spec_text.empty() ? std::optional<Spec>(default_spec(r.strategy)) : parse_spec(r.spec_text, err);
  if (!spec) return {"rollout spec: " + err, ""};
  // The route's policy applies whatever the spec says ("never 100% without sign-off").
  // Without a policy of its own a route gets the default one: sign-off before 100%.
  require_approval_above(*spec, policy ? policy->require_approval_above : store::kDefaultApprovalAbove);
  store::RolloutRecord rec;
  rec.id = new_id();
  rec.route = r.route;
  rec.stable_release = route->stable_release;
  rec.candidate_release = rel->id;
  rec.spec = spec_json(*spec);
  rec.state = "{\"new\":true}";
  rec.created_by = r.actor;
  store::Outcome o = s.create_rollout(rec, r.reason);
  if (!o.ok()) return {o.error, ""};
  if (override_used)
    s.append_audit({0, 0, r.actor, "rollout.override_eval", r.route, override_note, rel->id, r.reason, "ok"});
  return {"", rec.id};
}

control::Result refuse_promote(store::Store& s, const store::RolloutRecord& r, const std::string& actor,
                               const std::string& reason) {
  std::string why = "promote refused for rollout " + r.id + " on " + r.route + ": " + kApprovalNeeded;
  s.append_audit({0, 0, actor, "rollout.promote", r.route, "", r.id, reason.empty() ? why : reason + " [" + why + "]",
                  "denied"});
  return {why, ""};
}

control::Result command(store::Store& s, const std::string& route, const std::string& cmd, const std::string& actor,
                        const std::string& reason) {
  if (cmd != "promote" && cmd != "pause" && cmd != "resume" && cmd != "abort" && cmd != "approve")
    return {"unknown rollout command '" + cmd + "'", ""};
  auto r = s.active_rollout(route);
  if (!r) return {"route '" + route + "' has no active rollout", ""};
  if (cmd == "approve" && reason.empty()) return {"approve needs --reason", ""};
  State st;
  if (cmd == "promote" && stored_state(*r, st) && st.status == Status::kAwaitingApproval)
    return refuse_promote(s, *r, actor, reason);
  store::Outcome o = s.add_rollout_command({0, r->id, cmd, actor, reason, 0});
  if (!o.ok()) return {o.error, ""};
  return {"", cmd + " queued for rollout " + r->id + " on " + route};
}

std::string status_json(const store::RolloutRecord& r, const std::vector<store::RolloutEvent>& events) {
  std::string err;
  auto spec = parse_spec(r.spec, err);
  State st;
  bool fresh = !stored_state(r, st);
  std::string o = record_head_json(r) + ",\"record_status\":";
  append_json_string(o, r.status);
  o += ",\"status\":\"" + std::string(fresh ? "starting" : status_name(st.status)) + "\",\"reason\":";
  append_json_string(o, st.reason);
  o += ",\"strategy\":";
  append_json_string(o, spec ? spec->strategy : "");
  o += ",\"step\":" + std::to_string(st.step) + ",\"steps\":[";
  if (spec) {
    for (size_t i = 0; i < spec->steps.size(); ++i) {
      if (i) o += ",";
      append_json_string(o, spec->steps[i].describe());
    }
  }
  o += "],\"step_elapsed_ms\":" + std::to_string(st.step_started_ms ? now_ms() - st.step_started_ms : 0);
  o += ",\"weight\":" + num(st.weight) + ",\"shadow_share\":" + num(st.shadow_share);
  o += ",\"gates\":[";
  for (size_t i = 0; i < st.gates.size(); ++i) {
    if (i) o += ",";
    o += st.gates[i].to_json();
  }
  o += "],\"live\":{\"stable\":" + arm_json(st.live.stable) + ",\"candidate\":" + arm_json(st.live.candidate) + "}";
  o += ",\"shadow\":{\"stable\":" + arm_json(st.shadow.stable) + ",\"candidate\":" + arm_json(st.shadow.candidate);
  o += ",\"pairs\":" + num(st.shadow.pairs.agreement.n) + ",\"agreement\":" + num(st.shadow.pairs.agreement.mean());
  o += ",\"latency_delta_ms\":" + num(st.shadow.pairs.latency_delta.mean());
  o += ",\"cost_delta\":" + num(st.shadow.pairs.cost_delta.mean());
  o += ",\"refusal_delta\":" + num(st.shadow.pairs.refusal_delta.mean());
  o += ",\"disagreements\":" + disagreements_json(st.shadow.pairs.kept);
  o += "},\"events\":[";
  for (size_t i = 0; i < events.size(); ++i) {
    if (i) o += ",";
    o += "{\"seq\":" + std::to_string(events[i].seq) + ",\"at\":" + std::to_string(events[i].at) + ",\"kind\":";
    append_json_string(o, events[i].kind);
    o += ",\"detail\":" + (events[i].detail.empty() ? std::string("{}") : events[i].detail) + "}";
  }
  o += "],\"text\":";
  append_json_string(o, status_text_of(r, events));
  o += "}";
  return o;
}

std::string status_text_of(const store::RolloutRecord& r, const std::vector<store::RolloutEvent>& events) {
  std::string err;
  auto spec = parse_spec(r.spec, err);
  State st;
  bool fresh = !stored_state(r, st);
  std::string t = "rollout " + r.id + " on route " + r.route + " (" + (spec ? spec->strategy : "?") + ")\n";
  t += "  stable " + r.stable_release + " -> candidate " + r.candidate_release + "\n";
  t += "  status: " + std::string(fresh ? "starting (waiting for a gateway to pick it up)" : status_name(st.status));
  if (!st.reason.empty()) t += ": " + st.reason;
  t += "\n";
  if (spec && !fresh) {
    t += "  step " + std::to_string(std::min(st.step + 1, spec->steps.size())) + "/" + std::to_string(spec->steps.size());
    if (st.step < spec->steps.size()) t += " (" + spec->steps[st.step].describe() + ")";
    t += ", " + num(static_cast<double>(now_ms() - st.step_started_ms) / 1000.0) + " s in step\n";
  }
  t += "  weights: candidate " + num(st.weight) + "% live, " + num(st.shadow_share * 100) + "% mirrored\n";
  if (!st.gates.empty()) {
    t += "  gates:\n";
    for (const auto& g : st.gates) {
      t += "    [" + g.verdict + "] " + g.check + ": candidate " + num(g.candidate_value);
      if (g.n_stable > 0) t += ", stable " + num(g.stable_value);
      if (g.verdict != "n/a")
        t += "; tested " + (g.quantile_ms >= 0 ? "share above " + num(g.quantile_ms) + " ms: " : std::string()) + num(g.estimate) + " in [" + num(g.lo) + ", " + num(g.hi) + "] vs " + num(g.threshold) +
             " (" + num(g.confidence * 100) + "% always-valid), n=" + num(g.n_candidate) + "/" + num(g.n_stable);
      t += "\n";
    }
  }
  if (st.shadow.pairs.agreement.n > 0 || st.shadow.candidate.error.n > 0) {
    t += "  shadow: " + num(st.shadow.pairs.agreement.n) + " pairs, agreement " +
         num(st.shadow.pairs.agreement.mean() * 100) + "%, latency delta " + num(st.shadow.pairs.latency_delta.mean()) +
         " ms, refusal delta " + num(st.shadow.pairs.refusal_delta.mean() * 100) + " points\n";
    t += "    stable:    " + arm_summary(st.shadow.stable) + "\n    candidate: " + arm_summary(st.shadow.candidate) + "\n";
  }
  if (st.live.stable.error.n > 0 || st.live.candidate.error.n > 0)
    t += "  live:\n    stable:    " + arm_summary(st.live.stable) + "\n    candidate: " + arm_summary(st.live.candidate) + "\n";
  if (!events.empty()) {
    t += "  timeline:\n";
    int64_t t0 = events.front().at;
    for (const auto& e : events) {
      std::string msg;
      auto p = e.detail.find("\"message\":\"");
      if (p != std::string::npos) {
        auto q = e.detail.find("\"", p + 11);
        while (q != std::string::npos && e.detail[q - 1] == '\\') q = e.detail.find("\"", q + 1);
        msg = e.detail.substr(p + 11, q == std::string::npos ? std::string::npos : q - p - 11);
      }
      t += "    +" + num(static_cast<double>(e.at - t0) / 1000.0) + "s " + e.kind + ": " + msg + "\n";
    }
  }
  return t;
}

control::Result status_text(store::Store& s, const std::string& route) {
  auto r = s.active_rollout(route);
  if (!r) {
    auto all = s.list_rollouts(route, false);
    if (all.empty()) return {"route '" + route + "' has no rollouts", ""};
    r = all.back();
  }
  return {"", status_text_of(*r, s.rollout_events(r->id, 0))};
}

}  // namespace sluice::rollout
