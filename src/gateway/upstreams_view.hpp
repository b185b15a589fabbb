// gateway/upstreams_view.hpp: what the gateway knows about its upstreams, for operators:
// GET /admin/v1/upstreams (and `sluice upstreams`), and the sluice_upstream_* series of
// /metrics. Reads the snapshot's upstreams and their shared Health; never blocks a worker.
#pragma once
#include <cstdint>
#include <string>

#include "cache/response_cache.hpp"
#include "config/snapshot.hpp"
#include "upstream/retry.hpp"

namespace sluice::gateway {

std::string upstreams_json(const config::Snapshot& snap, upstream::RetryBudget& budget, int64_t now_ms);
std::string upstreams_prometheus(const config::Snapshot& snap, upstream::RetryBudget& budget, int64_t now_ms);
// sluice_response_cache_* series.
std::string response_cache_prometheus(cache::ResponseCache& c);
// The Responses API store's series (sluice_responses_stored...).
std::string responses_store_prometheus(cache::ResponseCache& c, int64_t journal_dropped);

}  // namespace sluice::gateway
