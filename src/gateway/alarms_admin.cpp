#include "gateway/alarms_admin.hpp"

#include <condition_variable>
#include <deque>
#include <iostream>
#include <mutex>
#include <thread>

#include "admission/limiter.hpp"
#include "control/flags.hpp"
#include "core/strings.hpp"
#include "net/http_client.hpp"
#include "rollout/controller.hpp"

namespace sluice::gateway {

// Webhook deliveries on their own thread (never the data plane, never the control thread):
// up to 5 attempts, 0.5, 1, 2, 4 s apart; each delivery's outcome goes back to the control
// thread, which audits it and counts it.
struct AlarmDesk::Hooks {
  struct Job {
    std::string alarm, url, body;
    alarm::Action action;
    std::string outcome;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Job> queue, done;
  bool stopping = false;
  std::thread thread{[this] { run(); }};

  ~Hooks() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stopping = true;
    }
    cv.notify_all();
    thread.join();
  }
  void push(Job j) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (queue.size() >= 1000) return;  // a receiver down for long: the audit log still has every firing
      queue.push_back(std::move(j));
    }
    cv.notify_one();
  }
  std::deque<Job> take_done() {
    std::lock_guard<std::mutex> lock(mu);
    return std::exchange(done, {});
  }
  void run() {
    std::unique_lock<std::mutex> lock(mu);
    while (true) {
      cv.wait(lock, [this] { return stopping || !queue.empty(); });
      if (stopping) return;
      Job j = std::move(queue.front());
      queue.pop_front();
      lock.unlock();
      std::chrono::milliseconds backoff(500);
      for (int attempt = 1;; ++attempt) {
        net::HttpResult r = net::http_request("POST", j.url, "", j.body, std::chrono::seconds(3));
        if (r.status >= 200 && r.status < 300) {
          j.outcome = "ok";
          break;
        }
        j.outcome = "failed: " + (r.error.empty() ? "status " + std::to_string(r.status) : r.error) + " after " +
                    std::to_string(attempt) + " attempt(s)";
        if (attempt == 5) break;
        std::unique_lock<std::mutex> wait(mu);
        if (cv.wait_for(wait, backoff, [this] { return stopping; })) return;
        backoff *= 2;
      }
      lock.lock();
      done.push_back(std::move(j));
    }
  }
};

AlarmDesk::AlarmDesk(Env env) : env_(std::move(env)), hooks_(std::make_unique<Hooks>()) {}
AlarmDesk::~AlarmDesk() = default;

namespace {
std::string detail_json(const alarm::Rule& r, double value) {
  std::string o = "{\"metric\":";
  append_json_string(o, r.metric_name);
  o += ",\"value\":" + num_text(value, 6) + ",\"op\":";
  append_json_string(o, r.op);
  o += ",\"threshold\":" + num_text(r.threshold, 9) + ",\"window_s\":" + std::to_string(r.window_ms / 1000) + "}";
  return o;
}
}  // namespace

void AlarmDesk::audit(const alarm::Rule& r, const std::string& action, const std::string& detail, const std::string& outcome) {
  if (!env_.store) return;
  store::AuditEntry e;
  e.actor = "alarm:" + r.name;
  e.action = action;
  e.target = r.scope.route;
  e.after = detail;
  e.reason = r.metric_name + " " + r.op + " " + num_text(r.threshold, 9) + " over " + std::to_string(r.window_ms / 1000) + "s";
  e.outcome = outcome;
  try {
    env_.store->append_audit(e);
  } catch (const std::exception& ex) {
    std::cerr << "sluice: alarm " << r.name << ": audit: " << ex.what() << "\n";
  }
}

// Runs one action on the control thread; returns "ok" or "failed: why".
std::string AlarmDesk::run_action(const alarm::Rule& r, const alarm::Action& a) {
  const std::string actor = "alarm:" + r.name;
  const std::string reason = "alarm " + r.name + ": " + r.metric_name + " " + r.op + " " + num_text(r.threshold, 9);
  if (!env_.store) return "failed: no store";
  try {
    if (a.kind == "rollback") {
      // As POST /admin/v1/routes/{r}/rollback: a rollout in progress is aborted (everything to
      // stable), otherwise the route goes back to its last known good release.
      if (env_.rollouts && env_.store->active_rollout(a.target)) {
        control::Result res = env_.rollouts->command(a.target, "abort", actor, reason);
        return res.ok() ? "ok" : "failed: " + res.error;
      }
      store::Outcome out = env_.store->rollback(a.target, actor, reason);
      if (!out.ok()) return "failed: " + out.error;
      std::string perr = env_.republish ? env_.republish() : "";
      return perr.empty() ? "ok" : "failed: " + perr;
    }
    if (a.kind == "kill") {
      control::Result res = control::kill_route(*env_.store, a.target, a.mode, actor, reason);
      if (!res.ok()) return "failed: " + res.error;
      std::string perr = env_.republish ? env_.republish() : "";
      return perr.empty() ? "ok" : "failed: " + perr;
    }
    if (a.kind == "pause_rollout") {
      if (!env_.rollouts) return "failed: no rollout controller";
      control::Result res = env_.rollouts->command(a.target, "pause", actor, reason);
      return res.ok() ? "ok" : "failed: " + res.error;
    }
  } catch (const std::exception& e) {
    return std::string("failed: ") + e.what();
  }
  return "failed: unknown action " + a.kind;
}

