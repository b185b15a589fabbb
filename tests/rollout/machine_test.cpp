#include <gtest/gtest.h>

#include <random>

#include "rollout/machine.hpp"

using namespace sluice::rollout;

namespace {

Spec spec_of(const std::string& yaml) {
  std::string err;
  auto s = parse_spec(yaml, err);
  EXPECT_TRUE(s) << err;
  return s ? *s : Spec{};
}

// Feeds `n` requests per arm with the given error rates into the live evidence.
void feed(State& st, int n_stable, double p_stable, int n_cand, double p_cand, std::mt19937& rng) {
  std::bernoulli_distribution s(p_stable), c(p_cand);
  for (int i = 0; i < n_stable; ++i) st.live.stable.add({s(rng), 100});
  for (int i = 0; i < n_cand; ++i) st.live.candidate.add({c(rng), 100});
}

}  // namespace

TEST(RolloutMachine, CanaryPromotesOnEvidenceAndCompletes) {
  Spec spec = spec_of(R"(
steps: [{setWeight: 10}, {pause: 10s}, {setWeight: 100}]
gates: [{check: "error_rate <= stable + 0.05", min_samples: 50}]
)");
  State st;
  std::mt19937 rng(7);
  Decision d = begin(spec, st, 0);
  EXPECT_TRUE(d.weights_changed);
  EXPECT_EQ(st.weight, 10);
  EXPECT_EQ(st.step, 1u);  // setWeight has no window: straight to the pause
  feed(st, 2000, 0.01, 2000, 0.01, rng);
  d = advance(spec, st, 5000);  // window not over yet
  EXPECT_EQ(st.step, 1u);
  EXPECT_EQ(st.gates.at(0).verdict, "pass");
  d = advance(spec, st, 10001);
  EXPECT_TRUE(d.finished);
  EXPECT_EQ(st.status, Status::kCompleted);
  EXPECT_TRUE(st.promoted);
  EXPECT_EQ(st.weight, 100);
}

TEST(RolloutMachine, GuardrailRollsBackAtOnceEvenWhilePaused) {
  Spec spec = spec_of(R"(
steps: [{setWeight: 5}, {pause: 1h}, {setWeight: 100}]
gates: [{check: "error_rate <= stable + 0.005", min_samples: 50}]
)");
  State st;
  std::mt19937 rng(1);
  begin(spec, st, 0);
  apply_command(spec, st, "pause", "alice", "looking", 10);
  EXPECT_EQ(st.status, Status::kPaused);
  feed(st, 4000, 0.01, 800, 0.30, rng);
  Decision d = advance(spec, st, 20);
  EXPECT_TRUE(d.rolled_back);
  EXPECT_EQ(st.status, Status::kAborted);
  EXPECT_EQ(st.weight, 0);
  ASSERT_FALSE(d.events.empty());
  EXPECT_EQ(d.events.back().kind, "rollback");
  EXPECT_NE(st.reason.find("error_rate"), std::string::npos);
}

TEST(RolloutMachine, InconclusivePausesForAHuman) {
  Spec spec = spec_of(R"(
steps: [{setWeight: 5}, {pause: 1s}, {setWeight: 100}]
gates: [{check: "error_rate <= stable", min_samples: 20, max_duration: 5s}]
)");
  State st;
  std::mt19937 rng(3);
  begin(spec, st, 0);
  feed(st, 500, 0.02, 100, 0.02, rng);  // no difference: "<= stable" can never be proven
  advance(spec, st, 2000);
  EXPECT_EQ(st.status, Status::kRunning);
  advance(spec, st, 6000);
  EXPECT_EQ(st.status, Status::kPaused);
  EXPECT_NE(st.reason.find("inconclusive"), std::string::npos);
  apply_command(spec, st, "promote", "bob", "checked by hand", 7000);
  EXPECT_EQ(st.status, Status::kCompleted);
}

