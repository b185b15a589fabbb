// store/history.hpp: what a route's stable-release history means, shared by every backend.
// A rollback goes to the last known good release: releases that a rollback moved away from
// are marked rolled back and skipped (until an operator promotes them again), so repeated
// rollbacks walk back through history instead of bouncing between the last two releases.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "store/store.hpp"

namespace sluice::store {

struct RollbackPlan {
  std::string target;  // "" when there is no known good release to go back to
  // Releases newer than the target that were passed over, each with why.
  std::vector<std::pair<std::string, std::string>> skipped;
  // One line for the audit entry: "skipped rel_b (rolled back by alice at seq 4: bad answers)".
  std::string note() const;
};

// `history` in commit order (oldest first); `current` is the route's stable release.
RollbackPlan plan_rollback(const std::vector<RouteChange>& history, const std::string& current);

// Releases of the route currently marked rolled back (rolled back and not promoted since).
std::vector<std::string> rolled_back_releases(const std::vector<RouteChange>& history);

}  // namespace sluice::store
