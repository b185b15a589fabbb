// gateway/admin.hpp: the admin listener. Every path under /admin/v1/ needs a bearer token
// (hash-compared); roles: viewer reads, operator changes traffic, admin manages tokens.
#pragma once
#include <functional>
#include <string>

#include "gateway/worker.hpp"
#include "store/store.hpp"

namespace sluice::rollout {
class Controller;
}

namespace sluice::gateway {

class IncidentDesk;
class AlarmDesk;

struct AdminEnv {
  Shared& shared;
  std::string bootstrap_token_sha256;       // generated at first start, "" if tokens are configured
  std::function<std::string()> reload;      // re-reads the config; returns an error text or ""
  std::function<std::string()> describe;    // JSON status of the running gateway
  store::Store* store = nullptr;            // releases, routes, audit
  std::function<std::string()> republish;   // publish a snapshot after a route change
  rollout::Controller* rollouts = nullptr;  // rollouts in progress (control thread)
  IncidentDesk* incident = nullptr;         // timeline and rollback readiness (incident_admin.hpp)
  AlarmDesk* alarms = nullptr;              // alarm states and series (alarms_admin.hpp)
};

class AdminHandler : public net::IdleConnections, public net::FixedLimits {
 public:
  AdminHandler(AdminEnv env, asio::io_context& ioc, net::SessionLimits limits)
      : net::FixedLimits(limits), env_(std::move(env)), ioc_(ioc), ids_(255) {}

  awaitable<bool> handle(beast::tcp_stream& stream, beast::flat_buffer& buf, http::request<http::string_body>& req);
  std::string next_request_id() { return ids_.next(); }
  bool draining() const { return env_.shared.draining.load(); }

 private:
  AdminEnv env_;
  asio::io_context& ioc_;
  RequestIdGenerator ids_;
};

// Answers /healthz, /readyz and /metrics (served on both listeners). nullopt if the path is
// not one of them.
struct OpsResponse {
  http::status status;
  std::string body;
  std::string content_type;
};
std::optional<OpsResponse> ops_endpoint(Shared& shared, std::string_view path);

}  // namespace sluice::gateway
