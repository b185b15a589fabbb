// config/rollout_live.hpp: the part of a running rollout the data plane reads. The rollout
// controller owns it and changes the weights with one atomic store: every worker sees the
// change on its next request, without a new snapshot (that is how a rollback reaches all
// workers in microseconds). Snapshots of the same rollout share one object.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>

namespace sluice::config {

struct RolloutLive {
  std::string id;              // rollout id (ro_...)
  uint64_t salt = 0;           // per-rollout hash salt: each rollout picks its own users
  std::string sticky_header;   // session header used when the body has no "user"
  bool mirror_tools = false;   // mirror requests that carry tools (not idempotent-safe by default)
  int64_t shadow_max_inflight = 32;  // per worker; above it mirrored requests are dropped
  std::atomic<uint32_t> weight_bp{0};  // live share sent to the candidate, 0..10000
  std::atomic<uint32_t> shadow_bp{0};  // share of stable requests mirrored to the candidate
  std::atomic<uint64_t> shadow_sent{0}, shadow_dropped{0};
  std::atomic<int64_t> last_candidate_start_ns{0};  // steady clock, for rollback timing
};

}  // namespace sluice::config
