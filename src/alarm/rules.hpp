// alarm/rules.hpp: alarm rules as an operator writes them (the `alarms:` section of the gateway
// config, docs/alarms.md), read with file:line:column errors.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace YAML {
class Node;
}

#include "alarm/series.hpp"

namespace sluice::alarm {

enum class Metric {
  kErrorRate,       // errors / requests
  kRefusalRate,     // refusals / answers checked
  kLatencyQ,        // latency_pNN_ms: a quantile of end-to-end latency
  kTtftQ,           // ttft_pNN_ms
  kCostUsd,         // spend over the window
  kRequests,        // requests over the window
  kTpmUtilization,  // tokens per minute over the window / the limit (the tenant's tpm, or `tpm_limit`)
  kCostGrowthWow,   // spend over the window / the same window a week earlier - 1
  kBurnRate,        // error-budget burn rate, min over the long and the short window
};

struct Action {
  std::string kind;    // webhook | rollback | kill | pause_rollout
  std::string target;  // the URL (webhook) or the route
  std::string mode;    // kill: off | block | fallback | static (default block)
  std::string json() const;
};

struct Rule {
  std::string name;
  std::string metric_name;  // as written
  Metric metric = Metric::kErrorRate;
  double quantile = 0.99;   // kLatencyQ, kTtftQ
  Scope scope;
  int64_t window_ms = 300000;
  std::string op = ">";
  double threshold = 0;
  int64_t for_ms = 0;        // the condition holds this long before firing (pending meanwhile)
  double clear = 0;          // resolves only once the value is back past this (hysteresis)
  int64_t clear_for_ms = 0;  // ...for this long
  uint64_t min_requests = 0;  // fewer requests in the window: no data (the state holds)
  double tpm_limit = 0;       // kTpmUtilization: the limit, when the scope is not a tenant with one
  // kBurnRate: objective (e.g. 0.999), long and short windows; threshold is the burn factor.
  double objective = 0.999;
  int64_t short_window_ms = 300000;
  std::vector<Action> actions;
  std::string where;  // file:line:col of the rule
  std::string scope_json() const;
  // The value breaches the threshold / is back past the clear level.
  bool breaches(double v) const;
  bool cleared(double v) const;
};

// Reads a sequence of rules (the value of `alarms:`). Errors carry file:line:col.
std::vector<Rule> parse_rules(const YAML::Node& seq, const std::string& file, std::vector<std::string>& errors);
// A whole YAML text with a top-level `alarms:` key (tests, tools).
std::vector<Rule> parse_rules_text(const std::string& text, const std::string& file, std::vector<std::string>& errors);

// Routes whose answers must be checked for refusals (a refusal_rate rule scoped to them);
// "*" when some refusal rule is not scoped to one route.
std::vector<std::string> refusal_routes(const std::vector<Rule>& rules);

}  // namespace sluice::alarm
