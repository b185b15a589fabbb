// alarm/engine.hpp: evaluates alarm rules over the Sampler, once per control-thread tick.
//
// States: ok -> pending (the condition holds, not yet for `for`) -> firing -> ok (resolved once
// the value stayed past `clear` for `clear_for`). A rule's actions run once per firing: the
// engine reports the firing, the caller runs the actions and notes their outcomes. Hysteresis
// (clear below the threshold, and the two durations) keeps a value wandering around the
// threshold from flapping between states, so actions are not repeated. No clock inside: time
// is passed in, so tests drive it.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "alarm/rules.hpp"
#include "alarm/series.hpp"

namespace sluice::alarm {

enum class State { kOk = 0, kPending = 1, kFiring = 2 };
const char* state_name(State s);

struct Status {
  State state = State::kOk;
  int64_t since_ms = 0;        // in this state since
  int64_t clear_since_ms = 0;  // firing and cleared since (0: not cleared)
  double value = 0;            // the last value (NaN: no data)
  int64_t last_fired_ms = 0;
  uint64_t fired_count = 0;
  std::string last_action;  // JSON {"kind","target","outcome","at_ms"} of the last action run
};

struct Transition {
  size_t rule = 0;  // index into rules()
  enum Kind { kFire, kResolve } kind = kFire;
  double value = 0;
};

// What the engine cannot read from the sampler.
struct Inputs {
  // A tenant's tokens-per-minute limit (0: none).
  std::function<double(const std::string& tenant)> tenant_tpm;
  // Spend of the scope over [from_ms, to_ms) from a longer memory than the sampler's (the
  // store's daily spend); nullopt: use the sampler's hourly buckets.
  std::function<std::optional<double>(const Scope&, int64_t from_ms, int64_t to_ms)> spend;
};

class Engine {
 public:
  // Rules replaced (a config reload): a rule keeps its state when its name and definition stay.
  void set_rules(std::vector<Rule> rules);
  const std::vector<Rule>& rules() const { return rules_; }
  const std::vector<Status>& statuses() const { return status_; }

  // The rule's value now (NaN: no data, e.g. fewer than min_requests).
  static double value(const Rule& r, const Sampler& s, int64_t now_ms, const Inputs& in);
  // Moves every rule's state; returns the firings and resolutions of this tick.
  std::vector<Transition> evaluate(const Sampler& s, int64_t now_ms, const Inputs& in = {});
  // Moves one rule with a value already computed (what evaluate does per rule).
  std::optional<Transition> step(size_t i, double value, int64_t now_ms);
  void note_action(size_t i, const Action& a, const std::string& outcome, int64_t now_ms);

  // GET /admin/v1/alarms
  std::string json() const;
  // sluice_alarm_state{alarm} and sluice_alarm_actions_total{alarm,action,outcome}
  std::string prometheus() const;

 private:
  std::vector<Rule> rules_;
  std::vector<Status> status_;
  std::map<std::string, uint64_t> actions_total_;  // alarm \x1f action \x1f outcome
};

}  // namespace sluice::alarm
