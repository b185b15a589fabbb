// The TTFT window (quantiles of the last N seconds from cumulative histograms), hourly
// peaks, the monitor's answers, and the trace replay.
#include "scale/monitor.hpp"
#include "scale/simulate.hpp"
#include "scale/window.hpp"

#include <gtest/gtest.h>

#include <fstream>

namespace sluice::scale {
namespace {

TEST(ScaleWindow, QuantileInterpolatesAsHistogramQuantile) {
  metrics::Histogram h;
  for (int i = 0; i < 100; ++i) h.observe(0.2);  // bucket (0.1, 0.25]
  // rank 99 of 100 in a bucket holding all 100: 0.1 + 0.15 x 0.99
  EXPECT_NEAR(quantile(h, 0.99), 0.1 + 0.15 * 0.99, 1e-9);
  EXPECT_NEAR(quantile(h, 0.5), 0.175, 1e-9);
  EXPECT_LT(quantile(metrics::Histogram{}, 0.99), 0);
  metrics::Histogram slow;
  slow.observe(100);  // +Inf bucket: the highest finite bound
  EXPECT_EQ(quantile(slow, 0.99), 60);
}

TEST(ScaleWindow, RingForgetsWhatLeftTheWindow) {
  HistogramRing ring(60);
  metrics::Histogram cum;
  for (int s = 0; s <= 60; ++s) {
    cum.observe(2.0);  // one slow request per second for a minute
    ring.push(s * 1000, cum);
  }
  EXPECT_NEAR(quantile(ring.recent(), 0.99), 2.5, 0.6);
  for (int s = 61; s <= 200; ++s) {
    for (int k = 0; k < 10; ++k) cum.observe(0.004);  // then fast ones only
    ring.push(s * 1000, cum);
  }
  const metrics::Histogram recent = ring.recent();
  EXPECT_EQ(recent.count, 600u);  // 60 s x 10
  EXPECT_LE(quantile(recent, 0.99), 0.005);
}

TEST(ScaleWindow, HourlyPeaksPerPool) {
  Headroom h(1);
  h.record("gpu", 0, {100, 2, 0});
  h.record("gpu", 1000, {400, 1, 3});
  h.record("gpu", 3600000, {50, 1, 0});
  auto hours = h.hours("gpu");
  ASSERT_EQ(hours.size(), 2u);
  EXPECT_EQ(hours[0].peak.tokens_in_flight, 400);
  EXPECT_EQ(hours[0].peak.requests_in_flight, 2);
  EXPECT_EQ(hours[0].peak.queued, 3);
  for (int i = 2; i < 40; ++i) h.record("gpu", i * 3600000LL, {1, 1, 0});
  EXPECT_EQ(h.hours("gpu").size(), 24u);  // one day kept
}

TEST(ScaleMonitor, AnswersLiveGaugesWithTheLastDecision) {
  Monitor m;
  Policy p;
  p.target_tokens_in_flight = 1000;
  p.max_replicas = 10;
  m.configure(p, 60);
  Reading r;
  r.now_ms = 1000;
  r.total = {3500, 7, 2};
  PoolReading pool;
  pool.name = "gpu";
  pool.load = {3500, 7, 2};
  pool.max_tokens_inflight = 7000;
  r.pools.push_back(pool);
  m.tick(r);
  const std::string js = m.scale_json(r);
  EXPECT_NE(js.find("\"tokens_in_flight\":3500"), std::string::npos) << js;
  EXPECT_NE(js.find("\"queued_requests\":2"), std::string::npos) << js;
  EXPECT_NE(js.find("\"suggested_replicas\":4"), std::string::npos) << js;
  EXPECT_NE(js.find("\"ttft_p99_ms\":null"), std::string::npos) << js;
  const std::string hr = m.headroom_json(r, 7);
  EXPECT_NE(hr.find("\"peak_token_utilization\":0.5"), std::string::npos) << hr;
  EXPECT_NE(hr.find("\"token_headroom\":0.5"), std::string::npos) << hr;
}

TEST(ScaleSimulate, ReadsTheAzureTraceFormat) {
  const std::string path = ::testing::TempDir() + "/trace.csv";
  {
    std::ofstream f(path);
    f << "TIMESTAMP,ContextTokens,GeneratedTokens\n"
         "2023-11-16 23:59:59.5000000,100,10\n"
         "2023-11-17 00:00:00.7500000,200,20\n";
  }
  std::vector<TraceRequest> t;
  ASSERT_EQ(read_trace(path, t), "");
  ASSERT_EQ(t.size(), 2u);
  EXPECT_NEAR(t[1].arrival_s, 1.25, 1e-6);  // across midnight
  EXPECT_EQ(t[1].prompt_tokens, 200);
  {
    std::ofstream f(path);
    f << "TIMESTAMP,ContextTokens,GeneratedTokens\nnot a time,1,2\n";
  }
  t.clear();
  EXPECT_NE(read_trace(path, t).find(":2: bad timestamp"), std::string::npos);
}

// A step from light to heavy load: the CPU baseline sees at most 100% (it grows the fleet by
// 1/0.7 per decision) while tokens in flight count the waiting work and ask for what it needs.
TEST(ScaleSimulate, TokensReactToQueuedWorkFasterThanCpu) {
  std::vector<TraceRequest> trace;
  double t = 0;
  for (; t < 600; t += 0.5) trace.push_back({t, 500, 100});  // 1200 tokens/s
  for (; t < 1800; t += 0.05) trace.push_back({t, 500, 100});  // 12000 tokens/s
  SimOptions o;
  o.capacity_tps = 2000;
  o.policy.max_replicas = 50;
  o.policy.tolerance = 0.1;
  SimResult tok = simulate(trace, o, "tokens"), cpu = simulate(trace, o, "cpu");
  EXPECT_GT(tok.target, 0);
  EXPECT_LT(tok.under_capacity_s, cpu.under_capacity_s);
  EXPECT_GE(tok.peak_replicas, 7);  // 12000 / 2000 = 6 at full use
  EXPECT_GT(cpu.scale_events, 0);
  EXPECT_GT(tok.replica_hours, 0);
}

}  // namespace
}  // namespace sluice::scale
