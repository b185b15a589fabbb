// gateway/scale_view.hpp: the autoscaling signal of this replica. `GET /metrics/scale` (ops
// endpoint, both listeners; what KEDA's metrics-api scaler reads) and
// `GET /admin/v1/headroom` (peak vs capacity per pool). The control thread calls
// scale_tick() once a second; scrapes only read (scale/monitor.hpp).
#pragma once
#include <cstdint>
#include <string>

#include "gateway/worker.hpp"

namespace sluice::gateway {

void scale_tick(Shared& shared, int64_t now_ms);
std::string scale_json(Shared& shared, int64_t now_ms);
std::string headroom_json(Shared& shared, int64_t now_ms, int days);

}  // namespace sluice::gateway