TEST(RolloutMachine, ApprovalWaitsForApprove) {
  Spec spec = spec_of(R"(
require_approval_above: 50
steps: [{setWeight: 20}, {setWeight: 100}]
gates: []
)");
  State st;
  begin(spec, st, 0);
  EXPECT_EQ(st.status, Status::kAwaitingApproval);
  EXPECT_EQ(st.weight, 20);
  advance(spec, st, 100000);
  EXPECT_EQ(st.status, Status::kAwaitingApproval);
  apply_command(spec, st, "resume", "x", "", 100001);  // resume does not approve
  EXPECT_EQ(st.status, Status::kAwaitingApproval);
  // Nor does promote (issue 17): refused, said so in the timeline, weight unchanged.
  Decision refused = apply_command(spec, st, "promote", "mallory", "", 100001);
  EXPECT_EQ(st.status, Status::kAwaitingApproval);
  EXPECT_EQ(st.weight, 20);
  EXPECT_FALSE(refused.finished);
  ASSERT_EQ(refused.events.size(), 1u);
  EXPECT_EQ(refused.events[0].kind, "refused");
  Decision d = apply_command(spec, st, "approve", "carol", "signed off", 100002);
  EXPECT_TRUE(d.finished);
  EXPECT_TRUE(st.promoted);
}

TEST(RolloutMachine, ShadowGatesUseShadowEvidenceAndNeverSendLiveTraffic) {
  Spec spec = spec_of(R"(
strategy: shadow-canary
steps: [{shadow: 5s}, {setWeight: 10}, {pause: 5s}]
gates: [{check: "refusal_rate <= stable + 0.05", min_samples: 50}]
)");
  State st;
  begin(spec, st, 0);
  EXPECT_EQ(st.weight, 0);
  EXPECT_GT(st.shadow_share, 0);
  for (int i = 0; i < 400; ++i) {
    Observation s{false, 100}, c{false, 120};
    s.refusal = i % 50 == 0;  // 2%
    c.refusal = i % 3 == 0;   // 33%
    st.shadow.stable.add(s);
    st.shadow.candidate.add(c);
  }
  Decision d = advance(spec, st, 1000);
  EXPECT_TRUE(d.rolled_back);
  EXPECT_EQ(st.weight, 0);
  EXPECT_EQ(st.shadow_share, 0);
}

TEST(RolloutMachine, BlueGreenWarmsThenFlipsAndAnalyses) {
  Spec spec = spec_of(R"(
strategy: blue-green
steps: [{warm: {}}, {setWeight: 100}, {analysis: 5s}]
gates: [{check: "error_rate < 0.1", min_samples: 30}, "latency_ms <= stable * 1.5"]
)");
  State st;
  Decision d = begin(spec, st, 0);
  EXPECT_TRUE(d.needs_warm);
  EXPECT_EQ(st.status, Status::kWarming);
  EXPECT_EQ(st.weight, 0);
  d = warm_result(spec, st, "", 10);
  EXPECT_EQ(st.weight, 100);
  for (int i = 0; i < 200; ++i) st.live.candidate.add({i % 4 == 0, 100});  // 25% errors
  d = advance(spec, st, 20);
  EXPECT_TRUE(d.rolled_back);  // flips back to blue
  EXPECT_EQ(st.weight, 0);
  // The relative gate has no stable traffic to compare with while green takes everything.
  EXPECT_EQ(st.gates.at(1).verdict, "n/a");

  State st2;
  begin(spec, st2, 0);
  d = warm_result(spec, st2, "GET /models: status 503", 5);
  EXPECT_TRUE(d.rolled_back);
  EXPECT_NE(st2.reason.find("503"), std::string::npos);
}

TEST(RolloutMachine, StateRoundTripsThroughJson) {
  Spec spec = spec_of("steps: [{setWeight: 25}, {pause: 1m}]\ngates: [\"p99_latency_ms < 500\"]");
  State st;
  begin(spec, st, 1234);
  std::mt19937 rng(5);
  std::lognormal_distribution<double> lat(5, 0.5);
  for (int i = 0; i < 1000; ++i) {
    Observation o{false, lat(rng)};
    o.refusal = i % 10 == 0;
    o.cost = 0.001;
    st.live.candidate.add(o);
    st.live.stable.add(o);
  }
  st.live.candidate.feedback.add(1);
  st.shadow.pairs.kept.push_back({"req_1", "a \"quoted\" answer", "b", 0.25});
  advance(spec, st, 5000);
  State back;
  ASSERT_TRUE(back.from_json(st.to_json()));
  EXPECT_EQ(back.step, st.step);
  EXPECT_EQ(back.weight, 25);
  EXPECT_EQ(back.step_started_ms, st.step_started_ms);
  EXPECT_EQ(back.live.candidate.error.n, 1000);
  EXPECT_DOUBLE_EQ(back.live.candidate.latency.sum, st.live.candidate.latency.sum);
  EXPECT_EQ(back.live.candidate.latency_h.count(), 1000u);
  EXPECT_DOUBLE_EQ(back.live.candidate.latency_h.quantile(0.99), st.live.candidate.latency_h.quantile(0.99));
  EXPECT_EQ(back.live.candidate.feedback.n, 1);
  ASSERT_EQ(back.shadow.pairs.kept.size(), 1u);
  EXPECT_EQ(back.shadow.pairs.kept[0].stable_text, "a \"quoted\" answer");
  ASSERT_EQ(back.gates.size(), 1u);
  EXPECT_EQ(back.gates[0].verdict, st.gates[0].verdict);
  EXPECT_FALSE(back.from_json("{not json"));
}

