// alarm/series.hpp: windowed time series of what the gateway served, per (route, release,
// tenant, upstream). The control thread hands the Sampler the metrics' cumulative Totals once a
// second; it keeps their differences in 10-second buckets for an hour and in hourly buckets for
// eight days. Buckets are kept sparse (a key with no traffic in a bucket stores nothing), and
// every bucket carries latency and TTFT histograms, so a quantile over any window is read from
// the merged histograms, not averaged from per-bucket quantiles.
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "metrics/metrics.hpp"

namespace sluice::alarm {

struct SeriesKey {
  std::string route, release, tenant, upstream;
};
SeriesKey split_series_key(const std::string& k);  // "route \x1f release \x1f tenant \x1f upstream"

// Which keys a window adds up: an empty field matches every value.
struct Scope {
  std::string route, release, tenant, upstream;
  bool matches(const SeriesKey& k) const;
  bool all() const { return route.empty() && release.empty() && tenant.empty() && upstream.empty(); }
};

struct Bucket {
  int64_t t_s = 0;  // bucket start, unix seconds
  metrics::Totals c;
};

// q-quantile (0..1) of a histogram in milliseconds, interpolated linearly inside the bucket that
// holds it (as Prometheus' histogram_quantile); NaN when empty.
double quantile_ms(const metrics::Histogram& h, double q);

class Sampler {
 public:
  static constexpr int64_t kStepS = 10;
  static constexpr int64_t kFineKeepS = 3600;       // an hour of 10 s buckets
  static constexpr int64_t kHourlyKeepS = 8 * 86400;  // eight days of hourly buckets

  // Adds what changed since the previous call to the current buckets.
  void observe(int64_t now_ms, const std::map<std::string, metrics::Totals>& cumulative);

  // The sum over every matching key of the buckets that started in (now - window, now]
  // (hourly buckets once the window is longer than the fine retention).
  metrics::Totals window(const Scope& s, int64_t now_ms, int64_t window_ms) const;
  // The sum over [from_ms, to_ms) from the hourly buckets (week-over-week comparisons).
  metrics::Totals hourly(const Scope& s, int64_t from_ms, int64_t to_ms) const;

  // GET /admin/v1/series: one series per release of the route, a point per 10 s step that had
  // traffic in the last window_s. {"route","step_s","series":[{"release","points":[...]}]}
  std::string route_series_json(const std::string& route, int64_t now_ms, int64_t window_s) const;

  size_t keys() const { return keys_.size(); }

 private:
  struct PerKey {
    SeriesKey key;
    metrics::Totals last;  // cumulative at the previous observe
    std::deque<Bucket> fine, hourly;
  };
  static void add_to(std::deque<Bucket>& d, int64_t t_s, const metrics::Totals& delta, int64_t keep_s);
  std::map<std::string, PerKey> keys_;
};

}  // namespace sluice::alarm
