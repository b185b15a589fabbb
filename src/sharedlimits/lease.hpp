// sharedlimits/lease.hpp: a tenant's rpm and tpm buckets held in Redis and shared by every
// replica, admitted from a local cache of headroom so the data plane never waits on Redis.
//
// Each replica leases small slices of a tenant's bucket ahead of need (the service's sync
// thread, one pipelined round trip for all tenants), admits from its slice under a mutex,
// puts refunds back into its slice and gives back what it does not need. A request that
// finds its slice short is refused with a short Retry-After and the sync thread is woken to
// lease for it; while the store shows plenty of headroom a replica may also admit on credit
// (its slice goes below zero, the next lease covers it), bounded by its share of what the
// store last showed above a margin, so a quiet tenant's first request does not wait.
// Pure (no I/O): the service (service.hpp) does the Redis half; tests drive plan/apply.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "admission/limiter.hpp"

namespace sluice::sharedlimits {

// What the limiters do: admit from leases (Redis reachable), or with Redis unreachable,
// local buckets of limit / replicas (fail_open) or refuse (fail_closed).
enum class Mode : int { kShared = 0, kFailOpen = 1, kFailClosed = 2 };

struct Tuning {
  double slice_fraction = 0.005;  // the most a replica leases ahead: this fraction of a limit
  double credit_margin = 0.05;    // no credit once the store's level is below this fraction of a limit
  double lookahead_ms = 50;       // a slice covers this much of the replica's recent rate
  double rate_tau_ms = 500;       // the rate and the typical request size are smoothed over this long
  int64_t retry_ms = 20;          // Retry-After when the store has the units and the next lease brings them
  int64_t refresh_ms = 200;       // an idle tenant's view of the store is refreshed this often
  int64_t hungry_ms = 1000;       // a refused request's need is remembered this long
  int64_t starved_max_ms = 250;   // the longest a replica waits to ask again after a short grant
};

// One bucket (requests or tokens) as one replica sees it. Units are whole requests or tokens.
struct Lane {
  double slice = 0;      // leased from the store and not yet used (below 0: owed, admitted on credit or debt)
  double global = 0;     // the store's level after the last lease (other replicas take from it too)
  double used = 0;       // units admitted since the last plan (the replica's rate)
  double rate = 0;       // units per ms, smoothed
  double seen = 0;       // the largest single need since the last plan (admitted or refused)
  double peak = 0;       // the largest single need recently (decays): a slice holds at least one
  double hungry = 0;     // the largest need refused recently: the next lease brings it
  int64_t hungry_at = 0;
  double returning = 0;  // given back by the lease in flight (restored if it fails)
};

struct TenantState {
  explicit TenantState(std::string n) : name(std::move(n)) {}
  const std::string name;
  std::mutex mu;
  admission::Limits limits;  // the last seen (a reload changes them)
  bool has_limits = false;
  bool known = false;  // the store answered for this tenant at least once
  Lane req, tok;
  int64_t in_flight = 0;
  int64_t last_plan_ms = 0, last_sync_ms = 0;
  int64_t next_ask_ms = 0;  // the store was short: no lease asked before then (give-backs still go)
  admission::LocalLimiter fallback;  // fail_open: this replica's share, in process
};

// What one tenant asks of the store in a round (want > 0: lease up to; < 0: give back).
struct Plan {
  bool send = false;
  int64_t rpm = 0, tpm = 0;
  int64_t want_r = 0, want_t = 0;
};
// The store's answer: units granted and its level after.
struct Reply {
  int64_t got_r = 0, level_r = 0, got_t = 0, level_t = 0;
};

// State shared by the limiters (data plane) and the service's sync thread.
class Hub {
 public:
  explicit Hub(Tuning t = {}) : tuning(t) {}
  const Tuning tuning;
  std::atomic<int> mode{static_cast<int>(Mode::kShared)};
  std::atomic<int64_t> replicas{1};  // live replicas the store last counted (>= 1)
  std::atomic<uint64_t> fallback_open{0}, fallback_closed{0};  // admissions decided without the store

  Mode current() const { return static_cast<Mode>(mode.load(std::memory_order_relaxed)); }
  std::shared_ptr<TenantState> add(const std::string& tenant);
  std::shared_ptr<TenantState> find(const std::string& tenant);
  std::vector<std::shared_ptr<TenantState>> all();
  std::unique_ptr<admission::Limiter> make_limiter(const std::string& tenant);

  // The data plane needs a lease now (a refusal): wakes the sync thread.
  void wake();
  // The sync thread waits up to `ms` or until woken; true when woken.
  bool wait(int64_t ms);
  void stop();
  bool stopping() const { return stop_.load(); }

 private:
  std::mutex mu_;
  std::vector<std::shared_ptr<TenantState>> tenants_;
  std::mutex wake_mu_;
  std::condition_variable cv_;
  std::atomic<bool> woken_{false}, stop_{false};
};

// The sync thread's half, under the tenant's lock: what to lease or give back this round
// (a give-back leaves the slice at once), and the answer applied (nullptr: the round failed,
// give-backs return to the slice; a short grant delays the next ask until the store refilled).
Plan plan(TenantState& st, const Tuning& t, int64_t now_ms);
void apply(TenantState& st, const Plan& p, const Reply* r, int64_t now_ms, const Tuning& t);

// A replica's share of a limit while the store is unreachable (fail_open): limit / replicas,
// rounded down, at least 1.
int64_t share(int64_t limit, int64_t replicas);

}  // namespace sluice::sharedlimits
