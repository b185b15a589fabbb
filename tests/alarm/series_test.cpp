#include "alarm/series.hpp"

#include <gtest/gtest.h>

#include <cmath>

using namespace sluice;
using namespace sluice::alarm;

namespace {
std::string key(const std::string& route, const std::string& rel, const std::string& tenant = "", const std::string& up = "u") {
  return route + '\x1f' + rel + '\x1f' + tenant + '\x1f' + up;
}
// Cumulative totals with n requests, e errors, latency each `lat_s`.
metrics::Totals cum(uint64_t n, uint64_t e, double lat_s = 0.1, uint64_t refusals = 0) {
  metrics::Totals t;
  t.requests = n;
  t.errors = e;
  t.refusal_checked = n;
  t.refusals = refusals;
  t.cost_usd = 0.001 * static_cast<double>(n);
  for (uint64_t i = 0; i < n; ++i) t.latency.observe(lat_s);
  return t;
}
}  // namespace

TEST(Series, SplitsKeys) {
  SeriesKey k = split_series_key(key("chat", "rel_a", "acme", "openai"));
  EXPECT_EQ(k.route, "chat");
  EXPECT_EQ(k.release, "rel_a");
  EXPECT_EQ(k.tenant, "acme");
  EXPECT_EQ(k.upstream, "openai");
  Scope s{"chat", "", "acme", ""};
  EXPECT_TRUE(s.matches(k));
  s.tenant = "other";
  EXPECT_FALSE(s.matches(k));
}

TEST(Series, WindowsAddDifferencesOfCumulativeCounts) {
  Sampler smp;
  const int64_t t0 = 1'000'000'000'000;  // ms, a multiple of 10 s
  smp.observe(t0, {{key("chat", "a"), cum(10, 1)}});
  smp.observe(t0 + 20'000, {{key("chat", "a"), cum(30, 1)}});
  smp.observe(t0 + 600'000, {{key("chat", "a"), cum(40, 6)}});
  // Over the last minute: only the last 10 requests (5 errors).
  metrics::Totals w = smp.window(Scope{"chat"}, t0 + 600'000, 60'000);
  EXPECT_EQ(w.requests, 10u);
  EXPECT_EQ(w.errors, 5u);
  // Over 15 minutes: all 40, including the first bucket.
  w = smp.window(Scope{}, t0 + 600'000, 900'000);
  EXPECT_EQ(w.requests, 40u);
  EXPECT_EQ(w.errors, 6u);
  EXPECT_NEAR(w.cost_usd, 0.04, 1e-9);
  // Other routes see nothing.
  EXPECT_EQ(smp.window(Scope{"other"}, t0 + 600'000, 900'000).requests, 0u);
}

TEST(Series, OldBucketsLeaveTheFineRingButStayHourly) {
  Sampler smp;
  const int64_t t0 = 1'000'000'800'000;
  smp.observe(t0, {{key("chat", "a"), cum(5, 0)}});
  smp.observe(t0 + 2 * 3600'000, {{key("chat", "a"), cum(7, 0)}});
  EXPECT_EQ(smp.window(Scope{}, t0 + 2 * 3600'000, 3600'000).requests, 2u);
  EXPECT_EQ(smp.hourly(Scope{}, t0 - 3600'000, t0 + 3 * 3600'000).requests, 7u);
  EXPECT_EQ(smp.window(Scope{}, t0 + 2 * 3600'000, 3 * 3600'000).requests, 7u);  // > 1h: hourly buckets
}

TEST(Series, QuantilesComeFromMergedHistograms) {
  Sampler smp;
  const int64_t t0 = 1'000'000'000'000;
  // 90 fast requests in one bucket, 10 slow ones in another: p99 is slow, p50 fast.
  smp.observe(t0, {{key("chat", "a"), cum(90, 0, 0.02)}});
  metrics::Totals c = cum(90, 0, 0.02);
  for (int i = 0; i < 10; ++i) c.latency.observe(3.0);
  c.requests = 100;
  smp.observe(t0 + 10'000, {{key("chat", "a"), c}});
  metrics::Totals w = smp.window(Scope{}, t0 + 10'000, 60'000);
  EXPECT_EQ(w.latency.count, 100u);
  const double p50 = quantile_ms(w.latency, 0.5), p99 = quantile_ms(w.latency, 0.99);
  EXPECT_GT(p50, 10.0);
  EXPECT_LE(p50, 25.0);
  EXPECT_GT(p99, 2500.0);
  EXPECT_LE(p99, 5000.0);
  EXPECT_TRUE(std::isnan(quantile_ms(metrics::Histogram{}, 0.5)));
}

TEST(Series, RouteSeriesJsonHasOneSeriesPerRelease) {
  Sampler smp;
  const int64_t t0 = 1'000'000'000'000;
  smp.observe(t0, {{key("chat", "rel_a", "t1"), cum(10, 2, 0.1, 1)}, {key("chat", "rel_a", "t2"), cum(10, 0)},
                   {key("chat", "rel_b"), cum(4, 0)}, {key("other", "rel_c"), cum(4, 0)}});
  std::string js = smp.route_series_json("chat", t0 + 5000, 600);
  EXPECT_NE(js.find("\"route\":\"chat\",\"step_s\":10"), std::string::npos) << js;
  EXPECT_NE(js.find("{\"release\":\"rel_a\",\"points\":[{\"t\":1000000000,\"requests\":20,\"errors\":2,\"error_rate\":0.1,"
                    "\"refusal_rate\":0.05"),
            std::string::npos)
      << js;
  EXPECT_NE(js.find("\"release\":\"rel_b\""), std::string::npos);
  EXPECT_EQ(js.find("rel_c"), std::string::npos);
  EXPECT_NE(js.find("\"cost_per_call_usd\":0.001"), std::string::npos) << js;
}

TEST(Series, ARestartedCounterCountsFromZero) {
  Sampler smp;
  const int64_t t0 = 1'000'000'000'000;
  smp.observe(t0, {{key("chat", "a"), cum(50, 0)}});
  smp.observe(t0 + 10'000, {{key("chat", "a"), cum(3, 3)}});
  metrics::Totals w = smp.window(Scope{}, t0 + 10'000, 60'000);
  EXPECT_EQ(w.requests, 53u);
  EXPECT_EQ(w.errors, 3u);
}
