#include "alarm/engine.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace sluice::alarm {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int64_t kWeekMs = 7 * 86400000LL;

std::string signature(const Rule& r) {
  return r.metric_name + "|" + r.scope_json() + "|" + std::to_string(r.window_ms) + "|" + r.op + "|" +
         num_text(r.threshold, 17) + "|" + num_text(r.clear, 17) + "|" + std::to_string(r.for_ms) + "|" +
         std::to_string(r.clear_for_ms);
}

double ratio(uint64_t num, uint64_t den, uint64_t min_den) {
  if (den == 0 || den < min_den) return kNaN;
  return static_cast<double>(num) / static_cast<double>(den);
}

double spend(const Scope& s, const Sampler& smp, int64_t from, int64_t to, const Inputs& in) {
  if (in.spend)
    if (auto v = in.spend(s, from, to)) return *v;
  return smp.hourly(s, from, to).cost_usd;
}
}  // namespace

const char* state_name(State s) {
  switch (s) {
    case State::kOk: return "ok";
    case State::kPending: return "pending";
    case State::kFiring: return "firing";
  }
  return "ok";
}

void Engine::set_rules(std::vector<Rule> rules) {
  std::map<std::string, Status> kept;
  for (size_t i = 0; i < rules_.size(); ++i) kept[rules_[i].name + "\x1f" + signature(rules_[i])] = status_[i];
  rules_ = std::move(rules);
  status_.assign(rules_.size(), Status{});
  for (size_t i = 0; i < rules_.size(); ++i) {
    auto it = kept.find(rules_[i].name + "\x1f" + signature(rules_[i]));
    if (it != kept.end()) status_[i] = it->second;
  }
}

double Engine::value(const Rule& r, const Sampler& s, int64_t now_ms, const Inputs& in) {
  const uint64_t min = std::max<uint64_t>(1, r.min_requests);
  switch (r.metric) {
    case Metric::kErrorRate: {
      const metrics::Totals w = s.window(r.scope, now_ms, r.window_ms);
      return ratio(w.errors, w.requests, min);
    }
    case Metric::kRefusalRate: {
      const metrics::Totals w = s.window(r.scope, now_ms, r.window_ms);
      return ratio(w.refusals, w.refusal_checked, min);
    }
    case Metric::kLatencyQ:
    case Metric::kTtftQ: {
      const metrics::Totals w = s.window(r.scope, now_ms, r.window_ms);
      const metrics::Histogram& h = r.metric == Metric::kLatencyQ ? w.latency : w.ttft;
      return h.count < min ? kNaN : quantile_ms(h, r.quantile);
    }
    case Metric::kCostUsd: {
      const metrics::Totals w = s.window(r.scope, now_ms, r.window_ms);
      return w.requests < r.min_requests ? kNaN : w.cost_usd;
    }
    case Metric::kRequests: return static_cast<double>(s.window(r.scope, now_ms, r.window_ms).requests);
    case Metric::kTpmUtilization: {
      double limit = r.tpm_limit;
      if (limit <= 0 && in.tenant_tpm && !r.scope.tenant.empty()) limit = in.tenant_tpm(r.scope.tenant);
      if (limit <= 0) return kNaN;
      const metrics::Totals w = s.window(r.scope, now_ms, r.window_ms);
      if (w.requests < r.min_requests) return kNaN;
      const double minutes = static_cast<double>(r.window_ms) / 60000.0;
      return static_cast<double>(w.tokens_in + w.tokens_out) / minutes / limit;
    }
    case Metric::kCostGrowthWow: {
      const double now = spend(r.scope, s, now_ms - r.window_ms, now_ms, in);
      const double before = spend(r.scope, s, now_ms - r.window_ms - kWeekMs, now_ms - kWeekMs, in);
      return before > 0 ? now / before - 1.0 : kNaN;
    }
    case Metric::kBurnRate: {
      // Both windows must burn faster than the factor: the long one proves it matters, the
      // short one that it is still going on (Google SRE workbook, multiwindow burn rate).
      const metrics::Totals lw = s.window(r.scope, now_ms, r.window_ms);
      const metrics::Totals sw = s.window(r.scope, now_ms, r.short_window_ms);
      const double budget = 1.0 - r.objective;
      const double l = ratio(lw.errors, lw.requests, min);
      if (std::isnan(l)) return kNaN;
      const double sh = sw.requests == 0 ? 0.0 : static_cast<double>(sw.errors) / static_cast<double>(sw.requests);
      return std::min(l, sh) / budget;
    }
  }
  return kNaN;
}

