#include "scale/policy.hpp"

#include <algorithm>
#include <cmath>

namespace sluice::scale {

int desired_for(const Signal& s, int current, double tolerance) {
  if (s.target <= 0 || !std::isfinite(s.total) || s.total < 0) return -1;
  current = std::max(current, 1);
  if (s.up_only) {
    const double ratio = s.total / s.target;
    if (ratio <= 1 + tolerance) return -1;
    return static_cast<int>(std::ceil(current * std::min(ratio, 2.0)));
  }
  const double ratio = s.total / (s.target * current);
  if (std::abs(ratio - 1) <= tolerance) return current;
  // Computed in double: a runaway total must not overflow the count before it is clamped.
  return static_cast<int>(std::min(std::ceil(s.total / s.target - 1e-9), 1e6));
}

Recommender::Recommender(Policy p) : p_(p), current_(std::max(p.min_replicas, 1)) {}

void Recommender::set_policy(const Policy& p) { p_ = p; }

Decision Recommender::decide(const std::vector<Signal>& signals, int64_t now_ms, int current) {
  if (current < 1) current = current_;
  const int lo = std::max(p_.min_replicas, 1), hi = std::max(p_.max_replicas, lo);
  Decision d;
  int want = -1;
  for (const Signal& s : signals) {
    int w = desired_for(s, current, p_.tolerance);
    d.by_signal.emplace_back(s.name, w);
    want = std::max(want, w);
  }
  if (want < 0) want = lo;  // no signal has an opinion: idle
  d.raw = std::clamp(want, lo, hi);
  // HPA's stabilizeRecommendationWithBehaviors: the lowest recommendation of the scale-up
  // window caps going up, the highest of the scale-down window floors going down.
  recs_.emplace_back(now_ms, d.raw);
  const int64_t keep_ms = std::max(p_.scale_down_stabilization_s, p_.scale_up_stabilization_s) * 1000;
  while (!recs_.empty() && recs_.front().first < now_ms - keep_ms) recs_.pop_front();
  int up = d.raw, down = d.raw;
  for (const auto& [t, r] : recs_) {
    if (t > now_ms - p_.scale_up_stabilization_s * 1000) up = std::min(up, r);
    if (t > now_ms - p_.scale_down_stabilization_s * 1000) down = std::max(down, r);
  }
  int next = current;
  if (next < up) next = up;
  if (next > down) next = down;
  d.replicas = std::clamp(next, lo, hi);
  current_ = d.replicas;
  return d;
}

std::vector<Signal> signals_of(const Policy& p, double tokens_in_flight, double queued, double ttft_p99_ms) {
  std::vector<Signal> s;
  if (p.target_tokens_in_flight > 0) s.push_back({"tokens_in_flight", tokens_in_flight, p.target_tokens_in_flight, false});
  if (p.target_queue > 0) s.push_back({"queued_requests", queued, p.target_queue, false});
  if (p.ttft_p99_slo_ms > 0 && ttft_p99_ms >= 0) s.push_back({"ttft_p99_ms", ttft_p99_ms, p.ttft_p99_slo_ms, true});
  return s;
}

}  // namespace sluice::scale
