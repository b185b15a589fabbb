// rollout/evidence.hpp: what a rollout has observed, per arm, as sufficient statistics that
// survive a restart (serialized into the rollout's stored state).
#pragma once
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "rollout/spec.hpp"
#include "stats/sequential.hpp"

namespace sluice::rollout {

// Log-spaced histogram of milliseconds (2% wide buckets from 0.01 ms to ~1 hour): quantiles
// and exceedance counts within 2%.
class LogHistogram {
 public:
  void add(double ms);
  void merge(const LogHistogram& o);
  uint64_t count() const { return total_; }
  uint64_t count_above(double ms) const;  // observations greater than ms
  double quantile(double q) const;        // 0 when empty
  std::string to_json() const;            // sparse: [[bucket,count],...]
  bool from_json(std::string_view json);

 private:
  std::vector<uint64_t> counts_;  // grown on demand
  uint64_t total_ = 0;
};

// One finished request of one arm, as the gateway reports it.
struct Observation {
  bool error = false;          // 5xx, 429, cut stream, timeout
  double latency_ms = 0;
  double ttft_ms = -1;         // streams only
  double tpot_ms = -1;
  double tokens_in = -1;
  double tokens_out = -1;
  double cost = -1;            // -1: no price known
  int refusal = -1;            // -1 unknown, else 0/1
  int schema_valid = -1;       // -1 when the request did not ask for JSON
};

struct ArmEvidence {
  stats::Moments error, latency, ttft, tpot, tokens_in, tokens_out, cost, refusal, schema_valid, feedback;
  LogHistogram latency_h, ttft_h;
  void add(const Observation& o);
  void merge(const ArmEvidence& o);
  // The moments behind a mean/proportion metric; nullptr for quantiles and shadow metrics.
  const stats::Moments* moments(const std::string& metric) const;
  const LogHistogram* histogram(const std::string& base) const;
};

// A mirrored request: the stable answer the user got and the candidate's shadow answer.
struct Disagreement {
  std::string request_id, stable_text, candidate_text;
  double similarity = 0;
};

// [{"request_id","stable","candidate","similarity"},...]
std::string disagreements_json(const std::deque<Disagreement>& kept);

struct ShadowEvidence {
  stats::Moments agreement, latency_delta, cost_delta, refusal_delta;
  std::deque<Disagreement> kept;  // the most recent disagreements, bounded
  static constexpr size_t kKeep = 50;
};

// Evidence of one phase (shadow, or live traffic) of a rollout.
struct Evidence {
  ArmEvidence stable, candidate;
  ShadowEvidence pairs;
  // Adds another replica's evidence (sufficient statistics add up; the most recent
  // disagreements of both are kept, bounded).
  void merge(const Evidence& o);
  std::string to_json() const;
  bool from_json(std::string_view json);
};

}  // namespace sluice::rollout
