// sharedlimits/service.hpp: the Redis half of the shared limits. One thread per process
// leases and returns every tenant's slices in one pipelined round trip per interval (atomic
// Lua scripts run by EVALSHA; the buckets refill on Redis's clock, so replicas' clocks do not
// matter), beats the replica heartbeat (a sorted set whose members expire: the count each
// replica uses for its share), and reconnects with backoff when Redis is unreachable, while
// the limiters fall back to the configured mode. Every Redis call has a timeout (connect and
// command timeouts in hiredis). The data plane never does Redis I/O.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "sharedlimits/lease.hpp"

namespace sluice::sharedlimits {

class Service {
 public:
  // The tenants of the current snapshot with their limits: their slices are leased before
  // their first request (called on the sync thread, about once a second).
  using TenantsFn = std::function<std::vector<std::pair<std::string, admission::Limits>>()>;
  Service(config::SharedLimits cfg, TenantsFn tenants = {}, Tuning tuning = {});
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Connects once (bounded by the connect timeout) so the mode is known before serving,
  // then starts the sync thread.
  void start();
  // Leaves the replica set and stops the thread.
  void stop();

  std::unique_ptr<admission::Limiter> make_limiter(const std::string& tenant) { return hub_.make_limiter(tenant); }
  Hub& hub() { return hub_; }
  bool reachable() const { return up_.load(); }
  int64_t replicas() const { return hub_.replicas.load(); }
  uint64_t round_trips() const { return round_trips_.load(); }
  const std::string& replica_id() const { return id_; }

  // sluice_shared_limits_* series for /metrics.
  std::string prometheus() const;
  // {"redis":"up","replicas":3,"on_unavailable":"fail_open"} for /readyz.
  std::string status_json() const;

 private:
  struct Conn;
  void run();
  bool connect();
  bool round(int64_t now_ms, bool beat);
  void set_up(bool up);

  const config::SharedLimits cfg_;
  TenantsFn tenants_;
  Hub hub_;
  std::string id_;
  std::unique_ptr<Conn> conn_;  // the sync thread's only (start() before the thread exists)
  std::thread thread_;
  std::atomic<bool> up_{false};
  std::atomic<uint64_t> round_trips_{0}, failures_{0}, reconnects_{0};
};

}  // namespace sluice::sharedlimits
