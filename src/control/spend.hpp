// control/spend.hpp: money spent, per day and its week-over-week trend, from the store's
// route_spend rows (written behind the data plane once a second). Shared by the admin API
// (GET /admin/v1/spend) and the alarms (cost growth week over week).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "store/store.hpp"

namespace sluice::control {

struct RouteTrend {
  std::string route;
  double last_7d_usd = 0, prev_7d_usd = 0, today_usd = 0;
  int64_t requests_7d = 0;
  // last_7d / prev_7d - 1; NaN when the week before spent nothing.
  double wow_growth() const;
};

// Spend of the 7 days ending `today` (days since the epoch, UTC) against the 7 before, per route.
std::vector<RouteTrend> route_trends(const std::vector<store::RouteSpend>& rows, int64_t today);

// JSON for the last `days` days (at least 14): per day, per route (with its trend), per
// release and per tenant. `route` ("" = all) filters the rows.
std::string spend_json(store::Store& s, int64_t today, int days, const std::string& route);

}  // namespace sluice::control