TEST(RolloutEvidence, HistogramQuantilesWithinTwoPercent) {
  LogHistogram h;
  for (int i = 1; i <= 10000; ++i) h.add(i * 0.1);  // 0.1 .. 1000 ms, uniform
  EXPECT_NEAR(h.quantile(0.5), 500, 500 * 0.02);
  EXPECT_NEAR(h.quantile(0.99), 990, 990 * 0.02);
  EXPECT_NEAR(static_cast<double>(h.count_above(900)), 1000, 1000 * 0.03);
  EXPECT_EQ(h.count_above(5000), 0u);
  EXPECT_EQ(h.count_above(0.001), 10000u);
  LogHistogram empty;
  EXPECT_EQ(empty.quantile(0.5), 0);
}

TEST(RolloutMachine, GatesThatNeedNotPassDoNotHoldTheStep) {
  // A p99 gate needs thousands of samples to *prove* it holds; as a pure guardrail it only
  // acts on a fail. An undecided must-pass gate holds the step even when another gate's
  // inconclusive verdict is set to promote.
  Spec spec = spec_of(R"(
steps: [{setWeight: 10}, {pause: 1s}, {setWeight: 100}]
gates:
  - {check: "p99_latency_ms <= 5000", must_pass: false, min_samples: 20}
  - {check: "error_rate <= stable + 0.01", min_samples: 20, max_duration: 2s, on_inconclusive: promote}
  - {check: "feedback_mean >= stable - 0.05", min_samples: 20}
)");
  State st;
  std::mt19937 rng(11);
  begin(spec, st, 0);
  feed(st, 300, 0.0, 60, 0.0, rng);
  advance(spec, st, 3000);
  EXPECT_EQ(st.gates.at(1).verdict, "inconclusive");
  EXPECT_EQ(st.gates.at(2).verdict, "collecting");  // no feedback yet: holds the step
  EXPECT_EQ(st.status, Status::kRunning);
  EXPECT_EQ(st.step, 1u);
  for (int i = 0; i < 2000; ++i) {
    st.live.stable.feedback.add(i % 2);
    st.live.candidate.feedback.add(i % 3 != 0);
  }
  advance(spec, st, 3100);
  EXPECT_EQ(st.gates.at(2).verdict, "pass");
  EXPECT_EQ(st.status, Status::kCompleted);
}

// Issue 9: the rollout's alpha is split across its guardrail gates (a Bonferroni split), so
// the chance that any guardrail raises a false rollback stays at or below alpha. Each gate's
// confidence and its interval show the split; a copy that forgot to split passed every test
// before this one.
TEST(RolloutMachine, AlphaIsSplitAcrossGuardrailGates) {
  auto confidences = [](const std::string& gates) {
    Spec spec = spec_of("alpha: 0.04\nsteps: [{setWeight: 10}, {pause: 60s}]\ngates: " + gates + "\n");
    State st;
    begin(spec, st, 0);
    std::mt19937 rng(3);
    feed(st, 400, 0.02, 400, 0.02, rng);
    advance(spec, st, 1000);
    std::vector<double> out;
    for (const auto& g : st.gates) out.push_back(g.confidence);
    return std::make_pair(out, st.gates);
  };
  auto [one, g1] = confidences(R"([{check: "error_rate <= stable + 0.05", guardrail: true}])");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_NEAR(one[0], 0.96, 1e-12);
  auto [four, g4] = confidences(R"([
    {check: "error_rate <= stable + 0.05", guardrail: true},
    {check: "latency_ms <= stable * 1.5", guardrail: true},
    {check: "tokens_out <= stable * 2", guardrail: true},
    {check: "cost_per_call <= stable * 2", guardrail: true}])");
  ASSERT_EQ(four.size(), 4u);
  for (double c : four) EXPECT_NEAR(c, 0.99, 1e-12);
  // The split widens each interval: the same evidence, a wider (more careful) interval.
  EXPECT_GT(g4[0].hi - g4[0].lo, g1[0].hi - g1[0].lo);
}
