// The shared_limits section of the configuration: parsed addresses and modes, clear errors.
#include <gtest/gtest.h>

#include "config/loader.hpp"

namespace sluice::config {
namespace {

LoadResult load(const std::string& y) { return load_string(y, "test.yaml"); }
bool has_error(const LoadResult& r, const std::string& needle) {
  for (const auto& e : r.errors)
    if (e.find(needle) != std::string::npos) return true;
  return false;
}

TEST(SharedLimitsConfig, OffByDefaultParsedWhenSet) {
  EXPECT_FALSE(load("listen: 127.0.0.1:8080\n").config.shared_limits.enabled());
  auto r = load("shared_limits: {redis: 'redis://10.0.0.5:6380', on_unavailable: fail_closed, key_prefix: 'p:', heartbeat_ms: 500}\n");
  ASSERT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0]);
  const SharedLimits& s = r.config.shared_limits;
  EXPECT_TRUE(s.enabled());
  EXPECT_EQ(s.host, "10.0.0.5");
  EXPECT_EQ(s.port, 6380);
  EXPECT_FALSE(s.fail_open);
  EXPECT_EQ(s.key_prefix, "p:");
  EXPECT_EQ(s.heartbeat_ms, 500);
  r = load("shared_limits: {redis: 'redis://cache.internal'}\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config.shared_limits.host, "cache.internal");
  EXPECT_EQ(r.config.shared_limits.port, 6379);
  EXPECT_TRUE(r.config.shared_limits.fail_open);
  r = load("shared_limits: {redis: 'unix:/run/redis.sock'}\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config.shared_limits.unix_path, "/run/redis.sock");
}

TEST(SharedLimitsConfig, BadValuesAreClearErrors) {
  EXPECT_TRUE(has_error(load("shared_limits: {on_unavailable: fail_open}\n"), "needs 'redis'"));
  EXPECT_TRUE(has_error(load("shared_limits: {redis: 'http://x:1'}\n"), "must start with redis://"));
  EXPECT_TRUE(has_error(load("shared_limits: {redis: 'redis://u:pw@x:1'}\n"), "no user, password"));
  EXPECT_TRUE(has_error(load("shared_limits: {redis: 'redis://x:99999'}\n"), "port in 1-65535"));
  EXPECT_TRUE(has_error(load("shared_limits: {redis: 'unix:relative.sock'}\n"), "absolute path"));
  EXPECT_TRUE(has_error(load("shared_limits: {redis: 'redis://x', on_unavailable: maybe}\n"), "fail_open or fail_closed"));
  EXPECT_TRUE(has_error(load("shared_limits: {redis: 'redis://x', slice_fraction: 0.9}\n"), "slice_fraction"));
  EXPECT_FALSE(load("shared_limits: {redis: 'redis://x', typo: 1}\n").ok());
}

}  // namespace
}  // namespace sluice::config