void AlarmDesk::fire(size_t i, const alarm::Transition& t, int64_t now_ms) {
  const alarm::Rule& r = engine_.rules()[i];
  const bool firing = t.kind == alarm::Transition::kFire;
  const std::string detail = detail_json(r, t.value);
  audit(r, firing ? "alarm.fire" : "alarm.resolve", detail, "ok");
  std::cerr << "sluice: alarm " << r.name << (firing ? " fired: " : " resolved: ") << detail << "\n";
  for (const alarm::Action& a : r.actions) {
    if (a.kind == "webhook") {
      // Webhooks hear both the firing and the resolution (as a pager expects).
      std::string body = "{\"alarm\":";
      append_json_string(body, r.name);
      body += ",\"state\":\"" + std::string(firing ? "firing" : "resolved") + "\",\"scope\":" + r.scope_json() +
              ",\"detail\":" + detail + ",\"at_ms\":" + std::to_string(now_ms) +
              ",\"fired_count\":" + std::to_string(engine_.statuses()[i].fired_count) + "}";
      hooks_->push({r.name, a.target, std::move(body), a, ""});
      continue;
    }
    if (!firing) continue;  // a rollback or a kill switch is not undone by a resolution
    const std::string outcome = run_action(r, a);
    engine_.note_action(i, a, outcome, now_ms);
    audit(r, "alarm.action." + a.kind, a.json(), outcome == "ok" ? "ok" : outcome);
    std::cerr << "sluice: alarm " << r.name << ": " << a.kind << " " << a.target << ": " << outcome << "\n";
  }
}

std::optional<double> AlarmDesk::stored_spend(const alarm::Scope& s, int64_t from_ms, int64_t to_ms) {
  // The in-memory hourly buckets answer once they reach back far enough; before that (a
  // restart), the store's daily spend, each day weighted by its overlap with the range.
  if (from_ms >= started_ms_ || !env_.store || !s.upstream.empty()) return std::nullopt;
  const int64_t day = 86400000;
  if (spend_rows_.empty() || to_ms - spend_read_ms_ > 60000) {
    try {
      spend_rows_ = env_.store->list_route_spend(admission::day_name(admission::day_of(to_ms) - 15),
                                                 admission::day_name(admission::day_of(to_ms)));
    } catch (const std::exception&) {
      return std::nullopt;
    }
    spend_read_ms_ = to_ms;
  }
  double usd = 0;
  for (int64_t d = admission::day_of(from_ms); d <= admission::day_of(to_ms - 1); ++d) {
    const double overlap = static_cast<double>(std::min(to_ms, (d + 1) * day) - std::max(from_ms, d * day)) / double(day);
    const std::string name = admission::day_name(d);
    for (const auto& row : spend_rows_)
      if (row.day == name && (s.route.empty() || s.route == row.route) && (s.release.empty() || s.release == row.release) &&
          (s.tenant.empty() || s.tenant == row.tenant))
        usd += static_cast<double>(row.micro_usd) / 1e6 * overlap;
  }
  return usd;
}

void AlarmDesk::tick(int64_t now_ms) {
  if (started_ms_ == 0) started_ms_ = now_ms;
  auto snap = env_.shared.snapshots.current();
  const auto& rules = snap->config().alarms;
  if (rules.get() != rules_seen_) {
    engine_.set_rules(rules ? *rules : std::vector<alarm::Rule>{});
    rules_seen_ = rules.get();
  }
  sampler_.observe(now_ms, env_.shared.metrics->collect());
  // Webhook outcomes delivered since the last tick.
  for (auto& j : hooks_->take_done()) {
    for (size_t i = 0; i < engine_.rules().size(); ++i) {
      if (engine_.rules()[i].name != j.alarm) continue;
      engine_.note_action(i, j.action, j.outcome, now_ms);
      audit(engine_.rules()[i], "alarm.action.webhook", j.action.json(), j.outcome);
    }
  }
  if (engine_.rules().empty()) return;
  alarm::Inputs in;
  in.tenant_tpm = [&snap](const std::string& t) {
    const config::Tenant* tn = snap->tenant_limits(t);
    return tn ? static_cast<double>(tn->limits.tpm) : 0.0;
  };
  in.spend = [this](const alarm::Scope& s, int64_t from, int64_t to) { return stored_spend(s, from, to); };
  for (const alarm::Transition& t : engine_.evaluate(sampler_, now_ms, in)) fire(t.rule, t, now_ms);
  std::string prom = engine_.prometheus();
  std::lock_guard<std::mutex> lock(env_.shared.rollout_metrics_mu);
  env_.shared.alarm_metrics = std::move(prom);
}

std::optional<AdminAnswer> AlarmDesk::endpoint(const AdminCall& call, std::string_view query, int64_t now_ms) const {
  if (call.method != "GET") return std::nullopt;
  if (call.path == "/admin/v1/alarms") return AdminAnswer{200, engine_.json()};
  if (call.path != "/admin/v1/series") return std::nullopt;
  std::string route;
  int64_t window_s = 600;
  for (auto kv : split(query, '&')) {
    const size_t eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    if (kv.substr(0, eq) == "route") route = percent_decode(kv.substr(eq + 1)).value_or("");
    if (kv.substr(0, eq) == "window_s") window_s = std::clamp<int64_t>(std::atoll(std::string(kv.substr(eq + 1)).c_str()), 10, 3600);
  }
  if (route.empty())
    return AdminAnswer{400, ApiError{400, "invalid_request_error", "missing_route", "'route' is required"}.to_json()};
  return AdminAnswer{200, sampler_.route_series_json(route, now_ms, window_s)};
}

}  // namespace sluice::gateway
