// upstream/balancer.hpp: the attempt plan for one request: which upstreams of its pool to
// try, in which order. Upstreams whose breaker is open or that asked to be left alone
// (Retry-After) go last or not at all; the policy orders the rest.
//
//   ordered         the pool's order: a primary and its fallbacks (the default)
//   round_robin     rotate through the pool
//   least_request   fewest requests in flight (all workers)
//   least_tokens    fewest tokens in flight (estimated prompt + max_tokens), power of two
//                   random choices for the first pick
//   prefix          rendezvous hash of the rendered prompt's prefix, so requests sharing a
//                   system prompt or a conversation's earlier turns land where that prefix
//                   is cached; leaves the affine upstream when its load exceeds
//                   bounded_load x the pool average (consistent hashing with bounded loads)
//   session         the same with the session key (a header, else the body's `user`)
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "admission/gate.hpp"
#include "upstream/health.hpp"

namespace sluice::upstream {

enum class Policy { kOrdered, kRoundRobin, kLeastRequest, kLeastTokens, kPrefix, kSession };
std::optional<Policy> policy_from_name(std::string_view s);
const char* policy_name(Policy p);

struct BalanceSettings {
  Policy policy = Policy::kOrdered;
  double bounded_load = 1.25;       // prefix/session: leave the affine target above c x average...
  int affinity_slack = 2;           // ...or more than this many requests above the least loaded
  double max_ejected_share = 0.5;   // never leave out more than this share of the pool
  std::string affinity_header;      // session: the header naming the session
  int64_t prefix_bytes = 1024;      // prefix: how much of the rendered messages is hashed
  // Admission control of the pool (capacity, adaptive limit, tiers, queue), when configured:
  // kept in the Registry beside the snapshot, shared by every worker.
  std::shared_ptr<admission::Gate> gate;
  // Where requests go when the pool is full, before anything is shed (pools[].overflow): a
  // pool or an upstream, resolved by the snapshot.
  std::string overflow;
  std::string overflow_model;  // JSON string of the model id to send there ("" = unchanged)
  std::vector<size_t> overflow_targets;
  const BalanceSettings* overflow_balance = nullptr;
};

struct Target {
  size_t index = 0;          // the caller's index (into the snapshot's upstreams)
  Health* health = nullptr;  // may be null (no state: always available, no load)
  double weight = 1;         // set by make_plan: < 1 while the upstream ramps up (slow start)
  int64_t load = 0;          // set by make_plan: requests in flight (Health::load)
};

struct PlanRequest {
  uint64_t affinity = 0;  // prefix or session hash; 0 = none
  uint64_t seq = 0;       // a per-worker counter (round robin)
  uint64_t random = 0;    // a random draw (power of two choices)
  int64_t now_ms = 0;
};

struct Plan {
  struct Step {
    size_t index = 0;
    Health* health = nullptr;
    bool forced = false;  // unavailable, but the pool may not eject more (max_ejected_share)
  };
  std::vector<Step> steps;
  // When every target is unavailable: when the first of them accepts again (wall ms).
  int64_t earliest_ms = 0;
};

Plan make_plan(const BalanceSettings& s, std::span<const Target> targets, const PlanRequest& r);

// 64-bit hash for affinity keys (FNV-1a then a splitmix finalizer).
uint64_t affinity_hash(std::string_view key);

}  // namespace sluice::upstream