std::optional<Transition> Engine::step(size_t i, double v, int64_t now_ms) {
  const Rule& r = rules_[i];
  Status& st = status_[i];
  st.value = v;
  const bool breach = r.breaches(v);
  switch (st.state) {
    case State::kOk:
      if (!breach) return std::nullopt;
      st.state = State::kPending;
      st.since_ms = now_ms;
      [[fallthrough]];
    case State::kPending:
      if (!breach) {  // no data counts as not breaching: back to ok, nothing fired
        st.state = State::kOk;
        st.since_ms = now_ms;
        return std::nullopt;
      }
      if (now_ms - st.since_ms < r.for_ms) return std::nullopt;
      st.state = State::kFiring;
      st.since_ms = now_ms;
      st.clear_since_ms = 0;
      st.last_fired_ms = now_ms;
      ++st.fired_count;
      return Transition{i, Transition::kFire, v};
    case State::kFiring:
      // No data holds a firing alarm (a route rolled back may see no traffic for a while).
      if (!r.cleared(v)) {
        if (!std::isnan(v)) st.clear_since_ms = 0;
        return std::nullopt;
      }
      if (st.clear_since_ms == 0) st.clear_since_ms = now_ms;
      if (now_ms - st.clear_since_ms < r.clear_for_ms) return std::nullopt;
      st.state = State::kOk;
      st.since_ms = now_ms;
      st.clear_since_ms = 0;
      return Transition{i, Transition::kResolve, v};
  }
  return std::nullopt;
}

std::vector<Transition> Engine::evaluate(const Sampler& s, int64_t now_ms, const Inputs& in) {
  std::vector<Transition> out;
  for (size_t i = 0; i < rules_.size(); ++i)
    if (auto t = step(i, value(rules_[i], s, now_ms, in), now_ms)) out.push_back(*t);
  return out;
}

void Engine::note_action(size_t i, const Action& a, const std::string& outcome, int64_t now_ms) {
  if (i >= rules_.size()) return;
  std::string o = "{\"kind\":";
  append_json_string(o, a.kind);
  o += ",\"target\":";
  append_json_string(o, a.target);
  o += ",\"outcome\":";
  append_json_string(o, outcome);
  o += ",\"at_ms\":" + std::to_string(now_ms) + "}";
  status_[i].last_action = std::move(o);
  // outcome "ok" or "failed: why": the label keeps only the first word
  ++actions_total_[rules_[i].name + "\x1f" + a.kind + "\x1f" + outcome.substr(0, outcome.find(':'))];
}

std::string Engine::json() const {
  std::string o = "{\"alarms\":[";
  for (size_t i = 0; i < rules_.size(); ++i) {
    const Rule& r = rules_[i];
    const Status& st = status_[i];
    if (i) o += ",";
    o += "{\"name\":";
    append_json_string(o, r.name);
    o += ",\"metric\":";
    append_json_string(o, r.metric_name);
    o += ",\"scope\":" + r.scope_json() + ",\"state\":\"" + state_name(st.state) + "\"";
    o += ",\"since_ms\":" + std::to_string(st.since_ms) + ",\"value\":" + num_text(st.value, 6);
    o += ",\"op\":";
    append_json_string(o, r.op);
    o += ",\"threshold\":" + num_text(r.threshold, 9) + ",\"clear\":" + num_text(r.clear, 9);
    o += ",\"window_s\":" + std::to_string(r.window_ms / 1000) + ",\"for_s\":" + std::to_string(r.for_ms / 1000);
    if (r.metric == Metric::kBurnRate)
      o += ",\"objective\":" + num_text(r.objective, 9) + ",\"short_window_s\":" + std::to_string(r.short_window_ms / 1000);
    o += ",\"actions\":[";
    for (size_t a = 0; a < r.actions.size(); ++a) o += (a ? "," : "") + r.actions[a].json();
    o += "],\"last_fired_ms\":" + std::to_string(st.last_fired_ms) + ",\"fired_count\":" + std::to_string(st.fired_count);
    o += ",\"last_action\":" + (st.last_action.empty() ? std::string("null") : st.last_action) + "}";
  }
  return o + "]}";
}

std::string Engine::prometheus() const {
  const auto label = metrics::prometheus_label;
  std::string o =
      "# HELP sluice_alarm_state Alarm state: 0 ok, 1 pending, 2 firing.\n# TYPE sluice_alarm_state gauge\n";
  for (size_t i = 0; i < rules_.size(); ++i)
    o += "sluice_alarm_state{alarm=\"" + label(rules_[i].name) + "\"} " +
         std::to_string(static_cast<int>(status_[i].state)) + "\n";
  o += "# HELP sluice_alarm_actions_total Actions alarms ran, by outcome.\n# TYPE sluice_alarm_actions_total counter\n";
  for (const auto& [k, n] : actions_total_) {
    const size_t a = k.find('\x1f'), b = k.find('\x1f', a + 1);
    o += "sluice_alarm_actions_total{alarm=\"" + label(k.substr(0, a)) + "\",action=\"" +
         label(k.substr(a + 1, b - a - 1)) + "\",outcome=\"" + label(k.substr(b + 1)) + "\"} " + std::to_string(n) + "\n";
  }
  return o;
}

}  // namespace sluice::alarm
