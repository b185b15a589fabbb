// scale/policy.hpp: how many replicas a load signal asks for, as the Kubernetes HPA decides
// (pure: no clock, no I/O; the caller passes the time).
//
// Each signal is a total over the fleet and a target per replica. A signal's desired count is
// ceil(total / target), unless total / (target x current) is within `tolerance` of 1 (then
// the current count stays: no churn on noise). Latency-like signals (`up_only`, the TTFT SLO)
// never argue for fewer replicas: above target x (1 + tolerance) they ask for
// ceil(current x ratio), at most twice the current count per decision. The count wanted is
// the largest any signal asks for, within [min_replicas, max_replicas], then stabilized as
// the HPA's `behavior` does: scaling down goes only as low as the highest recommendation of
// the last scale_down_stabilization_s, scaling up only as high as the lowest recommendation
// of the last scale_up_stabilization_s.
#pragma once
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace sluice::scale {

struct Policy {
  double target_tokens_in_flight = 0;  // per replica (0: signal unused)
  double target_queue = 0;             // queued requests per replica (0: unused)
  double ttft_p99_slo_ms = 0;          // p99 TTFT above this asks for more (0: unused)
  int min_replicas = 1, max_replicas = 100;
  int64_t scale_down_stabilization_s = 300, scale_up_stabilization_s = 0;
  double tolerance = 0.1;
};

struct Signal {
  std::string name;
  double total = 0;   // over the whole fleet (a gauge summed over pods, or a fleet quantile)
  double target = 0;  // per replica (for up_only: the threshold itself); <= 0: ignored
  bool up_only = false;
};

// One signal's wish: the replica count, or -1 when it has no opinion.
int desired_for(const Signal& s, int current, double tolerance);

struct Decision {
  int replicas = 0;  // after stabilization: what to run
  int raw = 0;       // the largest signal's wish within [min, max], before stabilization
  std::vector<std::pair<std::string, int>> by_signal;  // each signal's wish (-1: none)
};

// Stateful part: the recommendations of the stabilization windows and the current count.
class Recommender {
 public:
  explicit Recommender(Policy p = {});
  // Replaces the policy (a config reload) keeping the history.
  void set_policy(const Policy& p);
  const Policy& policy() const { return p_; }
  // The count to run given the signals at `now_ms`; `current` (< 1: the last decision) is the
  // count running now.
  Decision decide(const std::vector<Signal>& signals, int64_t now_ms, int current = 0);
  int current() const { return current_; }

 private:
  Policy p_;
  int current_ = 0;
  std::deque<std::pair<int64_t, int>> recs_;  // (time, raw recommendation), oldest first
};

// The policy's signals for fleet totals: tokens in flight, queued requests, p99 TTFT (< 0: none).
std::vector<Signal> signals_of(const Policy& p, double tokens_in_flight, double queued, double ttft_p99_ms);

}  // namespace sluice::scale
