// rollout/ops.hpp: rollout operations on the store, shared by the CLI (which writes the
// store directly) and the admin API. A running gateway's controller picks up new rollouts
// and queued commands from the store (within its poll interval), or at once when the admin
// API calls it.
#pragma once
#include <string>

#include "control/releases.hpp"
#include "rollout/machine.hpp"
#include "rollout/spec.hpp"
#include "store/store.hpp"

namespace sluice::rollout {

struct StartRequest {
  std::string route, release;  // the candidate
  std::string spec_text;       // YAML; empty = the default spec of `strategy`
  std::string strategy = "canary";
  std::string actor, reason;
  bool override_eval = false;  // start without a passing eval run (needs a reason; audited)
};

// Checks the eval gate and creates the rollout; `text` is the rollout id.
control::Result start(store::Store& s, const StartRequest& r);
// promote | pause | resume | abort | approve on the route's active rollout. A promote while
// the rollout awaits approval is refused (and audited as denied): sign-off cannot be skipped.
control::Result command(store::Store& s, const std::string& route, const std::string& cmd, const std::string& actor,
                        const std::string& reason);
// Refuses a promote of `r` (awaiting approval): audits the attempt, returns the error.
control::Result refuse_promote(store::Store& s, const store::RolloutRecord& r, const std::string& actor,
                               const std::string& reason);
// Every rollout of every route (id, route, releases, status), for the admin API.
std::string list_json(store::Store& s);
// Human-readable status from the stored state (step, weights, gates, evidence, events).
control::Result status_text(store::Store& s, const std::string& route);
// The same as JSON (admin API), from a record.
std::string status_json(const store::RolloutRecord& r, const std::vector<store::RolloutEvent>& events);
std::string status_text_of(const store::RolloutRecord& r, const std::vector<store::RolloutEvent>& events);

}  // namespace sluice::rollout
