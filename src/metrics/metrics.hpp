// metrics/metrics.hpp: what the gateway counts, sharded per worker thread.
//
// Each worker writes only its own shard. A shard's mutex is taken by its worker per request
// and by the scraper once per scrape, so it is never contended on the hot path in practice
// and no lock is shared between workers.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sluice::metrics {

// Latency buckets in seconds, shared by all histograms.
inline constexpr std::array<double, 16> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                    0.25,   0.5,   1,      2.5,   5,    10,    30,    60};

struct Histogram {
  std::array<uint64_t, kBuckets.size() + 1> counts{};  // last = +Inf
  double sum = 0;
  uint64_t count = 0;
  void observe(double seconds);
  void merge(const Histogram& o);
};

// The q-quantile (0..1) in seconds, interpolated linearly inside the bucket that holds it as
// Prometheus' histogram_quantile does (the +Inf bucket answers the highest finite bound); NaN
// when empty.
double histogram_quantile(const Histogram& h, double q);
// A Prometheus label value escaped (backslash, quote, newline).
std::string prometheus_label(std::string_view v);

struct RequestSeries {
  std::array<uint64_t, 6> by_class{};  // 1xx..5xx, index 0 = other
  Histogram latency, ttft, tpot;
  uint64_t tokens_in = 0, tokens_out = 0;
  void merge(const RequestSeries& o);
};

// One finished request as the account stage reports it.
struct RequestSample {
  std::string_view route;     // "" in pass-through mode
  std::string_view release;   // the release that served it ("" for config routes)
  std::string_view upstream;  // "" when none was chosen
  int status = 0;
  double latency_s = 0;
  double ttft_s = -1;  // < 0: not a stream or no token
  double tpot_s = -1;
  int64_t tokens_in = 0, tokens_out = 0;
  std::string_view tenant;  // "" without tenants
  double cost_usd = -1;     // < 0: the upstream has no price (pipeline::request_cost)
  // Refusal checked (the route's alarms need it: pipeline's alarm_refusal filter) and its verdict.
  bool refusal_checked = false, refused = false;
};

// What alarms and the admin API's series read: one (route, release, tenant, upstream)'s
// cumulative counts (Registry::collect), or their difference over a time bucket (alarm/series).
struct Totals {
  uint64_t requests = 0, errors = 0;  // errors: status >= 500 (upstream failures included)
  uint64_t refusal_checked = 0, refusals = 0;
  uint64_t tokens_in = 0, tokens_out = 0;
  double cost_usd = 0;
  Histogram latency, ttft;
  void add(const Totals& o);
  // this - earlier, for cumulative counts (a smaller count, e.g. a restart, counts from 0).
  Totals since(const Totals& earlier) const;
};

// Money spent by one (route, release, tenant): `sluice_cost_usd_total` and the daily spend.
struct CostTotal {
  double usd = 0;
  uint64_t requests = 0;  // requests that had a price
};

class Shard {
 public:
  void record(const RequestSample& s);
  void upstream_error(std::string_view upstream, std::string_view kind);
  // A route's fallback chain answered: `served_by` is the step (an upstream/pool, or "static").
  void fallback(std::string_view route, std::string_view served_by);
  // The gateway's own admission refused a request: a tenant's limit ("rpm", "tpm",
  // "concurrency", "input_too_long") or a pool shedding load ("shed_<tier>").
  void refused(std::string_view tenant, std::string_view reason);
  std::atomic<int64_t> inflight{0};
  std::atomic<int64_t> open_streams{0};
  std::atomic<int64_t> ofrep_evaluations{0};  // OFREP requests answered

 private:
  friend class Registry;
  std::mutex mu_;
  std::unordered_map<std::string, RequestSeries> series_;  // key: route \x1f release \x1f upstream
  void count_pair(std::unordered_map<std::string, uint64_t>& m, std::string_view a, std::string_view b);
  std::unordered_map<std::string, uint64_t> upstream_errors_;  // key: upstream \x1f kind
  std::unordered_map<std::string, uint64_t> fallbacks_;        // key: route \x1f served_by
  std::unordered_map<std::string, uint64_t> refused_;          // key: tenant \x1f reason
  std::unordered_map<std::string, CostTotal> cost_;            // key: route \x1f release \x1f tenant
  std::unordered_map<std::string, Totals> totals_;             // key: route \x1f release \x1f tenant \x1f upstream
  std::string key_;  // scratch, reused per request
};

class Registry {
 public:
  explicit Registry(size_t workers);
  Shard& shard(size_t worker) { return *shards_[worker]; }
  size_t shards() const { return shards_.size(); }
  // Counters owned outside the workers (request log, config reloads).
  std::atomic<uint64_t> reqlog_dropped{0};
  std::atomic<uint64_t> reqlog_written{0};
  std::atomic<uint64_t> config_reloads{0};
  std::atomic<uint64_t> config_reload_failures{0};
  std::atomic<uint64_t> connections_accepted{0};

  int64_t inflight() const;
  std::string render_prometheus() const;
  // Cumulative cost per "route \x1f release \x1f tenant" since start, merged over workers.
  std::map<std::string, CostTotal> cost_totals() const;
  // Time to first token per upstream ("" for requests no upstream served), merged over
  // workers and every route: what the autoscaling signal reads once a second.
  std::map<std::string, Histogram> ttft_by_upstream() const;
  // Cumulative Totals per "route \x1f release \x1f tenant \x1f upstream" since start, merged over
  // workers: what the control thread samples once a second for alarms and series.
  std::map<std::string, Totals> collect() const;

 private:
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace sluice::metrics
