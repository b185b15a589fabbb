#include "core/strings.hpp"
#include "rollout/spec.hpp"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <regex>

#include "core/error.hpp"
#include "release/canonical.hpp"

namespace sluice::rollout {

const char* step_name(StepKind k) {
  switch (k) {
    case StepKind::kShadow: return "shadow";
    case StepKind::kSetWeight: return "setWeight";
    case StepKind::kPause: return "pause";
    case StepKind::kApproval: return "approval";
    case StepKind::kWarm: return "warm";
    case StepKind::kAnalysis: return "analysis";
  }
  return "?";
}

namespace {

std::string fmt_duration(int64_t ms) {
  if (ms % 3600000 == 0 && ms) return std::to_string(ms / 3600000) + "h";
  if (ms % 60000 == 0 && ms) return std::to_string(ms / 60000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string fmt_num(double v) { return num_text(v, 6); }

// "30s", "10m", "1h", "500ms" or a bare number of seconds.
std::optional<int64_t> parse_duration(const std::string& s) {
  static const std::regex re(R"(^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)?\s*$)");
  std::smatch m;
  if (!std::regex_match(s, m, re)) return std::nullopt;
  double v = std::stod(m[1]);
  std::string u = m[2];
  double mult = u == "ms" ? 1 : u == "m" ? 60000 : u == "h" ? 3600000 : 1000;
  return static_cast<int64_t>(std::llround(v * mult));
}

}  // namespace

bool parse_gate(const std::string& text, Gate& g, std::string& error) {
  // metric op (number[unit] | stable [* f] [+|- d])
  static const std::regex re(
      R"(^\s*([a-z0-9_]+)\s*(<=|<|>=|>)\s*(?:(stable)\s*(?:\*\s*([0-9.eE+-]+))?\s*(?:([+-])\s*([0-9.eE+-]+)\s*(ms|s)?)?|([0-9.eE+-]+)\s*(ms|s|%)?)\s*$)");
  std::smatch m;
  if (!std::regex_match(text, m, re)) {
    error = "cannot read '" + text + "': expected 'METRIC OP LIMIT' or 'METRIC OP stable [* F] [+|- D]'";
    return false;
  }
  g.check = text;
  g.metric = m[1];
  if (!metric_info(g.metric)) {
    error = "unknown metric '" + g.metric + "'";
    return false;
  }
  std::string op = m[2];
  g.lower_is_better = op[0] == '<';
  auto unit_scale = [&](const std::string& unit) {
    if (unit == "s") return 1000.0;  // limits are in ms for time metrics
    if (unit == "%") return 0.01;
    return 1.0;
  };
  if (m[3].matched) {
    g.relative = true;
    g.factor = m[4].matched ? std::stod(m[4]) : 1.0;
    g.limit = 0;
    if (m[5].matched) {
      g.limit = std::stod(m[6]) * unit_scale(m[7]);
      if (m[5] == "-") g.limit = -g.limit;
    }
  } else {
    g.limit = std::stod(m[8]) * unit_scale(m[9]);
  }
  if (g.factor <= 0) {
    error = "'" + text + "': the factor must be positive";
    return false;
  }
  return true;
}

void require_approval_above(Spec& s, double percent) {
  s.require_approval_above = std::min(s.require_approval_above, percent);
  if (s.require_approval_above > 100) return;
  std::vector<Step> out;
  for (const Step& st : s.steps) {
    if (st.kind == StepKind::kSetWeight && st.weight > s.require_approval_above &&
        (out.empty() || out.back().kind != StepKind::kApproval))
      out.push_back({StepKind::kApproval, 0, 0});
    out.push_back(st);
  }
  s.steps = std::move(out);
}

std::string Step::describe() const {
  switch (kind) {
    case StepKind::kSetWeight: return "setWeight " + fmt_num(weight);
    case StepKind::kApproval: return "approval";
    case StepKind::kWarm: return "warm";
    default: return std::string(step_name(kind)) + " " + fmt_duration(duration_ms);
  }
}

std::optional<MetricInfo> metric_info(const std::string& m) {
  if (m == "error_rate" || m == "refusal_rate" || m == "schema_valid_rate") return MetricInfo{MetricKind::kProportion, m};
  if (m == "latency_ms" || m == "ttft_ms" || m == "tpot_ms" || m == "tokens_in" || m == "tokens_out" || m == "cost_per_call" ||
      m == "feedback_mean")
    return MetricInfo{MetricKind::kMean, m};
  if (m == "shadow_agreement") return MetricInfo{MetricKind::kShadowProportion, m};
  if (m == "shadow_latency_delta_ms" || m == "shadow_cost_delta" || m == "shadow_refusal_delta")
    return MetricInfo{MetricKind::kShadowMean, m};
  static const std::regex q(R"(^p(50|90|95|99)_(latency_ms|ttft_ms)$)");
  std::smatch mm;
  if (std::regex_match(m, mm, q)) return MetricInfo{MetricKind::kQuantile, mm[2], std::stod(mm[1]) / 100.0};
  return std::nullopt;
}

Spec default_spec(const std::string& strategy) {
  Spec s;
  s.strategy = strategy;
  auto w = [](double v) { return Step{StepKind::kSetWeight, v, 0}; };
  auto p = [](int64_t ms) { return Step{StepKind::kPause, 0, ms}; };
  if (strategy == "shadow") {
    s.steps = {{StepKind::kShadow, 0, 10 * 60000}};
  } else if (strategy == "blue-green") {
    s.steps = {{StepKind::kWarm, 0, 0}, w(100), {StepKind::kAnalysis, 0, 5 * 60000}};
  } else if (strategy == "shadow-canary") {
    s.steps = {{StepKind::kShadow, 0, 10 * 60000}, w(1), p(10 * 60000), w(5), p(10 * 60000), w(25), p(10 * 60000),
               w(50), p(10 * 60000), w(100)};
  } else {
    s.steps = {w(1), p(10 * 60000), w(5), p(10 * 60000), w(25), p(10 * 60000), w(50), p(10 * 60000), w(100)};
  }
  std::string err;
  for (const char* g : {"error_rate <= stable + 0.01", "p99_ttft_ms <= stable * 1.2 + 50"}) {
    Gate gate;
    parse_gate(g, gate, err);
    s.gates.push_back(gate);
  }
  // Proving a p99 holds takes thousands of requests: by default it only acts on a fail.
  s.gates.back().must_pass = false;
  return s;
}

std::optional<Spec> parse_spec(const std::string& text, std::string& error) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    error = "line " + std::to_string(e.mark.line + 1) + ": " + e.msg;
    return std::nullopt;
  }
  if (!root.IsMap()) {
    error = "a rollout spec must be a mapping";
    return std::nullopt;
  }
  try {
    std::string strategy = root["strategy"] ? root["strategy"].as<std::string>() : "canary";
    if (strategy != "canary" && strategy != "shadow" && strategy != "blue-green" && strategy != "shadow-canary") {
      error = "strategy: '" + strategy + "' is not one of canary, shadow, blue-green, shadow-canary";
      return std::nullopt;
    }
    Spec s = default_spec(strategy);
    if (root["alpha"]) s.alpha = root["alpha"].as<double>();
    if (!(s.alpha > 0 && s.alpha < 0.5)) {
      error = "alpha: must be between 0 and 0.5";
      return std::nullopt;
    }
    if (root["effect"]) s.effect = root["effect"].as<double>();
    if (root["sticky_header"]) {
      s.sticky_header = root["sticky_header"].as<std::string>();
      for (char& c : s.sticky_header) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (root["webhook"]) s.webhook = root["webhook"].as<std::string>();
    if (!s.webhook.empty() && s.webhook.rfind("http://", 0) != 0 && s.webhook.rfind("https://", 0) != 0) {
      error = "webhook: must be an http:// or https:// URL";
      return std::nullopt;
    }
    if (root["require_approval_above"]) s.require_approval_above = root["require_approval_above"].as<double>();
    if (auto sh = root["shadow"]) {
      if (sh["share"]) s.shadow_share = sh["share"].as<double>();
      if (sh["agreement"]) s.agreement = sh["agreement"].as<std::string>();
      if (sh["agreement_token_set"]) s.agreement_token_set = sh["agreement_token_set"].as<double>();
      if (sh["mirror_tools"]) s.mirror_tools = sh["mirror_tools"].as<bool>();
      if (sh["max_inflight"]) s.shadow_max_inflight = sh["max_inflight"].as<int64_t>();
      static const char* kinds[] = {"auto", "exact", "normalized", "token_set", "json", "number"};
      bool ok = false;
      for (const char* k : kinds) ok = ok || s.agreement == k;
      if (!ok) {
        error = "shadow.agreement: '" + s.agreement + "' is not one of auto, exact, normalized, token_set, json, number";
        return std::nullopt;
      }
      if (!(s.shadow_share > 0 && s.shadow_share <= 1)) {
        error = "shadow.share: must be in (0, 1]";
        return std::nullopt;
      }
    }
    if (auto sm = root["smoke"]) {
      // A body written as a YAML map or list is sent as JSON (YAML::Dump would send YAML).
      for (const auto& b : sm)
        s.smoke.push_back(b.IsScalar() ? b.as<std::string>() : release::to_json(release::from_yaml(b)));
    }
    if (auto steps = root["steps"]) {
      if (!steps.IsSequence()) {
        error = "steps: must be a list";
        return std::nullopt;
      }
      s.steps.clear();
      for (size_t i = 0; i < steps.size(); ++i) {
        const YAML::Node& n = steps[i];
        std::string where = "steps[" + std::to_string(i) + "]";
        if (!n.IsMap() || n.size() != 1) {
          error = where + ": expected one of setWeight: N, pause: DURATION, shadow: DURATION, approval: {}, warm: {}, "
                          "analysis: DURATION";
          return std::nullopt;
        }
        std::string key = n.begin()->first.as<std::string>();
        YAML::Node v = n.begin()->second;  // the iterator hands out a temporary: copy it
        Step st;
        auto duration = [&](StepKind k) -> bool {
          st.kind = k;
          std::string d = v.IsMap() ? (v["duration"] ? v["duration"].as<std::string>() : "0s") : v.as<std::string>();
          auto ms = parse_duration(d);
          if (!ms) {
            error = where + ": '" + d + "' is not a duration (e.g. 30s, 10m, 500ms)";
            return false;
          }
          st.duration_ms = *ms;
          return true;
        };
        if (key == "setWeight") {
          st.kind = StepKind::kSetWeight;
          st.weight = v.as<double>();
          if (!(st.weight >= 0 && st.weight <= 100)) {
            error = where + ": setWeight must be between 0 and 100";
            return std::nullopt;
          }
        } else if (key == "pause") {
          if (!duration(StepKind::kPause)) return std::nullopt;
        } else if (key == "shadow") {
          if (!duration(StepKind::kShadow)) return std::nullopt;
        } else if (key == "analysis") {
          if (!duration(StepKind::kAnalysis)) return std::nullopt;
        } else if (key == "approval") {
          st.kind = StepKind::kApproval;
        } else if (key == "warm") {
          st.kind = StepKind::kWarm;
        } else {
          error = where + ": unknown step '" + key + "'";
          return std::nullopt;
        }
        s.steps.push_back(st);
      }
      if (s.steps.empty()) {
        error = "steps: at least one step is needed";
        return std::nullopt;
      }
    }
    if (auto gates = root["gates"]) {
      if (!gates.IsSequence()) {
        error = "gates: must be a list";
        return std::nullopt;
      }
      s.gates.clear();
      for (size_t i = 0; i < gates.size(); ++i) {
        const YAML::Node& n = gates[i];
        std::string where = "gates[" + std::to_string(i) + "]";
        Gate g;
        std::string check = n.IsMap() ? (n["check"] ? n["check"].as<std::string>() : "") : n.as<std::string>();
        std::string err;
        if (!parse_gate(check, g, err)) {
          error = where + ": " + err;
          return std::nullopt;
        }
        if (n.IsMap()) {
          if (n["guardrail"]) g.guardrail = n["guardrail"].as<bool>();
          if (n["must_pass"]) g.must_pass = n["must_pass"].as<bool>();
          if (n["min_samples"]) g.min_samples = n["min_samples"].as<int64_t>();
          if (n["max_duration"]) {
            auto ms = parse_duration(n["max_duration"].as<std::string>());
            if (!ms || *ms <= 0) {
              error = where + ".max_duration: not a duration";
              return std::nullopt;
            }
            g.max_duration_ms = *ms;
          }
          if (n["on_inconclusive"]) {
            std::string v = n["on_inconclusive"].as<std::string>();
            if (v == "pause") g.on_inconclusive = OnInconclusive::kPause;
            else if (v == "rollback") g.on_inconclusive = OnInconclusive::kRollback;
            else if (v == "promote") g.on_inconclusive = OnInconclusive::kPromote;
            else {
              error = where + ".on_inconclusive: '" + v + "' is not one of pause, rollback, promote";
              return std::nullopt;
            }
          }
        }
        if (g.min_samples < 10) g.min_samples = 10;
        s.gates.push_back(g);
      }
    }
    require_approval_above(s, s.require_approval_above);
    return s;
  } catch (const YAML::Exception& e) {
    error = "line " + std::to_string(e.mark.line + 1) + ": " + e.msg;
    return std::nullopt;
  } catch (const std::exception& e) {
    error = e.what();
    return std::nullopt;
  }
}

std::string spec_json(const Spec& s) {
  std::string o = "{\"strategy\":";
  append_json_string(o, s.strategy);
  o += ",\"alpha\":" + fmt_num(s.alpha) + ",\"effect\":" + fmt_num(s.effect);
  o += ",\"sticky_header\":";
  append_json_string(o, s.sticky_header);
  o += ",\"webhook\":";
  append_json_string(o, s.webhook);
  o += ",\"shadow\":{\"share\":" + fmt_num(s.shadow_share) + ",\"agreement\":";
  append_json_string(o, s.agreement);
  o += ",\"agreement_token_set\":" + fmt_num(s.agreement_token_set);
  o += ",\"mirror_tools\":" + std::string(s.mirror_tools ? "true" : "false");
  o += ",\"max_inflight\":" + std::to_string(s.shadow_max_inflight) + "}";
  o += ",\"smoke\":[";
  for (size_t i = 0; i < s.smoke.size(); ++i) {
    if (i) o += ",";
    append_json_string(o, s.smoke[i]);
  }
  o += "],\"steps\":[";
  for (size_t i = 0; i < s.steps.size(); ++i) {
    const Step& st = s.steps[i];
    if (i) o += ",";
    switch (st.kind) {
      case StepKind::kSetWeight: o += "{\"setWeight\":" + fmt_num(st.weight) + "}"; break;
      case StepKind::kApproval: o += "{\"approval\":{}}"; break;
      case StepKind::kWarm: o += "{\"warm\":{}}"; break;
      default: o += "{\"" + std::string(step_name(st.kind)) + "\":\"" + std::to_string(st.duration_ms) + "ms\"}";
    }
  }
  o += "],\"gates\":[";
  for (size_t i = 0; i < s.gates.size(); ++i) {
    const Gate& g = s.gates[i];
    if (i) o += ",";
    o += "{\"check\":";
    append_json_string(o, g.check);
    o += ",\"guardrail\":" + std::string(g.guardrail ? "true" : "false");
    o += ",\"must_pass\":" + std::string(g.must_pass ? "true" : "false");
    o += ",\"min_samples\":" + std::to_string(g.min_samples);
    o += ",\"max_duration\":\"" + std::to_string(g.max_duration_ms) + "ms\"";
    o += ",\"on_inconclusive\":\"";
    o += g.on_inconclusive == OnInconclusive::kPause ? "pause" : g.on_inconclusive == OnInconclusive::kRollback ? "rollback" : "promote";
    o += "\"}";
  }
  o += "]}";  // approvals are already expanded into steps: require_approval_above is not repeated
  return o;
}

}  // namespace sluice::rollout
