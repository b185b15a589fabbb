// scale/window.hpp: what the autoscaling signal remembers, fed once a second by the control
// thread (never per scrape, so the answer does not depend on who scrapes how often).
//
// `HistogramRing` keeps cumulative latency histograms, one per second, for a window: the
// distribution of the last N seconds is the newest minus the oldest, and its quantile is read
// as Prometheus's histogram_quantile does (linear within the bucket).
// `Headroom` keeps each pool's peak per UTC hour (tokens and requests in flight, queued) for
// a number of days, in memory: a restart forgets them (docs/autoscaling.md).
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "metrics/metrics.hpp"

namespace sluice::scale {

// The q-quantile (0..1) of a histogram in seconds, as histogram_quantile(); < 0 when empty.
double quantile(const metrics::Histogram& h, double q);

// `later` minus `earlier` (both cumulative).
metrics::Histogram difference(const metrics::Histogram& later, const metrics::Histogram& earlier);

class HistogramRing {
 public:
  explicit HistogramRing(int64_t window_s = 60) : window_s_(window_s) {}
  void set_window(int64_t s) { window_s_ = s; }
  int64_t window_s() const { return window_s_; }
  void push(int64_t now_ms, const metrics::Histogram& cumulative);
  // What was observed over the window (or since the first snapshot when younger).
  metrics::Histogram recent() const;

 private:
  int64_t window_s_;
  std::deque<std::pair<int64_t, metrics::Histogram>> ring_;
};

struct Load {
  int64_t tokens_in_flight = 0, requests_in_flight = 0, queued = 0;
};

struct HourPeak {
  int64_t hour_ms = 0;  // start of the UTC hour
  Load peak;            // each field's own maximum over the hour
  int64_t samples = 0;
};

class Headroom {
 public:
  explicit Headroom(int days = 7) : hours_(days * 24) {}
  void record(const std::string& pool, int64_t now_ms, const Load& l);
  // Oldest first; only hours with a sample.
  std::vector<HourPeak> hours(const std::string& pool) const;
  std::vector<std::string> pools() const;

 private:
  size_t hours_;
  std::map<std::string, std::deque<HourPeak>> by_pool_;
};

}  // namespace sluice::scale
