#include "alarm/rules.hpp"

#include <algorithm>
#include <cmath>
#include <regex>
#include <set>

#include <yaml-cpp/yaml.h>

#include "core/error.hpp"

namespace sluice::alarm {

namespace {

std::string at(const std::string& file, const YAML::Node& n) {
  auto m = n.Mark();
  if (m.is_null()) return file;
  return file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

// "30s", "15m", "1h", "7d", "500ms" or a bare number of seconds.
bool duration_ms(const std::string& s, int64_t& out) {
  static const std::regex re(R"(^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)?\s*$)");
  std::smatch m;
  if (!std::regex_match(s, m, re)) return false;
  const std::string u = m[2];
  const double mult = u == "ms" ? 1 : u == "m" ? 60000 : u == "h" ? 3600000 : u == "d" ? 86400000 : 1000;
  out = static_cast<int64_t>(std::llround(std::stod(m[1]) * mult));
  return true;
}

struct Reader {
  const std::string& file;
  std::vector<std::string>& errors;
  void error(const YAML::Node& n, const std::string& msg) { errors.push_back(at(file, n) + ": " + msg); }
  bool scalar(const YAML::Node& n, const char* key, std::string& out) {
    YAML::Node v = n[key];
    if (!v) return false;
    if (!v.IsScalar()) {
      error(v, std::string("'") + key + "' must be a scalar");
      return false;
    }
    out = v.Scalar();
    return true;
  }
  void number(const YAML::Node& n, const char* key, double& out) {
    std::string s;
    if (!scalar(n, key, s)) return;
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0' || !std::isfinite(v)) return error(n[key], std::string("'") + key + "' must be a number");
    out = v;
  }
  void duration(const YAML::Node& n, const char* key, int64_t& out) {
    std::string s;
    if (!scalar(n, key, s)) return;
    if (!duration_ms(s, out)) error(n[key], std::string("'") + key + "' must be a duration such as 30s, 15m, 1h or 7d");
  }
  void keys(const YAML::Node& n, std::initializer_list<const char*> allowed, const char* what) {
    for (auto it = n.begin(); it != n.end(); ++it) {
      const std::string k = it->first.Scalar();
      if (std::find_if(allowed.begin(), allowed.end(), [&](const char* a) { return k == a; }) == allowed.end())
        error(it->first, std::string("unknown key '") + k + "' in " + what);
    }
  }
};

bool read_metric(const std::string& name, Rule& r) {
  static const std::regex q(R"(^(latency|ttft)_p([0-9]{1,2}(?:\.[0-9]+)?)_ms$)");
  std::smatch m;
  if (std::regex_match(name, m, q)) {
    r.metric = m[1] == "latency" ? Metric::kLatencyQ : Metric::kTtftQ;
    r.quantile = std::stod(m[2]) / 100.0;
    return r.quantile > 0 && r.quantile < 1;
  }
  static const std::pair<const char*, Metric> kNames[] = {
      {"error_rate", Metric::kErrorRate},           {"refusal_rate", Metric::kRefusalRate},
      {"cost_usd", Metric::kCostUsd},               {"requests", Metric::kRequests},
      {"tpm_utilization", Metric::kTpmUtilization}, {"cost_growth_wow", Metric::kCostGrowthWow},
      {"burn_rate", Metric::kBurnRate}};
  for (const auto& [n, v] : kNames)
    if (name == n) {
      r.metric = v;
      return true;
    }
  return false;
}

void read_action(Reader& rd, const YAML::Node& a, Rule& r) {
  if (!a.IsMap() || a.size() != 1) return rd.error(a, "an action is a mapping with one key: webhook, rollback, kill or pause_rollout");
  const std::string kind = a.begin()->first.Scalar();
  const YAML::Node v = a.begin()->second;
  Action act;
  act.kind = kind;
  if (kind == "webhook" || kind == "rollback" || kind == "pause_rollout") {
    if (!v.IsScalar() || v.Scalar().empty()) return rd.error(v, "'" + kind + "' needs a " + (kind == "webhook" ? "URL" : "route"));
    act.target = v.Scalar();
    if (kind == "webhook" && act.target.rfind("http://", 0) != 0 && act.target.rfind("https://", 0) != 0)
      return rd.error(v, "a webhook URL starts with http:// or https://");
  } else if (kind == "kill") {
    if (!v.IsMap() || !v["route"] || !v["route"].IsScalar()) return rd.error(v, "'kill' needs {route: R[, mode: block]}");
    rd.keys(v, {"route", "mode"}, "kill");
    act.target = v["route"].Scalar();
    act.mode = "block";
    rd.scalar(v, "mode", act.mode);
    if (act.mode != "off" && act.mode != "block" && act.mode != "fallback" && act.mode != "static")
      return rd.error(v["mode"], "kill mode must be off, block, fallback or static");
  } else {
    return rd.error(a.begin()->first, "unknown action '" + kind + "' (webhook, rollback, kill, pause_rollout)");
  }
  r.actions.push_back(std::move(act));
}

}  // namespace

std::string Action::json() const {
  std::string o = "{\"kind\":";
  append_json_string(o, kind);
  o += ",\"target\":";
  append_json_string(o, target);
  if (!mode.empty()) {
    o += ",\"mode\":";
    append_json_string(o, mode);
  }
  return o + "}";
}

std::string Rule::scope_json() const {
  std::string o = "{";
  auto f = [&](const char* k, const std::string& v) {
    if (v.empty()) return;
    if (o.size() > 1) o += ",";
    o += "\"" + std::string(k) + "\":";
    append_json_string(o, v);
  };
  f("route", scope.route);
  f("release", scope.release);
  f("tenant", scope.tenant);
  f("upstream", scope.upstream);
  return o + "}";
}

bool Rule::breaches(double v) const {
  if (std::isnan(v)) return false;
  if (op == ">") return v > threshold;
  if (op == ">=") return v >= threshold;
  if (op == "<") return v < threshold;
  return v <= threshold;
}

bool Rule::cleared(double v) const {
  if (std::isnan(v)) return false;
  if (clear == threshold) return !breaches(v);
  return op[0] == '>' ? v < clear : v > clear;  // strictly past the clear level
}

std::vector<Rule> parse_rules(const YAML::Node& seq, const std::string& file, std::vector<std::string>& errors) {
  std::vector<Rule> out;
  Reader rd{file, errors};
  if (!seq.IsSequence()) {
    rd.error(seq, "'alarms' must be a sequence of rules");
    return out;
  }
  std::set<std::string> names;
  for (const YAML::Node& n : seq) {
    if (!n.IsMap()) {
      rd.error(n, "an alarm rule must be a mapping");
      continue;
    }
    const size_t errors_before = errors.size();
    rd.keys(n, {"name", "metric", "scope", "window", "op", "threshold", "for", "clear", "clear_for", "min_requests",
                "actions", "objective", "short_window", "tpm_limit"},
            "an alarm rule");
    Rule r;
    r.where = at(file, n);
    if (!rd.scalar(n, "name", r.name) || r.name.empty()) rd.error(n, "an alarm rule needs a 'name'");
    else if (!names.insert(r.name).second) rd.error(n["name"], "alarm '" + r.name + "' is defined twice");
    if (!rd.scalar(n, "metric", r.metric_name)) rd.error(n, "alarm '" + r.name + "' needs a 'metric'");
    else if (!read_metric(r.metric_name, r))
      rd.error(n["metric"], "unknown metric '" + r.metric_name +
                                "' (error_rate, refusal_rate, latency_pNN_ms, ttft_pNN_ms, cost_usd, requests, "
                                "tpm_utilization, cost_growth_wow, burn_rate)");
    if (YAML::Node s = n["scope"]) {
      if (!s.IsMap()) {
        rd.error(s, "'scope' must be a mapping of route, release, tenant, upstream");
      } else {
        rd.keys(s, {"route", "release", "tenant", "upstream"}, "scope");
        rd.scalar(s, "route", r.scope.route);
        rd.scalar(s, "release", r.scope.release);
        rd.scalar(s, "tenant", r.scope.tenant);
        rd.scalar(s, "upstream", r.scope.upstream);
      }
    }
    if (r.metric == Metric::kBurnRate) r.window_ms = 3600000;
    if (r.metric == Metric::kCostGrowthWow) r.window_ms = 86400000;
    rd.duration(n, "window", r.window_ms);
    if (r.window_ms <= 0 || r.window_ms > 7 * 86400000LL) rd.error(n["window"] ? n["window"] : n, "'window' must be above 0 and at most 7d");
    if (r.metric == Metric::kCostGrowthWow && r.window_ms > 86400000)
      rd.error(n["window"], "cost_growth_wow compares at most a day with the same day a week earlier (window <= 1d)");
    if (r.metric != Metric::kBurnRate && r.metric != Metric::kCostGrowthWow && r.window_ms > Sampler::kFineKeepS * 1000 &&
        r.window_ms % 3600000 != 0)
      rd.error(n["window"], "a window above 1h is read from hourly buckets: use whole hours");
    rd.scalar(n, "op", r.op);
    if (r.op != ">" && r.op != ">=" && r.op != "<" && r.op != "<=") rd.error(n["op"], "'op' must be >, >=, < or <=");
    if (!n["threshold"]) rd.error(n, "alarm '" + r.name + "' needs a 'threshold'");
    rd.number(n, "threshold", r.threshold);
    r.clear = r.threshold;
    rd.number(n, "clear", r.clear);
    if ((r.op[0] == '>' && r.clear > r.threshold) || (r.op[0] == '<' && r.clear < r.threshold))
      rd.error(n["clear"], "'clear' must be on the healthy side of the threshold (hysteresis)");
    rd.duration(n, "for", r.for_ms);
    rd.duration(n, "clear_for", r.clear_for_ms);
    double minr = 0;
    rd.number(n, "min_requests", minr);
    if (minr < 0) rd.error(n["min_requests"], "'min_requests' must be >= 0");
    r.min_requests = static_cast<uint64_t>(std::max(0.0, minr));
    rd.number(n, "tpm_limit", r.tpm_limit);
    if (r.metric == Metric::kBurnRate) {
      rd.number(n, "objective", r.objective);
      if (!(r.objective > 0 && r.objective < 1)) rd.error(n["objective"], "'objective' must be between 0 and 1 (e.g. 0.999)");
      rd.duration(n, "short_window", r.short_window_ms);
      if (r.short_window_ms <= 0 || r.short_window_ms >= r.window_ms)
        rd.error(n["short_window"] ? n["short_window"] : n, "'short_window' must be shorter than 'window'");
    } else if (n["objective"] || n["short_window"]) {
      rd.error(n["objective"] ? n["objective"] : n["short_window"], "'objective' and 'short_window' belong to burn_rate");
    }
    if (r.metric == Metric::kTpmUtilization && r.scope.tenant.empty() && r.tpm_limit <= 0)
      rd.error(n, "tpm_utilization needs a tenant scope (its tpm limit) or 'tpm_limit'");
    if (YAML::Node as = n["actions"]) {
      if (!as.IsSequence()) rd.error(as, "'actions' must be a sequence");
      else
        for (const YAML::Node& a : as) read_action(rd, a, r);
    }
    if (errors.size() == errors_before) out.push_back(std::move(r));
  }
  return out;
}

std::vector<Rule> parse_rules_text(const std::string& text, const std::string& file, std::vector<std::string>& errors) {
  if (text.size() > (1 << 20)) {
    errors.push_back(file + ": alarm rules above 1 MiB");
    return {};
  }
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    errors.push_back(file + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) + ": " + e.msg);
    return {};
  }
  if (!root.IsMap() || !root["alarms"]) {
    errors.push_back(file + ": expected a top-level 'alarms:' sequence");
    return {};
  }
  return parse_rules(root["alarms"], file, errors);
}

std::vector<std::string> refusal_routes(const std::vector<Rule>& rules) {
  std::set<std::string> out;
  for (const Rule& r : rules)
    if (r.metric == Metric::kRefusalRate) out.insert(r.scope.route.empty() ? "*" : r.scope.route);
  if (out.count("*")) return {"*"};
  return {out.begin(), out.end()};
}

}  // namespace sluice::alarm
