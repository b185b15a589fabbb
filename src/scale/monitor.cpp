#include "scale/monitor.hpp"

#include <algorithm>

#include "core/json_object.hpp"
#include "core/strings.hpp"

namespace sluice::scale {

namespace {
std::string ms_or_null(double ms) { return ms < 0 ? std::string("null") : num_text(ms, 6); }
std::string ratio_or_null(int64_t v, int64_t cap) {
  return cap > 0 ? num_text(static_cast<double>(v) / static_cast<double>(cap), 4) : std::string("null");
}
}  // namespace

void Monitor::configure(const Policy& p, int64_t window_s) {
  std::lock_guard<std::mutex> lock(mu_);
  policy_ = p;
  rec_.set_policy(p);
  window_s_ = std::max<int64_t>(window_s, 1);
  ttft_.set_window(window_s_);
  for (auto& [k, r] : pool_ttft_) r.set_window(window_s_);
}

void Monitor::tick(const Reading& r) {
  std::lock_guard<std::mutex> lock(mu_);
  ttft_.push(r.now_ms, r.ttft);
  const metrics::Histogram recent = ttft_.recent();
  const double p99 = quantile(recent, 0.99), p50 = quantile(recent, 0.5);
  p99_ms_ = p99 < 0 ? -1 : p99 * 1000;
  p50_ms_ = p50 < 0 ? -1 : p50 * 1000;
  for (const PoolReading& p : r.pools) {
    auto it = pool_ttft_.try_emplace(p.name, window_s_).first;
    it->second.push(r.now_ms, p.ttft);
    const double q = quantile(it->second.recent(), 0.99);
    pool_p99_ms_[p.name] = q < 0 ? -1 : q * 1000;
    headroom_.record(p.name, r.now_ms, p.load);
  }
  last_ = rec_.decide(signals_of(policy_, static_cast<double>(r.total.tokens_in_flight),
                                 static_cast<double>(r.total.queued), p99_ms_),
                      r.now_ms);
  last_tick_ms_ = r.now_ms;
}

std::string Monitor::scale_json(const Reading& live) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string by_signal = "{";
  for (const auto& [name, w] : last_.by_signal) {
    if (by_signal.size() > 1) by_signal += ",";
    append_json_string(by_signal, name);
    by_signal += ":" + (w < 0 ? std::string("null") : std::to_string(w));
  }
  by_signal += "}";
  std::string pools = json_array(live.pools, [&](const PoolReading& p) {
    auto q = pool_p99_ms_.find(p.name);
    return JsonObject()
        .str("name", p.name)
        .num("tokens_in_flight", p.load.tokens_in_flight)
        .num("requests_in_flight", p.load.requests_in_flight)
        .num("queued_requests", p.load.queued)
        .raw("ttft_p99_ms", ms_or_null(q == pool_p99_ms_.end() ? -1 : q->second))
        .raw("max_tokens_inflight", p.max_tokens_inflight > 0 ? std::to_string(p.max_tokens_inflight) : "null")
        .raw("max_inflight", p.max_inflight > 0 ? std::to_string(p.max_inflight) : "null")
        .raw("token_utilization", ratio_or_null(p.load.tokens_in_flight, p.max_tokens_inflight))
        .done();
  });
  const Policy& p = policy_;
  std::string policy = JsonObject()
                           .raw("target_tokens_in_flight", num_text(p.target_tokens_in_flight))
                           .raw("target_queue", num_text(p.target_queue))
                           .raw("ttft_p99_slo_ms", num_text(p.ttft_p99_slo_ms))
                           .num("min_replicas", p.min_replicas)
                           .num("max_replicas", p.max_replicas)
                           .num("scale_down_stabilization_s", p.scale_down_stabilization_s)
                           .num("scale_up_stabilization_s", p.scale_up_stabilization_s)
                           .raw("tolerance", num_text(p.tolerance))
                           .done();
  return JsonObject()
             .num("tokens_in_flight", live.total.tokens_in_flight)
             .num("requests_in_flight", live.total.requests_in_flight)
             .num("queued_requests", live.total.queued)
             .raw("ttft_p99_ms", ms_or_null(p99_ms_))
             .raw("ttft_p50_ms", ms_or_null(p50_ms_))
             .num("ttft_window_s", window_s_)
             .num("suggested_replicas", last_.replicas > 0 ? last_.replicas : std::max(p.min_replicas, 1))
             .raw("recommendation", JsonObject().num("unstabilized", last_.raw).raw("by_signal", by_signal).done())
             .raw("policy", policy)
             .raw("pools", pools)
             .num("decided_at_ms", last_tick_ms_)
             .num("now_ms", live.now_ms)
             .done() +
         "\n";
}

std::string Monitor::headroom_json(const Reading& live, int days) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t since = live.now_ms - static_cast<int64_t>(days) * 86400000;
  std::string pools = json_array(live.pools, [&](const PoolReading& p) {
    Load peak;
    std::string hours = "[";
    for (const HourPeak& h : headroom_.hours(p.name)) {
      if (h.hour_ms + 3600000 <= since) continue;
      peak.tokens_in_flight = std::max(peak.tokens_in_flight, h.peak.tokens_in_flight);
      peak.requests_in_flight = std::max(peak.requests_in_flight, h.peak.requests_in_flight);
      peak.queued = std::max(peak.queued, h.peak.queued);
      if (hours.size() > 1) hours += ",";
      hours += JsonObject()
                   .str("hour", iso_time(h.hour_ms))
                   .num("peak_tokens_in_flight", h.peak.tokens_in_flight)
                   .num("peak_requests_in_flight", h.peak.requests_in_flight)
                   .num("peak_queued", h.peak.queued)
                   .raw("peak_token_utilization", ratio_or_null(h.peak.tokens_in_flight, p.max_tokens_inflight))
                   .done();
    }
    hours += "]";
    auto headroom = [](int64_t v, int64_t cap) {
      return cap > 0 ? num_text(1 - static_cast<double>(v) / static_cast<double>(cap), 4) : std::string("null");
    };
    return JsonObject()
        .str("name", p.name)
        .raw("capacity", JsonObject()
                             .raw("max_tokens_inflight", p.max_tokens_inflight > 0 ? std::to_string(p.max_tokens_inflight) : "null")
                             .raw("max_inflight", p.max_inflight > 0 ? std::to_string(p.max_inflight) : "null")
                             .done())
        .raw("peak", JsonObject()
                         .num("tokens_in_flight", peak.tokens_in_flight)
                         .num("requests_in_flight", peak.requests_in_flight)
                         .num("queued", peak.queued)
                         .done())
        .raw("peak_token_utilization", ratio_or_null(peak.tokens_in_flight, p.max_tokens_inflight))
        .raw("peak_request_utilization", ratio_or_null(peak.requests_in_flight, p.max_inflight))
        .raw("token_headroom", headroom(peak.tokens_in_flight, p.max_tokens_inflight))
        .raw("request_headroom", headroom(peak.requests_in_flight, p.max_inflight))
        .raw("hours", hours)
        .done();
  });
  return JsonObject()
             .num("days", days)
             .str("since", iso_time(std::max<int64_t>(since, 0)))
             .str("kept", "in memory, hourly peaks of the last 7 days; a restart starts over")
             .raw("pools", pools)
             .done() +
         "\n";
}

}  // namespace sluice::scale
