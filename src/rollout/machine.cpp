#include "core/strings.hpp"
#include "rollout/machine.hpp"

#include <simdjson.h>

#include <cmath>
#include <cstdio>

#include "core/error.hpp"

namespace sluice::rollout {

namespace {

std::string num(double v) { return num_text(v, 6); }

std::string gates_json(const std::vector<GateStatus>& gs) {
  std::string o = "[";
  for (size_t i = 0; i < gs.size(); ++i) {
    if (i) o += ",";
    o += gs[i].to_json();
  }
  return o + "]";
}

std::string gate_line(const GateStatus& g) {
  std::string l = g.check + ": " + g.verdict + " (candidate " + num(g.candidate_value);
  if (g.n_stable > 0) l += ", stable " + num(g.stable_value);
  l += "; tested " + (g.quantile_ms >= 0 ? "share above " + num(g.quantile_ms) + " ms " : std::string()) + num(g.estimate) + " in [" + num(g.lo) + ", " + num(g.hi) + "] vs " + num(g.threshold) + " at " +
       num(g.confidence * 100) + "%; n=" + num(g.n_candidate) + "/" + num(g.n_stable) + ")";
  return l;
}

bool is_window(StepKind k) { return k == StepKind::kShadow || k == StepKind::kPause || k == StepKind::kAnalysis; }

Phase phase_of(const Spec& spec, const State& st) {
  return st.step < spec.steps.size() && spec.steps[st.step].kind == StepKind::kShadow ? Phase::kShadow : Phase::kLive;
}

void set_weights(State& st, double weight, double shadow, Decision& d) {
  if (st.weight != weight || st.shadow_share != shadow) d.weights_changed = true;
  st.weight = weight;
  st.shadow_share = shadow;
}

void abort_now(State& st, const std::string& reason, const std::string& detail, Decision& d, bool by_gate) {
  set_weights(st, 0, 0, d);
  st.status = Status::kAborted;
  st.reason = reason;
  d.finished = true;
  d.rolled_back = true;
  d.events.push_back({by_gate ? "rollback" : "aborted", reason, detail});
}

// Enters step `st.step` (and runs through steps that complete at once).
void enter(const Spec& spec, State& st, int64_t now, Decision& d) {
  while (true) {
    st.step_started_ms = now;
    if (st.step >= spec.steps.size()) {
      st.status = Status::kCompleted;
      st.promoted = st.weight >= 100;
      st.reason = st.promoted ? "all steps passed; the candidate is the stable release"
                              : "all steps passed; the candidate was not promoted (it never took 100% of traffic)";
      set_weights(st, st.promoted ? 100 : 0, 0, d);
      d.finished = true;
      d.events.push_back({"completed", st.reason, "{\"promoted\":" + std::string(st.promoted ? "true" : "false") + "}"});
      return;
    }
    const Step& s = spec.steps[st.step];
    d.events.push_back({"step", "step " + std::to_string(st.step + 1) + "/" + std::to_string(spec.steps.size()) + ": " +
                                    s.describe(),
                        "{\"step\":" + std::to_string(st.step) + "}"});
    switch (s.kind) {
      case StepKind::kSetWeight:
        set_weights(st, s.weight, 0, d);
        ++st.step;
        continue;  // no window of its own: the next step (usually a pause) is the window
      case StepKind::kShadow:
        set_weights(st, 0, spec.shadow_share, d);
        st.status = Status::kRunning;
        return;
      case StepKind::kApproval:
        st.status = Status::kAwaitingApproval;
        st.reason = "waiting for approval (sluice rollout approve)";
        d.events.push_back({"paused", st.reason, "{}"});
        return;
      case StepKind::kWarm:
        st.status = Status::kWarming;
        d.needs_warm = true;
        return;
      default:
        set_weights(st, st.weight, 0, d);
        st.status = Status::kRunning;
        return;
    }
  }
}

void next_step(const Spec& spec, State& st, int64_t now, Decision& d) {
  ++st.step;
  st.reason.clear();
  st.status = Status::kRunning;
  enter(spec, st, now, d);
}

}  // namespace

const char* status_name(Status s) {
  switch (s) {
    case Status::kRunning: return "running";
    case Status::kPaused: return "paused";
    case Status::kAwaitingApproval: return "awaiting_approval";
    case Status::kWarming: return "warming";
    case Status::kCompleted: return "completed";
    case Status::kAborted: return "aborted";
  }
  return "?";
}

Decision begin(const Spec& spec, State& st, int64_t now) {
  Decision d;
  st.started_ms = now;
  st.step = 0;
  enter(spec, st, now, d);
  return d;
}

Decision advance(const Spec& spec, State& st, int64_t now) {
  Decision d;
  if (st.terminal() || st.step >= spec.steps.size()) return d;
  const Step& step = spec.steps[st.step];
  Phase phase = phase_of(spec, st);
  // Evidence exists only once traffic reaches the candidate (mirrored or live).
  bool has_traffic = st.weight > 0 || st.shadow_share > 0;
  const Evidence& ev = phase == Phase::kShadow ? st.shadow : st.live;
  int64_t elapsed = now - st.step_started_ms;
  size_t guardrails = 0;
  for (const Gate& g : spec.gates) guardrails += g.guardrail ? 1 : 0;
  double alpha = spec.alpha / static_cast<double>(std::max<size_t>(1, guardrails));
  st.gates.clear();
  for (const Gate& g : spec.gates) {
    GateStatus gs = evaluate(g, ev, phase, alpha, spec.effect, elapsed);
    // Blue-green analysis: the stable arm has no traffic, relative gates cannot be decided.
    if (step.kind == StepKind::kAnalysis && g.relative && gs.verdict != "n/a") gs.verdict = "n/a";
    st.gates.push_back(std::move(gs));
  }
  if (!has_traffic) return d;
  // Guardrails act at any time, paused or not.
  for (const GateStatus& g : st.gates) {
    if (g.guardrail && g.verdict == "fail") {
      abort_now(st, "guardrail failed: " + gate_line(g), "{\"gates\":" + gates_json(st.gates) + "}", d, true);
      return d;
    }
  }
  if (st.status != Status::kRunning || !is_window(step.kind)) return d;
  if (elapsed < step.duration_ms) return d;
  bool all_pass = true;
  for (size_t i = 0; i < st.gates.size(); ++i) {
    const GateStatus& g = st.gates[i];
    const Gate& spec_gate = spec.gates[i];
    if (g.verdict == "pass" || g.verdict == "n/a") continue;
    if (!spec_gate.must_pass && g.verdict != "fail") continue;  // a pure guardrail: only a fail counts
    if (g.verdict == "inconclusive" && spec_gate.on_inconclusive == OnInconclusive::kPromote) continue;
    all_pass = false;
    if (g.verdict == "fail") {  // not a guardrail: it holds promotion for a human
      st.status = Status::kPaused;
      st.reason = "gate failed (not a guardrail): " + gate_line(g);
      d.events.push_back({"paused", st.reason, "{\"gates\":" + gates_json(st.gates) + "}"});
      return d;
    }
    if (g.verdict == "inconclusive") {
      std::string why = "inconclusive after " + num(static_cast<double>(spec_gate.max_duration_ms) / 1000.0) +
                        " s: " + gate_line(g);
      if (spec_gate.on_inconclusive == OnInconclusive::kRollback) {
        abort_now(st, why, "{\"gates\":" + gates_json(st.gates) + "}", d, true);
        return d;
      }
      if (spec_gate.on_inconclusive == OnInconclusive::kPause) {
        st.status = Status::kPaused;
        st.reason = why;
        d.events.push_back({"paused", why, "{\"gates\":" + gates_json(st.gates) + "}"});
        return d;
      }
      // kPromote: this gate does not hold the step
    }
  }
  if (!all_pass) return d;
  std::string lines;
  for (const GateStatus& g : st.gates)
    if (g.verdict != "n/a") lines += (lines.empty() ? "" : "; ") + gate_line(g);
  d.events.push_back({"decision", "promote: " + (lines.empty() ? std::string("window passed, no gates") : lines),
                      "{\"gates\":" + gates_json(st.gates) + "}"});
  next_step(spec, st, now, d);
  return d;
}

Decision apply_command(const Spec& spec, State& st, const std::string& command, const std::string& actor,
                       const std::string& reason, int64_t now) {
  Decision d;
  std::string who = actor + (reason.empty() ? "" : " (" + reason + ")");
  if (st.terminal()) return d;
  if (command == "abort") {
    abort_now(st, "aborted by " + who, "{}", d, false);
  } else if (command == "pause") {
    if (st.status == Status::kRunning) {
      st.status = Status::kPaused;
      st.reason = "paused by " + who;
      d.events.push_back({"command", st.reason, "{}"});
    }
  } else if (command == "resume") {
    if (st.status == Status::kPaused) {
      st.status = Status::kRunning;
      st.reason.clear();
      st.step_started_ms = now;  // a fresh window after a human looked at it
      d.events.push_back({"command", "resumed by " + who, "{}"});
    }
  } else if (command == "approve") {
    if (st.status == Status::kAwaitingApproval) {
      d.events.push_back({"command", "approved by " + who, "{}"});
      next_step(spec, st, now, d);
    }
  } else if (command == "promote") {
    // A sign-off cannot be skipped: while the rollout waits for approval only `approve`
    // (with a reason) moves it on. A promote queued before the approval step began is
    // refused here too, and says so in the timeline.
    if (st.status == Status::kAwaitingApproval) {
      d.events.push_back({"refused", "promote by " + who + " refused: " + kApprovalNeeded, "{}"});
      return d;
    }
    d.events.push_back({"command", "promoted to the next step by " + who, "{}"});
    next_step(spec, st, now, d);
  }
  return d;
}

Decision warm_result(const Spec& spec, State& st, const std::string& error, int64_t now) {
  Decision d;
  if (st.status != Status::kWarming) return d;
  if (!error.empty()) {
    abort_now(st, "warm-up failed: " + error, "{}", d, true);
    return d;
  }
  d.events.push_back({"warm", "candidate is warm (health check and smoke requests passed)", "{}"});
  next_step(spec, st, now, d);
  return d;
}

std::string State::to_json() const {
  std::string o = "{\"step\":" + std::to_string(step) + ",\"started_ms\":" + std::to_string(started_ms) +
                  ",\"step_started_ms\":" + std::to_string(step_started_ms) + ",\"status\":\"" + status_name(status) +
                  "\",\"reason\":";
  append_json_string(o, reason);
  o += ",\"weight\":" + num(weight) + ",\"shadow_share\":" + num(shadow_share);
  o += ",\"promoted\":" + std::string(promoted ? "true" : "false");
  o += ",\"gates\":" + gates_json(gates);
  o += ",\"shadow\":" + shadow.to_json() + ",\"live\":" + live.to_json() + "}";
  return o;
}

bool State::from_json(std::string_view json) {
  simdjson::dom::parser p;
  simdjson::dom::object o;
  if (p.parse(json.data(), json.size(), true).get_object().get(o)) return false;
  uint64_t u = 0;
  int64_t i = 0;
  double dv = 0;
  std::string_view sv;
  bool b = false;
  if (!o["step"].get_uint64().get(u)) step = u;
  if (!o["started_ms"].get_int64().get(i)) started_ms = i;
  if (!o["step_started_ms"].get_int64().get(i)) step_started_ms = i;
  if (!o["status"].get_string().get(sv)) {
    for (Status s : {Status::kRunning, Status::kPaused, Status::kAwaitingApproval, Status::kWarming, Status::kCompleted,
                     Status::kAborted})
      if (sv == status_name(s)) status = s;
  }
  if (!o["reason"].get_string().get(sv)) reason = sv;
  if (!o["weight"].get_double().get(dv)) weight = dv;
  if (!o["shadow_share"].get_double().get(dv)) shadow_share = dv;
  if (!o["promoted"].get_bool().get(b)) promoted = b;
  simdjson::dom::array ga;
  if (!o["gates"].get_array().get(ga)) {
    gates.clear();
    for (auto g : ga) {
      GateStatus gs;
      auto num_of = [&](const char* k, double& out) {
        double x = 0;
        if (!g[k].get_double().get(x)) out = x;
        std::string_view inf;
        if (!g[k].get_string().get(inf)) out = inf == "inf" ? HUGE_VAL : -HUGE_VAL;
      };
      if (!g["check"].get_string().get(sv)) gs.check = sv;
      if (!g["verdict"].get_string().get(sv)) gs.verdict = sv;
      num_of("candidate", gs.candidate_value);
      num_of("stable", gs.stable_value);
      num_of("estimate", gs.estimate);
      num_of("lo", gs.lo);
      num_of("hi", gs.hi);
      num_of("threshold", gs.threshold);
      num_of("quantile_ms", gs.quantile_ms);
      num_of("n_candidate", gs.n_candidate);
      num_of("n_stable", gs.n_stable);
      num_of("confidence", gs.confidence);
      if (!g["guardrail"].get_bool().get(b)) gs.guardrail = b;
      gates.push_back(std::move(gs));
    }
  }
  simdjson::dom::element e;
  if (!o["shadow"].get(e) && !shadow.from_json(simdjson::minify(e))) return false;
  if (!o["live"].get(e) && !live.from_json(simdjson::minify(e))) return false;
  return true;
}

}  // namespace sluice::rollout
