// gateway/incident_admin.cpp: the incident timeline and rollback readiness in the running
// gateway (see incident_admin.hpp).
#include "gateway/incident_admin.hpp"

#include <algorithm>
#include <chrono>
#include <iostream>

#include "control/releases.hpp"
#include "core/json_object.hpp"
#include "core/strings.hpp"
#include "incident/timeline.hpp"
#include "store/history.hpp"

namespace sluice::gateway {

namespace {

// Readiness probes wait at most this long for the one-token answer.
constexpr int64_t kProbeTimeoutMs = 5000;

std::string param(std::string_view query, std::string_view key) {
  for (auto kv : split(query, '&')) {
    size_t eq = kv.find('=');
    if (eq != std::string_view::npos && kv.substr(0, eq) == key) return std::string(kv.substr(eq + 1));
  }
  return "";
}

std::string error_body(int status, const std::string& code, const std::string& msg) {
  return ApiError{status, "invalid_request_error", code, msg}.to_json();
}

void add_unique(std::vector<std::string>& v, const std::string& s) {
  if (!s.empty() && std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
}

}  // namespace

std::string Readiness::to_json() const {
  return JsonObject()
      .str("route", route)
      .str("target_release", target_release)
      .str("upstream", upstream)
      .str("model", model)
      .raw("healthy", healthy ? "true" : "false")
      .num("checked_ms", checked_ms)
      .raw("latency_ms", latency_ms < 0 ? std::string("null") : num_text(latency_ms, 6))
      .str("detail", detail)
      .done();
}

std::vector<std::string> IncidentDesk::route_upstreams(const std::string& route) {
  std::vector<std::string> names = incident::release_upstreams(store_, route);
  auto snap = shared_.snapshots.current();
  const config::Config& c = snap->config();
  for (const auto& r : c.routes)
    if (r.name == route)
      for (const auto& u : r.upstreams) add_unique(names, u);
  for (const auto& f : c.fallbacks)
    if (f.route == route)
      for (const auto& step : f.chain) add_unique(names, step.upstream);
  // A pool stands for its members: their breakers are what changes.
  std::vector<std::string> out = names;
  for (const auto& n : names) {
    const upstream::BalanceSettings* balance = nullptr;
    for (size_t i : snap->targets_of(n, balance)) add_unique(out, snap->upstreams()[i].cfg->name);
  }
  return out;
}

awaitable<Readiness> IncidentDesk::readiness(std::string route) {
  Readiness r;
  r.route = route;
  r.checked_ms = unix_millis();
  try {
    if (auto ro = store_.active_rollout(route)) {
      r.target_release = ro->stable_release;
      r.detail = "rollout " + ro->id + " running: a rollback sends everything to its stable release";
    } else if (auto rt = store_.get_route(route)) {
      store::RollbackPlan plan = store::plan_rollback(store_.route_history(route), rt->stable_release);
      r.target_release = plan.target;
      if (plan.target.empty()) r.detail = "no known good release to roll back to";
    } else {
      r.detail = "route '" + route + "' has no stable release in the store";
    }
  } catch (const std::exception& e) {
    r.detail = std::string("store: ") + e.what();
  }
  if (r.target_release.empty() || workers_.empty()) {
    if (workers_.empty()) r.detail = "no worker is running";
    co_return r;
  }
  std::string err;
  auto rel = control::compile_release(store_, r.target_release, err);
  if (!rel) {
    r.detail = "release " + r.target_release + " cannot be compiled: " + err;
    co_return r;
  }
  r.upstream = rel->upstream;
  r.model = rel->model_id;
  auto snap = shared_.snapshots.current();
  const upstream::BalanceSettings* balance = nullptr;
  std::vector<size_t> targets = snap->targets_of(rel->upstream, balance);
  if (targets.empty()) {
    r.detail = "upstream '" + rel->upstream + "' is not configured in this gateway";
    co_return r;
  }
  // A pool is ready when one member answers; members are tried in order.
  std::string failures;
  for (size_t i : targets) {
    Worker& w = *workers_[next_worker_++ % workers_.size()];
    std::string model = rel->model_id;
    const auto t0 = std::chrono::steady_clock::now();
    std::string why = co_await asio::co_spawn(w.ioc, w.deep_check(snap, i, std::move(model), kProbeTimeoutMs),
                                              asio::use_awaitable);
    const double ms =
        static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count()) /
        1000.0;
    const std::string& name = snap->upstreams()[i].cfg->name;
    if (targets.size() > 1) r.upstream = rel->upstream + "/" + name;
    r.latency_ms = ms;
    r.checked_ms = unix_millis();
    if (why.empty()) {
      r.healthy = true;
      upstream::HealthView hv = snap->upstreams()[i].health->view(r.checked_ms);
      r.detail = "upstream " + name + " answered a one-token completion of " + rel->model_id + " (breaker " +
                 upstream::state_name(hv.state) + ")";
      co_return r;
    }
    failures += (failures.empty() ? "" : "; ") + name + ": " + why;
  }
  r.detail = "probe failed: " + failures;
  co_return r;
}

awaitable<std::optional<AdminAnswer>> IncidentDesk::endpoint(std::string path, std::string query) {
  if (path == "/admin/v1/timeline") {
    const int64_t now = unix_millis();
    incident::Query q;
    q.route = param(query, "route");
    std::string since = param(query, "since"), until = param(query, "until");
    auto from = incident::parse_time(since.empty() ? "24h" : since, now);
    auto to = until.empty() ? std::optional<int64_t>(now + 1) : incident::parse_time(until, now);
    if (!from || !to)
      co_return AdminAnswer{400, error_body(400, "invalid_time", "since/until: a duration (90s, 30m, 2h, 1d) or unix ms")};
    q.from_ms = *from;
    q.to_ms = *to;
    flush_events();  // what the data plane recorded this second is part of the answer
    std::vector<std::string> ups = q.route.empty() ? std::vector<std::string>() : route_upstreams(q.route);
    co_return AdminAnswer{200, incident::to_json(incident::timeline(store_, q, ups), q.route)};
  }
  if (starts_with(path, "/admin/v1/routes/") && path.ends_with("/readiness")) {
    std::string route = path.substr(17, path.size() - 17 - 10);
    if (route.empty() || route.find('/') != std::string::npos)
      co_return AdminAnswer{404, error_body(404, "unknown_url", "Unknown admin URL: " + path)};
    Readiness r = co_await readiness(std::move(route));
    co_return AdminAnswer{200, r.to_json()};
  }
  co_return std::nullopt;
}

void IncidentDesk::flush_events() {
  std::string err;
  incident::flush(shared_.incident.events, store_, err);
  if (!err.empty()) std::cerr << "sluice: saving incident events: " << err << "\n";
}

void IncidentDesk::start(int64_t interval_ms) {
  if (interval_ms <= 0) return;
  asio::co_spawn(control_, refresh_loop(interval_ms), asio::detached);
}

awaitable<void> IncidentDesk::refresh_loop(int64_t interval_ms) {
  asio::steady_timer timer(control_);
  // The first round after one interval: a gateway that just started sends no probe at once.
  timer.expires_after(std::chrono::milliseconds(interval_ms));
  error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  while (!shared_.draining.load()) {
    std::vector<std::string> routes;
    try {
      for (const auto& r : store_.list_routes()) add_unique(routes, r.name);
      for (const auto& r : store_.list_rollouts("", true)) add_unique(routes, r.route);
    } catch (const std::exception&) {
    }
    std::string text =
        "# HELP sluice_rollback_ready Whether the route's rollback target has an upstream that answered a probe (1) or not (0).\n"
        "# TYPE sluice_rollback_ready gauge\n";
    std::string latency =
        "# HELP sluice_rollback_probe_latency_ms How long the last readiness probe of the route's rollback target took.\n"
        "# TYPE sluice_rollback_probe_latency_ms gauge\n";
    for (const auto& route : routes) {
      if (shared_.draining.load()) co_return;
      std::string name = route;
      Readiness r = co_await readiness(std::move(name));
      if (r.target_release.empty()) continue;  // nothing to roll back to: no gauge
      std::string label = "{route=";
      append_json_string(label, route);
      label += "}";
      text += "sluice_rollback_ready" + label + (r.healthy ? " 1\n" : " 0\n");
      if (r.latency_ms >= 0) latency += "sluice_rollback_probe_latency_ms" + label + " " + num_text(r.latency_ms, 6) + "\n";
    }
    {
      std::lock_guard<std::mutex> lock(shared_.incident.metrics_mu);
      shared_.incident.readiness_metrics = text + latency;
    }
    timer.expires_after(std::chrono::milliseconds(interval_ms));
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
  }
}

}  // namespace sluice::gateway
