#include "alarm/rules.hpp"

#include <gtest/gtest.h>

using namespace sluice::alarm;

namespace {
std::vector<Rule> parse(const std::string& text, std::vector<std::string>& errors) {
  errors.clear();
  return parse_rules_text(text, "g.yaml", errors);
}
}  // namespace

TEST(Rules, ReadsAFullRule) {
  std::vector<std::string> errs;
  auto rules = parse(R"(alarms:
  - name: refusal-spike
    metric: refusal_rate
    scope: {route: chat}
    window: 15m
    op: ">"
    threshold: 0.05
    for: 1m
    clear: 0.04
    clear_for: 2m
    min_requests: 20
    actions: [{webhook: "http://h/x"}, {rollback: chat}, {kill: {route: chat, mode: static}}, {pause_rollout: chat}]
  - name: slow
    metric: ttft_p95_ms
    threshold: 800
  - name: budget
    metric: burn_rate
    objective: 0.999
    window: 1h
    short_window: 5m
    threshold: 14.4
)",
                     errs);
  ASSERT_TRUE(errs.empty()) << errs[0];
  ASSERT_EQ(rules.size(), 3u);
  const Rule& r = rules[0];
  EXPECT_EQ(r.metric, Metric::kRefusalRate);
  EXPECT_EQ(r.scope.route, "chat");
  EXPECT_EQ(r.window_ms, 900000);
  EXPECT_EQ(r.for_ms, 60000);
  EXPECT_EQ(r.clear_for_ms, 120000);
  EXPECT_DOUBLE_EQ(r.clear, 0.04);
  EXPECT_EQ(r.min_requests, 20u);
  ASSERT_EQ(r.actions.size(), 4u);
  EXPECT_EQ(r.actions[0].kind, "webhook");
  EXPECT_EQ(r.actions[2].mode, "static");
  EXPECT_EQ(r.actions[3].target, "chat");
  EXPECT_EQ(r.where, "g.yaml:2:5");
  EXPECT_EQ(rules[1].metric, Metric::kTtftQ);
  EXPECT_DOUBLE_EQ(rules[1].quantile, 0.95);
  EXPECT_DOUBLE_EQ(rules[1].clear, 800);  // clear defaults to the threshold
  EXPECT_EQ(rules[2].short_window_ms, 300000);
  EXPECT_EQ(refusal_routes(rules), std::vector<std::string>{"chat"});
}

TEST(Rules, ErrorsCarryLineAndColumn) {
  std::vector<std::string> errs;
  auto rules = parse(R"(alarms:
  - name: a
    metric: refusal_ratio
    threshold: 1
  - name: b
    metric: error_rate
    threshold: 0.1
    clear: 0.2
    window: 10 minutes
    actions: [{page: me}]
  - name: b
    metric: error_rate
    threshold: x
    sope: {route: chat}
)",
                     errs);
  EXPECT_TRUE(rules.empty());
  auto has = [&](const std::string& s) {
    for (const auto& e : errs)
      if (e.find(s) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(has("g.yaml:3:13: unknown metric 'refusal_ratio'"));
  EXPECT_TRUE(has("g.yaml:8:12: 'clear' must be on the healthy side"));
  EXPECT_TRUE(has("g.yaml:9:13: 'window' must be a duration"));
  EXPECT_TRUE(has("g.yaml:10:16: unknown action 'page'"));
  EXPECT_TRUE(has("g.yaml:11:11: alarm 'b' is defined twice"));
  EXPECT_TRUE(has("g.yaml:13:16: 'threshold' must be a number"));
  EXPECT_TRUE(has("g.yaml:14:5: unknown key 'sope'"));
}

TEST(Rules, RefusesWhatCannotBeEvaluated) {
  std::vector<std::string> errs;
  parse("alarms:\n  - {name: t, metric: tpm_utilization, threshold: 0.7}\n", errs);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_NE(errs[0].find("tpm_utilization needs a tenant scope"), std::string::npos);
  parse("alarms:\n  - {name: b, metric: burn_rate, threshold: 14, window: 5m, short_window: 10m}\n", errs);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_NE(errs[0].find("'short_window' must be shorter"), std::string::npos);
  parse("alarms:\n  - {name: w, metric: cost_growth_wow, threshold: 0.2, window: 2d}\n", errs);
  ASSERT_EQ(errs.size(), 1u);
  parse("alarms: {name: x}\n", errs);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0], "g.yaml:1:9: 'alarms' must be a sequence of rules");
  parse("alarms:\n  - {name: w, metric: error_rate, threshold: 0.2, actions: [{webhook: ftp://x}]}\n", errs);
  ASSERT_EQ(errs.size(), 1u);
}

TEST(Rules, AnUnscopedRefusalRuleChecksEveryRoute) {
  std::vector<std::string> errs;
  auto rules = parse(R"(alarms:
  - {name: a, metric: refusal_rate, threshold: 0.1, scope: {route: chat}}
  - {name: b, metric: refusal_rate, threshold: 0.1, scope: {tenant: acme}}
)",
                     errs);
  ASSERT_TRUE(errs.empty());
  EXPECT_EQ(refusal_routes(rules), std::vector<std::string>{"*"});
  EXPECT_TRUE(refusal_routes({}).empty());
}
