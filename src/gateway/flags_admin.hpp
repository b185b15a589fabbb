// gateway/flags_admin.hpp: the admin API's feature flags and kill switches, the same
// operations as `sluice flag ...` and `sluice kill ...` (control/flags.hpp):
//
//   GET    /admin/v1/flags                    every flag (summary)
//   GET    /admin/v1/flags/export             every flag as one flagd file
//   GET    /admin/v1/flags/stale?older_than_s=N   flags to clean up (default 30 days)
//   POST   /admin/v1/flags/import             {"file": TEXT, "replace": bool, "reason"}
//   GET    /admin/v1/flags/{key}              one flag with its definition
//   PUT    /admin/v1/flags/{key}              {"definition": {...} or TEXT, "reason"}
//   POST   /admin/v1/flags/{key}/enable|disable   {"reason"}
//   DELETE /admin/v1/flags/{key}              {"reason"} (or ?reason=)
//   GET    /admin/v1/kill                     every kill switch and whether it is on
//   POST   /admin/v1/kill/route               {"route", "mode": block|fallback|static|off, "reason"}
//   POST   /admin/v1/kill/tool                {"route", "tool", "reason"}
//   POST   /admin/v1/kill/shadow              {"route" (absent: every route), "reason"}
//   POST   /admin/v1/kill/rollouts            {"reason"}
//   POST   /admin/v1/kill/clear               {"key", "reason"}
//
// Keys are percent-encoded path segments. Viewers read; changes need the operator role. A
// change answers `changed`, so the admin handler publishes before it replies: when the call
// returns, every worker evaluates the new flags.
#pragma once
#include <optional>
#include <string_view>

#include "gateway/tenants_view.hpp"
#include "store/store.hpp"

namespace sluice::gateway {

// Answers the flag and kill switch paths; nullopt when the path is not one of them.
std::optional<AdminAnswer> flag_endpoints(store::Store& st, const AdminCall& call, std::string_view query);

}  // namespace sluice::gateway
