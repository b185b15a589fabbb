// scale/simulate.hpp: replays an LLM request trace (arrival times and token counts, as the
// Azure LLM inference trace) in simulated time against a fleet whose size the autoscaling
// policy (scale/policy.hpp, the same code the gateway runs) decides from a signal:
//  - tokens: the gateway's tokens in flight (every request's prompt + output tokens from
//    arrival to completion, queued work included), target per replica;
//  - cpu: the HPA's CPU-utilization baseline: each replica's utilization is the throughput
//    it served over the sync period divided by its capacity (CPU tracks work done, not work
//    waiting), target 70%.
// The fleet model: a replica processes `capacity_tps` tokens per second shared by its
// requests (processor sharing); a request alone would take prompt/prefill_tps +
// output/decode_tps seconds. When the requests in the system would process more tokens per
// second than the ready replicas can, everyone slows down: that time is "under capacity".
// New replicas become ready `startup_s` after the decision. Pure: no I/O but the trace read.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "scale/policy.hpp"

namespace sluice::scale {

struct TraceRequest {
  double arrival_s = 0;  // since the trace's first request
  int64_t prompt_tokens = 0, output_tokens = 0;
};

// Reads a CSV with TIMESTAMP,ContextTokens,GeneratedTokens (the Azure trace's columns).
// Returns an error text, or "" (then `out` holds the requests in arrival order).
std::string read_trace(const std::string& path, std::vector<TraceRequest>& out);

struct SimOptions {
  double capacity_tps = 2000;   // tokens per second one replica processes
  double prefill_tps = 5000;    // one request's prompt, alone
  double decode_tps = 50;       // one request's output, alone
  double startup_s = 60;        // decision to ready
  double sync_period_s = 15;    // how often the autoscaler decides (the HPA's default)
  double step_s = 0.25;         // simulation step
  double cpu_target = 0.7;      // the baseline's target utilization
  double target_tokens = 0;     // tokens in flight per replica (0: calibrated, see docs)
  Policy policy;                // min/max replicas, tolerance, stabilization windows
};

struct SimResult {
  std::string signal;
  double duration_s = 0;
  double under_capacity_s = 0;  // demand above the ready replicas' capacity
  double replica_hours = 0;     // replicas asked for (starting ones included), integrated
  int scale_events = 0;         // decisions that changed the replica count
  int peak_replicas = 0;
  double p99_slowdown = 0;      // request time / its time alone, 99th percentile
  double mean_slowdown = 0;
  double target = 0;            // the signal's target per replica
};

// The target tokens in flight per replica that matches the CPU target while nothing queues:
// cpu_target x capacity x the token-weighted mean time a request takes alone.
double calibrated_target_tokens(const std::vector<TraceRequest>& trace, const SimOptions& o);

// signal: "tokens" or "cpu".
SimResult simulate(const std::vector<TraceRequest>& trace, const SimOptions& o, const std::string& signal);

}  // namespace sluice::scale
