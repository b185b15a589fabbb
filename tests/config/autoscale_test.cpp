// The `autoscale` section: what GET /metrics/scale's policy is read from (docs/autoscaling.md).
#include "config/loader.hpp"

#include <gtest/gtest.h>

namespace sluice::config {
namespace {

const std::string kUps = "upstreams:\n  - {name: a, url: 'http://x'}\n";

bool has_error(const LoadResult& r, const std::string& needle) {
  for (const auto& e : r.errors)
    if (e.find(needle) != std::string::npos) return true;
  return false;
}

TEST(ConfigAutoscale, DefaultsAreTheHpaDefaults) {
  auto r = load_string(kUps, "test.yaml");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config.autoscale.target_tokens_in_flight, 0);  // no signal until configured
  EXPECT_EQ(r.config.autoscale.scale_down_stabilization_s, 300);
  EXPECT_EQ(r.config.autoscale.scale_up_stabilization_s, 0);
  EXPECT_DOUBLE_EQ(r.config.autoscale.tolerance, 0.1);
}

TEST(ConfigAutoscale, ReadsEveryKeyAndRefusesNonsense) {
  auto r = load_string(kUps + "autoscale: {target_tokens_in_flight: 2000, target_queue: 4, ttft_p99_slo_ms: 1500, "
                              "ttft_window_s: 30, min_replicas: 2, max_replicas: 9, scale_down_stabilization_s: 120, "
                              "scale_up_stabilization_s: 15, tolerance: 0.2}\n",
                       "test.yaml");
  ASSERT_TRUE(r.ok()) << r.errors[0];
  const Autoscale& a = r.config.autoscale;
  EXPECT_EQ(a.target_tokens_in_flight, 2000);
  EXPECT_EQ(a.target_queue, 4);
  EXPECT_EQ(a.ttft_p99_slo_ms, 1500);
  EXPECT_EQ(a.ttft_window_s, 30);
  EXPECT_EQ(a.min_replicas, 2);
  EXPECT_EQ(a.max_replicas, 9);
  EXPECT_EQ(a.scale_down_stabilization_s, 120);
  EXPECT_EQ(a.scale_up_stabilization_s, 15);
  EXPECT_DOUBLE_EQ(a.tolerance, 0.2);
  EXPECT_TRUE(has_error(load_string(kUps + "autoscale: {min_replicas: 5, max_replicas: 2}\n", "test.yaml"),
                        "'max_replicas' must be at least 'min_replicas'"));
  EXPECT_TRUE(has_error(load_string(kUps + "autoscale: {tolerance: 1.5}\n", "test.yaml"), "'tolerance' must be below 1"));
  EXPECT_TRUE(has_error(load_string(kUps + "autoscale: {target_tokens: 5}\n", "test.yaml"), "target_tokens"));  // a typo
  EXPECT_TRUE(has_error(load_string(kUps + "autoscale: {min_replicas: 0}\n", "test.yaml"), "'min_replicas' must be between"));
}

}  // namespace
}  // namespace sluice::config
