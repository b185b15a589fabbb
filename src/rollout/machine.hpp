// rollout/machine.hpp: the rollout state machine, as pure functions of (spec, state, time,
// evidence, commands). The controller feeds it and carries out what it decides; tests and
// the canary simulation drive it directly.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rollout/evidence.hpp"
#include "rollout/gates.hpp"
#include "rollout/spec.hpp"

namespace sluice::rollout {

enum class Status { kRunning, kPaused, kAwaitingApproval, kWarming, kCompleted, kAborted };
const char* status_name(Status s);

struct State {
  size_t step = 0;
  int64_t started_ms = 0, step_started_ms = 0;
  Status status = Status::kRunning;
  std::string reason;         // why paused / aborted / completed
  double weight = 0;          // percent of live traffic on the candidate
  double shadow_share = 0;    // fraction of stable traffic mirrored
  bool promoted = false;      // completed with the candidate as the new stable release
  Evidence shadow, live;      // evidence of the shadow phase and of live traffic
  std::vector<GateStatus> gates;  // the latest evaluation
  std::string to_json() const;
  bool from_json(std::string_view json);
  bool terminal() const { return status == Status::kCompleted || status == Status::kAborted; }
};

struct Event {
  std::string kind;     // step | decision | rollback | paused | completed | command | refused | warm
  std::string message;  // one line for humans
  std::string detail;   // JSON with the numbers behind it
};

struct Decision {
  std::vector<Event> events;
  bool weights_changed = false;
  bool finished = false;  // became completed or aborted
  bool rolled_back = false;
  bool needs_warm = false;  // entered a warm step: the controller starts the check
};

// Starts the rollout at its first step.
Decision begin(const Spec& spec, State& st, int64_t now_ms);
// Re-evaluates gates and moves on when a window has passed and the gates allow it.
Decision advance(const Spec& spec, State& st, int64_t now_ms);
// Why a promote is refused while a rollout awaits approval (shared with the operations
// that queue commands, which refuse it before it is queued).
inline constexpr const char* kApprovalNeeded =
    "the rollout is waiting for approval; only `sluice rollout approve ROUTE --reason \"...\"` "
    "(operator role) can move it on";

// An operator's command: promote | pause | resume | abort | approve. A promote while
// awaiting approval is refused (an event of kind "refused"), never a way around sign-off.
Decision apply_command(const Spec& spec, State& st, const std::string& command, const std::string& actor,
                       const std::string& reason, int64_t now_ms);
// Result of a blue-green warm-up check ("" = healthy).
Decision warm_result(const Spec& spec, State& st, const std::string& error, int64_t now_ms);

}  // namespace sluice::rollout
