// upstream/health.hpp: what the gateway knows about one upstream across requests: its
// circuit breaker (which is also its passive outlier ejection), a Retry-After it asked for,
// and the load the gateway has in flight there. One Health per upstream identity, shared by
// every worker and kept in a Registry beside the snapshot, so a config reload that keeps an
// upstream keeps what was learned about it (as connection pools do).
//
// The breaker: closed -> open after `consecutive_failures` failures in a row, or when the
// failure share over the last `window_ms` reaches `failure_ratio` (with at least
// `min_requests`); open for a cool-down that doubles with every re-open (up to
// `max_open_ms`); then half-open: up to `half_open_probes` requests are let through; a
// success closes it (and resets the cool-down), a failure opens it again.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "admission/gate.hpp"

namespace sluice::upstream {

// What an upstream publishes about its own load (vLLM's /metrics): requests waiting for a
// batch slot, requests running, and KV-cache usage (0..1; -1 when not published).
struct LoadReport {
  double waiting = 0, running = 0, kv_usage = -1;
};
// Parses vLLM's Prometheus text (vllm:num_requests_waiting, vllm:num_requests_running,
// vllm:gpu_cache_usage_perc or vllm:kv_cache_usage_perc; summed over label sets); nullopt
// when it has neither request gauge.
std::optional<LoadReport> parse_vllm_metrics(std::string_view text);

struct BreakerSettings {
  bool enabled = true;
  int consecutive_failures = 5;
  double failure_ratio = 0.5;
  int min_requests = 20;
  int64_t window_ms = 10000;
  int64_t open_ms = 5000;
  int64_t max_open_ms = 60000;
  int half_open_probes = 1;
  // After readmission (a half-open probe or a health check passed), the upstream's share of
  // a pool's traffic ramps from 10% to all of it over this long (0: at once).
  int64_t slow_start_ms = 0;
};

enum class BreakerState { kClosed, kOpen, kHalfOpen };
const char* state_name(BreakerState s);

// How one attempt at this upstream ended, as the breaker counts it.
enum class Outcome {
  kSuccess,      // an answer (2xx), or an error the request itself caused (4xx but 429)
  kFailure,      // connect error, reset, timeout, 5xx, garbage, a stream cut
  kRateLimited,  // 429: not a failure of the upstream, but it asked us to hold off
  kIgnored,      // client abort or shutdown: says nothing about the upstream
};

// Told of every breaker state change (never per request): the incident timeline's feed
// (incident/ring.hpp). Called under the Health's lock, so it must be cheap (no I/O) and must
// not call back into the Health.
class HealthObserver {
 public:
  virtual ~HealthObserver() = default;
  virtual void breaker_changed(const std::string& identity, BreakerState from, BreakerState to,
                               std::string_view reason, int64_t now_ms) = 0;
};

// A read-only view for the admin API, the CLI and metrics.
struct HealthView {
  BreakerState state = BreakerState::kClosed;
  int64_t since_ms = 0;        // when the state began (wall clock)
  std::string reason;          // why it opened (the failure that tripped it)
  int64_t next_probe_ms = 0;   // open: when it turns half-open
  int64_t retry_after_ms = 0;  // a 429's Retry-After, when later than now
  int64_t opens = 0;           // how many times it opened
  int64_t requests = 0, failures = 0;  // in the current window
  int64_t outstanding = 0, outstanding_tokens = 0;
  // Active health checks (when configured): the last one, and failures in a row.
  int64_t last_check_ms = 0;
  int last_check_ok = -1;  // -1: none yet
  std::string last_check_error;
  int check_failures = 0;
  double weight = 1;  // < 1 while it ramps up after readmission (slow start)
  // Its own load report (load_metrics), when fresh.
  int64_t reported_at_ms = 0;
  double reported_waiting = -1, reported_running = -1, reported_kv_usage = -1;
};

class Health {
 public:
  explicit Health(BreakerSettings s = {}) : s_(s) { ramp_ms_.store(s.slow_start_ms, std::memory_order_relaxed); }

