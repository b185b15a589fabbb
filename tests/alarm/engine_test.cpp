#include "alarm/engine.hpp"

#include <gtest/gtest.h>

#include <cmath>

using namespace sluice;
using namespace sluice::alarm;

namespace {
Rule rule(const std::string& text) {
  std::vector<std::string> errs;
  auto rs = parse_rules_text("alarms:\n  - " + text + "\n", "t.yaml", errs);
  EXPECT_TRUE(errs.empty()) << (errs.empty() ? "" : errs[0]);
  return rs.empty() ? Rule{} : rs[0];
}
Engine engine_with(const Rule& r) {
  Engine e;
  e.set_rules({r});
  return e;
}
}  // namespace

TEST(Engine, PendingThenFiringAfterFor) {
  Engine e = engine_with(rule("{name: r, metric: error_rate, threshold: 0.1, for: 30s}"));
  EXPECT_FALSE(e.step(0, 0.2, 1000));
  EXPECT_EQ(e.statuses()[0].state, State::kPending);
  EXPECT_FALSE(e.step(0, 0.2, 20'000));
  auto t = e.step(0, 0.2, 31'000);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->kind, Transition::kFire);
  EXPECT_EQ(e.statuses()[0].state, State::kFiring);
  EXPECT_EQ(e.statuses()[0].fired_count, 1u);
  // A dip while pending cancels it: the next breach waits the whole `for` again.
  Engine e2 = engine_with(rule("{name: r, metric: error_rate, threshold: 0.1, for: 30s}"));
  e2.step(0, 0.2, 0);
  e2.step(0, 0.05, 10'000);
  EXPECT_EQ(e2.statuses()[0].state, State::kOk);
  EXPECT_FALSE(e2.step(0, 0.2, 35'000));
  EXPECT_EQ(e2.statuses()[0].state, State::kPending);
}

TEST(Engine, AValueOscillatingAroundTheThresholdFiresOnceAndDoesNotFlap) {
  Engine e = engine_with(rule("{name: r, metric: refusal_rate, threshold: 0.05, for: 10s, clear: 0.04, clear_for: 20s}"));
  int fires = 0, resolves = 0, state_changes = 0;
  State last = State::kOk;
  // Every second for 10 minutes: 0.049, 0.051, 0.049, ... around the threshold, above clear.
  for (int64_t t = 0; t < 600; ++t) {
    const double v = t % 2 ? 0.051 : 0.049;
    if (t == 20) {
      // a sustained breach first, so the alarm fires
      for (int64_t u = 0; u <= 10; ++u) {
        if (auto tr = e.step(0, 0.08, (t + u) * 1000)) tr->kind == Transition::kFire ? ++fires : ++resolves;
      }
      t += 10;
      last = e.statuses()[0].state;
      continue;
    }
    if (auto tr = e.step(0, v, t * 1000)) tr->kind == Transition::kFire ? ++fires : ++resolves;
    if (e.statuses()[0].state != last && t > 31) ++state_changes;
    last = e.statuses()[0].state;
  }
  EXPECT_EQ(fires, 1);
  EXPECT_EQ(resolves, 0);
  EXPECT_EQ(state_changes, 0);
  EXPECT_EQ(e.statuses()[0].state, State::kFiring);
  // Before it ever fired, the same oscillation never leaves pending for long enough: no firing.
  Engine e2 = engine_with(rule("{name: r, metric: refusal_rate, threshold: 0.05, for: 10s, clear: 0.04}"));
  for (int64_t t = 0; t < 600; ++t) EXPECT_FALSE(e2.step(0, t % 2 ? 0.051 : 0.049, t * 1000));
  EXPECT_EQ(e2.statuses()[0].fired_count, 0u);
}

TEST(Engine, ResolvesOnlyBelowClearForClearFor) {
  Engine e = engine_with(rule("{name: r, metric: error_rate, threshold: 0.1, clear: 0.05, clear_for: 20s}"));
  ASSERT_TRUE(e.step(0, 0.2, 0));  // for: 0 fires at once
  EXPECT_FALSE(e.step(0, 0.04, 1000));
  EXPECT_FALSE(e.step(0, 0.06, 15'000));  // back above clear: the clear timer restarts
  EXPECT_FALSE(e.step(0, 0.04, 16'000));
  EXPECT_FALSE(e.step(0, std::nan(""), 30'000));  // no data holds the state
  EXPECT_EQ(e.statuses()[0].state, State::kFiring);
  auto t = e.step(0, 0.04, 36'000);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->kind, Transition::kResolve);
  EXPECT_EQ(e.statuses()[0].state, State::kOk);
  // A new breach is a new firing, its actions run again.
  ASSERT_TRUE(e.step(0, 0.3, 40'000));
  EXPECT_EQ(e.statuses()[0].fired_count, 2u);
}

TEST(Engine, LowerIsWorseRules) {
  Engine e = engine_with(rule("{name: r, metric: requests, op: '<', threshold: 10, clear: 20}"));
  ASSERT_TRUE(e.step(0, 5, 0));
  EXPECT_FALSE(e.step(0, 15, 1000));
  EXPECT_TRUE(e.step(0, 25, 2000));
}

namespace {
std::string key(const std::string& route, const std::string& tenant = "") {
  return route + "\x1frel\x1f" + tenant + "\x1fup";
}
metrics::Totals totals(uint64_t n, uint64_t errors, uint64_t tokens = 0, double cost = 0) {
  metrics::Totals t;
  t.requests = n;
  t.errors = errors;
  t.tokens_in = tokens;
  t.cost_usd = cost;
  return t;
}
}  // namespace

TEST(Engine, ValuesFromTheSampler) {
  Sampler s;
  const int64_t t0 = 1'000'000'000'000;
  s.observe(t0, {{key("chat", "acme"), totals(100, 3, 60'000, 1.0)}});
  Rule er = rule("{name: e, metric: error_rate, threshold: 0.1, window: 1m, min_requests: 200}");
  EXPECT_TRUE(std::isnan(Engine::value(er, s, t0, {})));  // below min_requests: no data
  er.min_requests = 50;
  EXPECT_DOUBLE_EQ(Engine::value(er, s, t0, {}), 0.03);
  Rule tpm = rule("{name: t, metric: tpm_utilization, threshold: 0.7, window: 1m, scope: {tenant: acme}}");
  Inputs in;
  in.tenant_tpm = [](const std::string& t) { return t == "acme" ? 100'000.0 : 0.0; };
  EXPECT_DOUBLE_EQ(Engine::value(tpm, s, t0, in), 0.6);
  EXPECT_TRUE(std::isnan(Engine::value(tpm, s, t0, {})));  // no limit known
  Rule cost = rule("{name: c, metric: cost_usd, threshold: 5, window: 5m}");
  EXPECT_DOUBLE_EQ(Engine::value(cost, s, t0, {}), 1.0);
}

TEST(Engine, BurnRateNeedsBothWindows) {
  Rule r = rule("{name: b, metric: burn_rate, objective: 0.99, window: 1h, short_window: 5m, threshold: 14.4}");
  Sampler s;
  const int64_t t0 = 1'000'000'000'000;
  // 40 minutes ago: a burst of errors (20%), since then clean traffic.
  s.observe(t0, {{key("chat"), totals(1000, 200)}});
  s.observe(t0 + 40 * 60'000, {{key("chat"), totals(1100, 200)}});
  // long window error rate 200/1100 = 18% -> burn 18; short window clean -> min is 0.
  EXPECT_DOUBLE_EQ(Engine::value(r, s, t0 + 40 * 60'000, {}), 0.0);
  // errors again now: short window 50% -> burn 50; long (400/1200=33%) -> 33. min = 33.
  s.observe(t0 + 41 * 60'000, {{key("chat"), totals(1200, 250)}});
  const double v = Engine::value(r, s, t0 + 41 * 60'000, {});
  EXPECT_NEAR(v, 250.0 / 1200.0 / 0.01, 1e-9);
  Engine e = engine_with(r);
  auto fired = e.evaluate(s, t0 + 41 * 60'000);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].kind, Transition::kFire);
}

TEST(Engine, CostGrowthWeekOverWeek) {
  Rule r = rule("{name: w, metric: cost_growth_wow, threshold: 0.2, window: 1d}");
  Sampler s;
  const int64_t day = 86'400'000, t0 = 1'000'000'000'000 - 1'000'000'000'000 % 3'600'000;
  s.observe(t0, {{key("chat"), totals(10, 0, 0, 10.0)}});
  s.observe(t0 + 7 * day, {{key("chat"), totals(20, 0, 0, 23.0)}});
  EXPECT_NEAR(Engine::value(r, s, t0 + 7 * day + 1000, {}), 0.3, 1e-9);
  // A longer memory (the store's daily spend) takes precedence.
  Inputs in;
  in.spend = [&](const Scope&, int64_t from, int64_t) -> std::optional<double> { return from > t0 + day ? 11.0 : 10.0; };
  EXPECT_NEAR(Engine::value(r, s, t0 + 7 * day + 1000, in), 0.1, 1e-9);
}

TEST(Engine, KeepsStateAcrossAReloadOfTheSameRuleAndReportsIt) {
  Engine e = engine_with(rule("{name: r, metric: error_rate, threshold: 0.1, actions: [{rollback: chat}]}"));
  ASSERT_TRUE(e.step(0, 0.5, 1000));
  e.note_action(0, e.rules()[0].actions[0], "ok", 1001);
  e.note_action(0, e.rules()[0].actions[0], "failed: no route", 1002);
  std::vector<Rule> again = e.rules();
  e.set_rules(again);
  EXPECT_EQ(e.statuses()[0].state, State::kFiring);
  const std::string js = e.json();
  EXPECT_NE(js.find("\"state\":\"firing\",\"since_ms\":1000,\"value\":0.5"), std::string::npos) << js;
  EXPECT_NE(js.find("\"last_action\":{\"kind\":\"rollback\",\"target\":\"chat\",\"outcome\":\"failed: no route\""),
            std::string::npos)
      << js;
  const std::string prom = e.prometheus();
  EXPECT_NE(prom.find("sluice_alarm_state{alarm=\"r\"} 2"), std::string::npos) << prom;
  EXPECT_NE(prom.find("sluice_alarm_actions_total{alarm=\"r\",action=\"rollback\",outcome=\"failed\"} 1"), std::string::npos);
  EXPECT_NE(prom.find("sluice_alarm_actions_total{alarm=\"r\",action=\"rollback\",outcome=\"ok\"} 1"), std::string::npos);
  // A changed threshold is a new rule: it starts over.
  again[0].threshold = 0.6;
  e.set_rules(again);
  EXPECT_EQ(e.statuses()[0].state, State::kOk);
}
