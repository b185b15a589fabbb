// gateway/incident_admin.hpp: the running gateway's side of the incident timeline and of
// rollback readiness (incident/timeline.hpp):
//
//   GET /admin/v1/timeline?route=R&since=2h|<unix ms>&until=...   (viewer)
//       {"events":[{"t_ms","kind","route","subject","summary","detail":{...}}]}
//   GET /admin/v1/routes/{r}/readiness                             (viewer)
//       {"route","target_release","upstream","healthy","checked_ms","latency_ms","detail"}
//
// Readiness: the release a rollback of the route goes to now (the stable release while a
// rollout runs, else the last known good release, store/history.hpp) and whether its upstream
// answers a real one-token completion of the release's model right now, probed through a
// worker's forwarder (Worker::deep_check, the active health check's own path; recorded in
// no breaker: a probe changes nothing). The control thread refreshes every route's result
// periodically into the `sluice_rollback_ready{route}` gauge.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway/tenants_view.hpp"
#include "gateway/worker.hpp"
#include "store/store.hpp"

namespace sluice::gateway {

struct Readiness {
  std::string route, target_release, upstream, model;
  bool healthy = false;
  int64_t checked_ms = 0;
  double latency_ms = -1;  // the probe's, -1 when none was sent
  std::string detail;      // why not ready, or what was probed
  std::string to_json() const;
};

class IncidentDesk {
 public:
  IncidentDesk(Shared& shared, store::Store& store, std::vector<std::unique_ptr<Worker>>& workers,
               asio::io_context& control)
      : shared_(shared), store_(store), workers_(workers), control_(control) {}

  // Probes the route's rollback target now (control thread).
  awaitable<Readiness> readiness(std::string route);
  // The admin paths above; nullopt when `path` is not one of them.
  awaitable<std::optional<AdminAnswer>> endpoint(std::string path, std::string query);
  // Every `interval_ms`, every route with a rollback target is probed and the gauges replaced.
  void start(int64_t interval_ms);
  // The ring's events into the store (the control thread's once-a-second tick).
  void flush_events();
  // The upstream names route `route` uses: its releases' upstreams and its config route's and
  // fallback chain's, pools expanded to their members (the running snapshot).
  std::vector<std::string> route_upstreams(const std::string& route);

 private:
  awaitable<void> refresh_loop(int64_t interval_ms);

  Shared& shared_;
  store::Store& store_;
  std::vector<std::unique_ptr<Worker>>& workers_;
  asio::io_context& control_;
  size_t next_worker_ = 0;
};

}  // namespace sluice::gateway
