#include "gateway/scale_view.hpp"

#include <unordered_map>

namespace sluice::gateway {

namespace {

// Tokens and requests in flight to upstreams (what each upstream's Health counts while an
// attempt holds it) and requests queued at pool gates; with `ttft`, the cumulative TTFT
// histograms too (taken under the metric shards' locks: the control thread's tick only).
scale::Reading read(Shared& shared, const config::Snapshot& snap, int64_t now_ms, bool ttft) {
  scale::Reading r;
  r.now_ms = now_ms;
  std::unordered_map<std::string, upstream::HealthView> health;
  for (const auto& u : snap.upstreams()) {
    upstream::HealthView v = u.health->view(now_ms);
    r.total.tokens_in_flight += v.outstanding_tokens;
    r.total.requests_in_flight += v.outstanding;
    health.emplace(u.cfg->name, std::move(v));
  }
  std::map<std::string, metrics::Histogram> by_upstream;
  if (ttft) {
    by_upstream = shared.metrics->ttft_by_upstream();
    for (const auto& [name, h] : by_upstream) r.ttft.merge(h);
  }
  for (const auto& p : snap.config().pools) {
    scale::PoolReading pr;
    pr.name = p.name;
    for (const auto& m : p.upstreams) {
      if (auto it = health.find(m); it != health.end()) {
        pr.load.tokens_in_flight += it->second.outstanding_tokens;
        pr.load.requests_in_flight += it->second.outstanding;
      }
      if (auto it = by_upstream.find(m); it != by_upstream.end()) pr.ttft.merge(it->second);
    }
    if (p.balance.gate) {
      admission::GateView g = p.balance.gate->view();
      // The gate holds a request's slot from admission to completion (retries included).
      pr.load.tokens_in_flight = g.tokens_in_flight;
      pr.load.requests_in_flight = g.in_flight;
      for (int64_t w : g.waiting) pr.load.queued += w;
      r.total.queued += pr.load.queued;
      pr.max_tokens_inflight = p.admission.max_tokens;
      pr.max_inflight = p.admission.max_inflight;
    }
    r.pools.push_back(std::move(pr));
  }
  return r;
}

scale::Policy policy_of(const config::Autoscale& a) {
  scale::Policy p;
  p.target_tokens_in_flight = a.target_tokens_in_flight;
  p.target_queue = a.target_queue;
  p.ttft_p99_slo_ms = a.ttft_p99_slo_ms;
  p.min_replicas = a.min_replicas;
  p.max_replicas = a.max_replicas;
  p.scale_down_stabilization_s = a.scale_down_stabilization_s;
  p.scale_up_stabilization_s = a.scale_up_stabilization_s;
  p.tolerance = a.tolerance;
  return p;
}

}  // namespace

void scale_tick(Shared& shared, int64_t now_ms) {
  auto snap = shared.snapshots.current();
  if (!snap) return;
  shared.scale.configure(policy_of(snap->config().autoscale), snap->config().autoscale.ttft_window_s);
  shared.scale.tick(read(shared, *snap, now_ms, true));
}

std::string scale_json(Shared& shared, int64_t now_ms) {
  auto snap = shared.snapshots.current();
  if (!snap) return "{}\n";
  return shared.scale.scale_json(read(shared, *snap, now_ms, false));
}

std::string headroom_json(Shared& shared, int64_t now_ms, int days) {
  auto snap = shared.snapshots.current();
  if (!snap) return "{}\n";
  return shared.scale.headroom_json(read(shared, *snap, now_ms, false), days);
}

}  // namespace sluice::gateway
