// gateway/alarms_admin.hpp: alarms in the running gateway. Once a second the control thread
// hands the metrics' cumulative totals to the alarm Sampler, evaluates the snapshot's alarm
// rules (alarm/engine.hpp) and runs the actions of each firing: a webhook (POSTed with retries
// from its own thread), a rollback of the route, a kill switch, a paused rollout. Every firing,
// resolution and action is audited (actor "alarm:<name>"), which is what the incident timeline
// reads. Serves GET /admin/v1/alarms and GET /admin/v1/series (docs/alarms.md).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "alarm/engine.hpp"
#include "alarm/series.hpp"
#include "gateway/tenants_view.hpp"
#include "gateway/worker.hpp"

namespace sluice::rollout {
class Controller;
}

namespace sluice::gateway {

class AlarmDesk {
 public:
  struct Env {
    Shared& shared;
    store::Store* store = nullptr;
    rollout::Controller* rollouts = nullptr;
    std::function<std::string()> republish;  // a snapshot after a rollback or a kill switch
  };
  explicit AlarmDesk(Env env);
  ~AlarmDesk();

  // Control thread, once a second.
  void tick(int64_t now_ms);
  // GET /admin/v1/alarms, GET /admin/v1/series?route=R[&window_s=600]; nullopt for other paths.
  std::optional<AdminAnswer> endpoint(const AdminCall& call, std::string_view query, int64_t now_ms) const;

 private:
  struct Hooks;
  void fire(size_t i, const alarm::Transition& t, int64_t now_ms);
  void audit(const alarm::Rule& r, const std::string& action, const std::string& detail, const std::string& outcome);
  std::string run_action(const alarm::Rule& r, const alarm::Action& a);
  std::optional<double> stored_spend(const alarm::Scope& s, int64_t from_ms, int64_t to_ms);

  Env env_;
  alarm::Sampler sampler_;
  alarm::Engine engine_;
  const void* rules_seen_ = nullptr;  // the snapshot's rules the engine holds
  int64_t started_ms_ = 0;
  std::vector<store::RouteSpend> spend_rows_;  // the store's daily spend, read at most once a minute
  int64_t spend_read_ms_ = 0;
  std::unique_ptr<Hooks> hooks_;
};

}  // namespace sluice::gateway
