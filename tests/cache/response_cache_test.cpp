#include <gtest/gtest.h>

#include "cache/response_cache.hpp"

namespace sluice::cache {
namespace {

TEST(ResponseCache, HitsUntilTheTtlThenMisses) {
  ResponseCache c(1 << 20);
  EXPECT_FALSE(c.get("k", 0));
  c.put("k", "answer", 0, 1000);
  EXPECT_EQ(*c.get("k", 999), "answer");
  EXPECT_FALSE(c.get("k", 1000));
  Stats s = c.stats();
  EXPECT_EQ(s.hits, 1);
  EXPECT_EQ(s.misses, 2);
  EXPECT_EQ(s.expired, 1);
  EXPECT_EQ(s.entries, 0);
  EXPECT_EQ(s.bytes, 0);
}

TEST(ResponseCache, EvictsTheLeastRecentlyUsedWithinTheMemoryBound) {
  ResponseCache c(4000);
  std::string kb(900, 'x');
  c.put("a", kb, 0, 60000);
  c.put("b", kb, 0, 60000);
  c.put("c", kb, 0, 60000);
  ASSERT_TRUE(c.get("a", 1));  // a is now the most recently used
  c.put("d", kb, 0, 60000);    // over 4000 bytes: b goes first
  c.put("e", kb, 0, 60000);
  EXPECT_TRUE(c.get("a", 2));
  EXPECT_FALSE(c.get("b", 2));
  EXPECT_LE(c.stats().bytes, 4000);
  EXPECT_GE(c.stats().evictions, 1);
  c.put("huge", std::string(2000, 'y'), 0, 60000);  // over a quarter of the cache: not kept
  EXPECT_FALSE(c.get("huge", 3));
}

TEST(ResponseCache, KeysSeparateTenantsAndRoutes) {
  EXPECT_NE(cache_key("t1", "r", "{}"), cache_key("t2", "r", "{}"));
  EXPECT_NE(cache_key("", "r1", "{}"), cache_key("", "r2", "{}"));
  EXPECT_EQ(cache_key("t", "r", "{\"a\":1}"), cache_key("t", "r", "{\"a\":1}"));
  EXPECT_NE(cache_key("t", "r", "{\"a\":1}"), cache_key("t", "r", "{\"a\":2}"));
  EXPECT_NE(cache_key("t\x1fr", "", "{}"), cache_key("t", "r", "{}")) << "the separator keeps fields apart";
}

}  // namespace
}  // namespace sluice::cache
