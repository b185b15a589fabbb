// admission/gate.hpp: admission control of one pool. A pool takes a bounded number of
// requests (and tokens) in flight: a fixed capacity, or an adaptive limit learned from the
// time to first token it observes (gradient style, as Netflix's concurrency-limits Gradient2
// and Envoy's adaptive concurrency filter: the limit shrinks when TTFT rises above its
// long-run baseline and grows while it stays there). Shedding starts before saturation, by
// tier: sheddable requests from shed_at of the limit, standard ones from halfway between
// that and full, critical ones only when full. A request over its tier's threshold may wait
// in a bounded queue (critical first; a critical arrival displaces the newest lower-tier
// waiter when it is full) until a deadline; sheddable ones never wait. Within a tier the
// queue is first-in first-out until its oldest waiter has waited a tenth of the deadline,
// then newest first (adaptive LIFO, as Facebook's and CoDel-style server queues do): under
// sustained overload the requests that get in have waited little, and the old ones time out.
// A refusal carries a Retry-After computed from the measured drain rate. One Gate per pool,
// kept beside the snapshot so a reload keeps what was learned. Pure: no I/O; a waiter is
// woken through a callback the gateway supplies (it posts to the waiter's event loop).
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

#include "admission/limiter.hpp"

namespace sluice::admission {

struct GateSettings {
  int64_t max_inflight = 0;  // requests in flight (0: no request limit); the ceiling when adaptive
  int64_t max_tokens = 0;    // estimated tokens in flight (0: no token limit)
  double shed_at = 0.8;      // share of the limit from which the lowest tier is shed
  // Adaptive concurrency: the request limit follows observed TTFT between min_limit and
  // max_inflight (or 1000 without one).
  bool adaptive = false;
  int64_t min_limit = 4;
  double tolerance = 1.5;   // TTFT up to tolerance x its baseline does not shrink the limit
  double smoothing = 0.2;   // how fast the limit moves toward each new estimate
  int64_t queue_max = -1;   // waiting requests (-1: as many as the limit; 0: no queue)
  int64_t queue_timeout_ms = 1000;  // a waiter is refused after this long...
  int64_t critical_timeout_ms = -1;  // ...or this, for critical requests (-1: queue_timeout_ms)
  int64_t timeout_ms(Tier t) const {
    return t == Tier::kCritical && critical_timeout_ms >= 0 ? critical_timeout_ms : queue_timeout_ms;
  }
  bool enabled() const { return max_inflight > 0 || max_tokens > 0 || adaptive; }
};

// A request waiting for a slot. state: 0 waiting, 1 granted (it holds a slot), 2 gave up
// (its deadline passed) or displaced by a higher tier (then woken to be refused at once).
struct Waiter {
  Tier tier = Tier::kStandard;
  int64_t tokens = 0;
  int64_t since_ms = 0;  // when it was queued
  std::atomic<int> state{0};
  std::function<void()> wake;  // called (under no lock) when granted
  std::shared_ptr<void> io;    // the gateway's own (its timer)
};

struct GateView {
  double limit = 0;  // current request limit (adaptive or fixed; 0: none)
  int64_t in_flight = 0, tokens_in_flight = 0;
  std::array<int64_t, 3> waiting{};  // queued now, by tier
  std::array<int64_t, 3> queued{}, shed{}, timed_out{}, admitted{};  // since start, by tier
  int64_t overflowed = 0;
  double baseline_ttft_ms = 0, recent_ttft_ms = 0;
  double drain_per_s = 0;  // completions per second (EWMA)
};

class Gate {
 public:
  explicit Gate(GateSettings s = {}) { set_settings(s); }
  void set_settings(const GateSettings& s);
  GateSettings settings();

  enum class Result { kAdmitted, kQueued, kRefused };
  // Takes a slot for a request of `tier` holding `tokens`, or queues `waiter` (when it is given,
  // the tier may wait and the queue has room), or refuses (not counted: see count_shed).
  Result acquire(Tier tier, int64_t tokens, const std::shared_ptr<Waiter>& waiter, int64_t now_ms);
  // A waiter's deadline passed: true when it gave up (no slot), false when it was granted meanwhile.
  bool give_up(Waiter& w);
  // A request that held a slot finished; `ttft_ms` (< 0: none) feeds the adaptive limit.
  void release(int64_t tokens, double ttft_ms, int64_t now_ms);
  // Counted when a request went to the overflow pool instead, or was refused (shed).
  void count_overflow();
  void count_shed(Tier tier);
  // When a refused request could expect a slot: queue and in-flight over the drain rate.
  int64_t retry_after_ms(int64_t now_ms);
  GateView view();
  // Whether a request of this tier would get a slot now (for choosing an overflow target).
  bool has_room(Tier tier, int64_t tokens);

 private:
  bool fits_locked(Tier tier, int64_t tokens) const;
  void purge_locked();
  void sample_locked(double ttft_ms);
  void grant_waiters_locked(int64_t now_ms, std::vector<std::shared_ptr<Waiter>>& granted);
  // The queue is full: a waiter of a lower tier than `tier` (the newest of the lowest) makes
  // room; nullptr when there is none.
  std::shared_ptr<Waiter> displace_locked(Tier tier);

  std::mutex mu_;
  GateSettings s_;
  double limit_ = 0;
  int64_t in_flight_ = 0, tokens_ = 0;
  std::array<std::deque<std::shared_ptr<Waiter>>, 3> queues_;
  int64_t queued_total_ = 0;
  GateView counters_;
  // Gradient: short and long EWMAs of TTFT.
  double short_rtt_ = 0, long_rtt_ = 0;
  int64_t samples_ = 0;
  // Drain rate: completions counted per 250 ms bucket, smoothed.
  int64_t drain_bucket_ms_ = 0, drain_count_ = 0;
  double drain_rate_ = 0;
};

}  // namespace sluice::admission
