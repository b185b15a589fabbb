#include "alarm/series.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace sluice::alarm {

SeriesKey split_series_key(const std::string& k) {
  SeriesKey out;
  std::string* parts[] = {&out.route, &out.release, &out.tenant, &out.upstream};
  size_t start = 0;
  for (size_t i = 0; i < 4; ++i) {
    size_t end = i == 3 ? std::string::npos : k.find('\x1f', start);
    *parts[i] = k.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

bool Scope::matches(const SeriesKey& k) const {
  return (route.empty() || route == k.route) && (release.empty() || release == k.release) &&
         (tenant.empty() || tenant == k.tenant) && (upstream.empty() || upstream == k.upstream);
}

double quantile_ms(const metrics::Histogram& h, double q) { return metrics::histogram_quantile(h, q) * 1000.0; }

void Sampler::add_to(std::deque<Bucket>& d, int64_t t_s, const metrics::Totals& delta, int64_t keep_s) {
  if (d.empty() || d.back().t_s < t_s) d.push_back(Bucket{t_s, {}});
  d.back().c.add(delta);
  while (!d.empty() && d.front().t_s <= t_s - keep_s) d.pop_front();
}

void Sampler::observe(int64_t now_ms, const std::map<std::string, metrics::Totals>& cumulative) {
  const int64_t now_s = now_ms / 1000;
  for (const auto& [k, total] : cumulative) {
    auto it = keys_.find(k);
    if (it == keys_.end()) {
      it = keys_.emplace(k, PerKey{}).first;
      it->second.key = split_series_key(k);
    }
    PerKey& pk = it->second;
    if (total.requests == pk.last.requests) continue;  // nothing finished since the last tick
    const metrics::Totals delta = total.since(pk.last);
    pk.last = total;
    add_to(pk.fine, now_s - now_s % kStepS, delta, kFineKeepS);
    add_to(pk.hourly, now_s - now_s % 3600, delta, kHourlyKeepS);
  }
}

metrics::Totals Sampler::window(const Scope& s, int64_t now_ms, int64_t window_ms) const {
  if (window_ms > kFineKeepS * 1000) return hourly(s, now_ms - window_ms, now_ms + 1);
  metrics::Totals out;
  // Buckets whose start lies in the window; the current one is partial.
  const int64_t from_s = (now_ms - window_ms) / 1000;
  for (const auto& [k, pk] : keys_) {
    if (!s.matches(pk.key)) continue;
    for (auto b = pk.fine.rbegin(); b != pk.fine.rend() && b->t_s >= from_s; ++b) out.add(b->c);
  }
  return out;
}

metrics::Totals Sampler::hourly(const Scope& s, int64_t from_ms, int64_t to_ms) const {
  metrics::Totals out;
  const int64_t from_s = from_ms / 1000, to_s = (to_ms + 999) / 1000;
  for (const auto& [k, pk] : keys_) {
    if (!s.matches(pk.key)) continue;
    for (const Bucket& b : pk.hourly)
      if (b.t_s >= from_s - from_s % 3600 && b.t_s < to_s) out.add(b.c);
  }
  return out;
}

namespace {
void num(std::string& o, const char* k, double v) {
  o += ",\"";
  o += k;
  o += "\":";
  o += num_text(v, 6);  // NaN (no data) is null
}
}  // namespace

std::string Sampler::route_series_json(const std::string& route, int64_t now_ms, int64_t window_s) const {
  // release -> bucket start -> merged over tenants and upstreams
  std::map<std::string, std::map<int64_t, metrics::Totals>> by_release;
  const int64_t from_s = now_ms / 1000 - window_s;
  for (const auto& [k, pk] : keys_) {
    if (pk.key.route != route) continue;
    auto& rel = by_release[pk.key.release];
    for (auto b = pk.fine.rbegin(); b != pk.fine.rend() && b->t_s > from_s; ++b) rel[b->t_s].add(b->c);
  }
  std::string o = "{\"route\":";
  append_json_string(o, route);
  o += ",\"step_s\":" + std::to_string(kStepS) + ",\"window_s\":" + std::to_string(window_s) + ",\"series\":[";
  bool first = true;
  for (const auto& [rel, points] : by_release) {
    if (points.empty()) continue;
    if (!first) o += ",";
    first = false;
    o += "{\"release\":";
    append_json_string(o, rel);
    o += ",\"points\":[";
    bool fp = true;
    for (const auto& [t, c] : points) {
      if (!fp) o += ",";
      fp = false;
      const double n = static_cast<double>(c.requests), nan = std::numeric_limits<double>::quiet_NaN();
      o += "{\"t\":" + std::to_string(t) + ",\"requests\":" + std::to_string(c.requests) +
           ",\"errors\":" + std::to_string(c.errors);
      num(o, "error_rate", n > 0 ? static_cast<double>(c.errors) / n : nan);
      num(o, "refusal_rate", c.refusal_checked > 0 ? static_cast<double>(c.refusals) / static_cast<double>(c.refusal_checked) : nan);
      num(o, "latency_p50_ms", quantile_ms(c.latency, 0.5));
      num(o, "latency_p99_ms", quantile_ms(c.latency, 0.99));
      num(o, "ttft_p50_ms", quantile_ms(c.ttft, 0.5));
      num(o, "ttft_p99_ms", quantile_ms(c.ttft, 0.99));
      num(o, "cost_per_call_usd", n > 0 ? c.cost_usd / n : nan);
      o += ",\"tokens_in\":" + std::to_string(c.tokens_in) + ",\"tokens_out\":" + std::to_string(c.tokens_out) + "}";
    }
    o += "]}";
  }
  return o + "]}";
}

}  // namespace sluice::alarm
