#include "scale/window.hpp"

#include <algorithm>

namespace sluice::scale {

double quantile(const metrics::Histogram& h, double q) {
  return h.count == 0 ? -1 : metrics::histogram_quantile(h, q);
}

metrics::Histogram difference(const metrics::Histogram& later, const metrics::Histogram& earlier) {
  metrics::Histogram d;
  for (size_t i = 0; i < d.counts.size(); ++i)
    d.counts[i] = later.counts[i] >= earlier.counts[i] ? later.counts[i] - earlier.counts[i] : 0;
  d.count = later.count >= earlier.count ? later.count - earlier.count : 0;
  d.sum = std::max(0.0, later.sum - earlier.sum);
  return d;
}

void HistogramRing::push(int64_t now_ms, const metrics::Histogram& cumulative) {
  ring_.emplace_back(now_ms, cumulative);
  // Keep one snapshot at or before the window's start, so the difference spans all of it.
  while (ring_.size() > 2 && ring_[1].first <= now_ms - window_s_ * 1000) ring_.pop_front();
}

metrics::Histogram HistogramRing::recent() const {
  if (ring_.empty()) return {};
  if (ring_.size() == 1) return {};  // nothing observed between two snapshots yet
  return difference(ring_.back().second, ring_.front().second);
}

void Headroom::record(const std::string& pool, int64_t now_ms, const Load& l) {
  const int64_t hour = now_ms - now_ms % 3600000;
  auto& q = by_pool_[pool];
  if (q.empty() || q.back().hour_ms != hour) {
    q.push_back(HourPeak{hour, {}, 0});
    while (q.size() > hours_) q.pop_front();
  }
  HourPeak& p = q.back();
  p.peak.tokens_in_flight = std::max(p.peak.tokens_in_flight, l.tokens_in_flight);
  p.peak.requests_in_flight = std::max(p.peak.requests_in_flight, l.requests_in_flight);
  p.peak.queued = std::max(p.peak.queued, l.queued);
  ++p.samples;
}

std::vector<HourPeak> Headroom::hours(const std::string& pool) const {
  auto it = by_pool_.find(pool);
  if (it == by_pool_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

std::vector<std::string> Headroom::pools() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : by_pool_) out.push_back(k);
  return out;
}

}  // namespace sluice::scale