  // May a request go here now (the breaker)? `probe` is set when it is one of the half-open
  // probes (its outcome then decides the breaker).
  struct Admit {
    bool allowed = false;
    bool probe = false;
  };
  // `force`: the pool may not eject more upstreams (max_ejected_share): let it through.
  Admit admit(int64_t now_ms, bool force = false);
  void record(Outcome o, int64_t now_ms, bool probe, std::string_view why = {});
  // An active health check's result (a real one-token completion, sent whatever the breaker
  // says). `unhealthy_after` failures in a row eject the upstream (the breaker opens, reason
  // "health check"); a passing check readmits an ejected upstream at once.
  void record_check(bool ok, int64_t now_ms, std::string_view why, int unhealthy_after);
  // Its share of traffic while it ramps up after readmission: 0.1 .. 1 (slow start).
  double weight(int64_t now_ms) const;
  // The upstream's own load report, trusted for `max_age_ms`.
  void report_load(const LoadReport& r, int64_t now_ms, int64_t max_age_ms);
  // The requests the balancer counts here: what the gateway has in flight, or what the
  // upstream reports running and waiting (other clients' traffic included) when that is more
  // and the report is fresh.
  int64_t load(int64_t now_ms) const;
  // The upstream answered 429 with Retry-After: the balancer prefers every other target
  // until `until_ms` (a lone target is still tried: its own 429 is the right answer).
  void hold_off_until(int64_t until_ms);
  bool held_off(int64_t now_ms);
  // Both at once, under one lock (the balancer asks for every target of every request).
  struct Availability {
    int64_t at = 0;     // available_at
    bool held = false;  // held_off
  };
  Availability availability(int64_t now_ms);
  // When this upstream's breaker accepts requests again (now when it does).
  int64_t available_at(int64_t now_ms);
  HealthView view(int64_t now_ms);
  void set_settings(const BreakerSettings& s);
  // Who hears of this upstream's state changes, and the identity they are told.
  void observe(const std::string& identity, HealthObserver* o);

  // Load the gateway has in flight here (all workers), for balancing.
  std::atomic<int64_t> outstanding{0};
  std::atomic<int64_t> outstanding_tokens{0};

 private:
  void open_locked(int64_t now_ms, std::string_view why);
  void readmit_locked(int64_t now_ms);
  void roll_window_locked(int64_t now_ms);
  void changed_locked(BreakerState from, int64_t now_ms);

  std::mutex mu_;
  HealthObserver* observer_ = nullptr;
  std::string identity_;
  BreakerSettings s_;
  BreakerState state_ = BreakerState::kClosed;
  int64_t since_ms_ = 0, open_until_ms_ = 0, cooldown_ms_ = 0, retry_after_until_ms_ = 0;
  int consecutive_ = 0, probes_inflight_ = 0;
  int64_t opens_ = 0;
  std::string reason_;
  int64_t last_check_ms_ = 0;
  int last_check_ok_ = -1, check_failures_ = 0;
  std::string last_check_error_;
  // Slow start, read without the lock by the balancer: since when, and over how long.
  std::atomic<int64_t> ramp_from_ms_{0}, ramp_ms_{0};
  // The upstream's load report, read without the lock by the balancer.
  std::atomic<int64_t> reported_at_ms_{0}, report_max_age_ms_{0}, reported_requests_{0};
  std::atomic<int64_t> reported_waiting_milli_{-1000}, reported_running_milli_{-1000}, reported_kv_milli_{-1000};
  // The failure-ratio window: the current and the previous half-window (cheap sliding window).
  int64_t win_start_ms_ = 0, win_req_ = 0, win_fail_ = 0, prev_req_ = 0, prev_fail_ = 0;
};

// Keeps each upstream's Health across snapshots (keyed by identity: name|url).
class Registry {
 public:
  std::shared_ptr<Health> get(const std::string& identity, const BreakerSettings& s);
  // Every known upstream (for the admin API), identity -> health.
  std::unordered_map<std::string, std::shared_ptr<Health>> all();
  // Every upstream, known and future, reports its breaker changes to `o` (outlives them).
  void set_observer(HealthObserver* o);
  // A pool's admission gate (by pool name): a reload that keeps the pool keeps its learned
  // limit and its queue. `s` applies to a new gate only (the gateway applies a published
  // snapshot's settings to existing ones).
  std::shared_ptr<admission::Gate> gate(const std::string& pool, const admission::GateSettings& s);
  std::unordered_map<std::string, std::shared_ptr<admission::Gate>> gates();

 private:
  std::mutex mu_;
  HealthObserver* observer_ = nullptr;
  std::unordered_map<std::string, std::shared_ptr<Health>> by_identity_;
  std::unordered_map<std::string, std::shared_ptr<admission::Gate>> gates_;
};

// Keeps `n` in-flight units on a Health while alive (outstanding requests and tokens).
class LoadGuard {
 public:
  LoadGuard() = default;
  LoadGuard(Health* h, int64_t tokens) : h_(h), tokens_(tokens) {
    if (h_) {
      h_->outstanding.fetch_add(1, std::memory_order_relaxed);
      h_->outstanding_tokens.fetch_add(tokens_, std::memory_order_relaxed);
    }
  }
  LoadGuard(LoadGuard&& o) noexcept : h_(o.h_), tokens_(o.tokens_) { o.h_ = nullptr; }
  LoadGuard& operator=(LoadGuard&& o) noexcept {
    release();
    h_ = o.h_;
    tokens_ = o.tokens_;
    o.h_ = nullptr;
    return *this;
  }
  ~LoadGuard() { release(); }
  void release() {
    if (!h_) return;
    h_->outstanding.fetch_sub(1, std::memory_order_relaxed);
    h_->outstanding_tokens.fetch_sub(tokens_, std::memory_order_relaxed);
    h_ = nullptr;
  }

 private:
  Health* h_ = nullptr;
  int64_t tokens_ = 0;
};

}  // namespace sluice::upstream
