// scale/monitor.hpp: the autoscaling signal of one gateway replica (`GET /metrics/scale`)
// and its headroom report (`GET /admin/v1/headroom`). The control thread calls tick() once a
// second with what it read (load gauges, cumulative TTFT histograms); scrapers read the
// latest decision with live gauges. Pure apart from its mutex: the gateway does the reading.
#pragma once
#include <mutex>
#include <string>
#include <vector>

#include "scale/policy.hpp"
#include "scale/window.hpp"

namespace sluice::scale {

struct PoolReading {
  std::string name;
  Load load;
  int64_t max_tokens_inflight = 0, max_inflight = 0;  // the pool gate's capacity (0: none)
  metrics::Histogram ttft;                            // cumulative, over the pool's upstreams
};

struct Reading {
  int64_t now_ms = 0;
  Load total;  // tokens and requests in flight to upstreams, requests queued at pool gates
  metrics::Histogram ttft;  // cumulative, every request
  std::vector<PoolReading> pools;
};

class Monitor {
 public:
  // `window_s`: the TTFT quantile's window.
  void configure(const Policy& p, int64_t window_s);
  void tick(const Reading& r);
  // The scale answer: `live` gauges with the last tick's quantiles and decision.
  std::string scale_json(const Reading& live);
  // Peak vs capacity per pool over the last `days` days (hourly peaks).
  std::string headroom_json(const Reading& live, int days);

 private:
  std::mutex mu_;
  Policy policy_;
  int64_t window_s_ = 60;
  Recommender rec_;
  HistogramRing ttft_{60};
  std::map<std::string, HistogramRing> pool_ttft_;
  Headroom headroom_;
  Decision last_;
  double p99_ms_ = -1, p50_ms_ = -1;
  std::map<std::string, double> pool_p99_ms_;
  int64_t last_tick_ms_ = 0;
};

}  // namespace sluice::scale
