// gateway/tenants_view.hpp: tenants for operators. The admin API's /admin/v1/tenants and
// /admin/v1/keys (create, update, keys made, revoked and rotated: the same operations as the
// CLI, from control/tenants), each tenant's usage (its limits, what is left, spend against
// its budgets, requests in flight), and the sluice_tenant_* series of /metrics.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "admission/limiter.hpp"
#include "config/snapshot.hpp"
#include "store/store.hpp"

namespace sluice::gateway {

// {"in_flight","requests":{limit,remaining,reset_ms},"tokens":{...},"spend_usd":{day,month},
//  "budget_usd":{day,month}}
std::string tenant_usage_json(admission::Registry& reg, const config::Tenant& t, int64_t now_ms);
std::string tenants_prometheus(const config::Snapshot& snap, admission::Registry& reg, int64_t now_ms);

struct AdminCall {
  std::string_view method, path, body;
  int rank = 0;  // 1 viewer, 2 operator, 3 admin
  std::string actor;
};
struct AdminAnswer {
  int status = 200;
  std::string body;
  bool changed = false;  // the store changed: publish a new snapshot
};
// Answers the tenant and key paths; nullopt when the path is not one of them.
std::optional<AdminAnswer> tenant_endpoints(store::Store& st, admission::Registry& reg, const config::Snapshot& snap,
                                            const AdminCall& call);

}  // namespace sluice::gateway
