// rollout/spec.hpp: what a rollout does, as an operator writes it (YAML) and as it is
// stored (JSON). Parsing validates everything up front; the state machine never sees an
// invalid spec.
//
//   strategy: canary              # canary | shadow | blue-green | shadow-canary
//   alpha: 0.01                   # false-rollback budget, split across guardrail gates
//   sticky_header: x-session-id   # used when the request body has no "user"
//   shadow: {share: 0.2, agreement: number, mirror_tools: false}
//   steps:                        # default per strategy when omitted
//     - shadow: 30s
//     - setWeight: 5
//     - pause: 30s
//     - approval: {}
//     - setWeight: 100
//   require_approval_above: 50    # an approval step is inserted before larger weights
//   gates:
//     - error_rate <= stable + 0.005
//     - {check: "p99_ttft_ms < 800", min_samples: 200, max_duration: 10m, on_inconclusive: pause}
//   webhook: http://hooks.example/sluice
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sluice::rollout {

enum class StepKind { kShadow, kSetWeight, kPause, kApproval, kWarm, kAnalysis };
const char* step_name(StepKind k);

struct Step {
  StepKind kind = StepKind::kPause;
  double weight = 0;         // setWeight: percent of live traffic to the candidate
  int64_t duration_ms = 0;   // shadow / pause / analysis: the window before gates may promote
  std::string describe() const;
};

enum class OnInconclusive { kPause, kRollback, kPromote };

// `metric op limit` or `metric op stable [* f] [+|- d]`.
struct Gate {
  std::string check;          // the text as written
  std::string metric;         // error_rate, refusal_rate, cost_per_call, p99_ttft_ms, ...
  bool lower_is_better = true;  // op is < or <=
  bool relative = false;
  double limit = 0;           // absolute limit, or the offset d when relative
  double factor = 1;          // relative: f
  bool guardrail = true;      // a fail rolls back; otherwise it only holds promotion
  bool must_pass = true;      // promotion waits for "pass"; false: the gate only acts on "fail"
  int64_t min_samples = 100;  // per arm
  int64_t max_duration_ms = 30 * 60 * 1000;  // per step: then "inconclusive"
  OnInconclusive on_inconclusive = OnInconclusive::kPause;
};

struct Spec {
  std::string strategy = "canary";
  std::vector<Step> steps;
  std::vector<Gate> gates;
  double alpha = 0.01;
  double effect = 0.1;  // SequentialOptions::effect
  std::string sticky_header = "x-sluice-session";
  double shadow_share = 0.2;
  std::string agreement = "auto";  // auto | exact | normalized | token_set | json | number
  double agreement_token_set = 0.8;
  bool mirror_tools = false;
  int64_t shadow_max_inflight = 32;
  double require_approval_above = 101;  // percent; 101 = never
  std::string webhook;
  std::vector<std::string> smoke;  // blue-green warm-up: request bodies sent to the candidate
};

// Parses YAML (or JSON, which is YAML). Errors name the field: "gates[1]: unknown metric".
std::optional<Spec> parse_spec(const std::string& text, std::string& error);
// Inserts an approval step before every setWeight above `percent` (a route policy or the
// spec's own require_approval_above; the stricter one wins).
void require_approval_above(Spec& s, double percent);
// The default spec of a strategy (used when no file is given).
Spec default_spec(const std::string& strategy);
// Stored form: JSON that parse_spec reads back to the same Spec.
std::string spec_json(const Spec& s);

// Metrics a gate can name. `kind` tells how it is measured.
enum class MetricKind { kProportion, kMean, kQuantile, kShadowProportion, kShadowMean };
struct MetricInfo {
  MetricKind kind;
  std::string base;  // for quantiles: latency_ms or ttft_ms; else the metric itself
  double q = 0;      // quantile level, e.g. 0.99
};
std::optional<MetricInfo> metric_info(const std::string& metric);
// One gate from its text ("error_rate <= stable + 0.01"); false and `error` when malformed.
bool parse_gate(const std::string& text, Gate& g, std::string& error);

}  // namespace sluice::rollout
