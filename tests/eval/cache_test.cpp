#include "eval/cache.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace sluice::eval {
namespace {

TEST(Cache, PutGetAcrossOpens) {
  char tmpl[] = "/tmp/sluice-cache-test-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string path = dir + "/eval-cache.db";
  std::string err;
  {
    auto c = Cache::open(path, err);
    ASSERT_TRUE(c) << err;
    EXPECT_FALSE(c->get("rel_a", "h1", 0));
    EXPECT_EQ(c->put({{"rel_a", "h1", 0, "{\"text\":\"x\"}"}, {"rel_a", "h1", 1, "y"}, {"rel_b", "h1", 0, "z"}}), "");
    EXPECT_EQ(*c->get("rel_a", "h1", 0), "{\"text\":\"x\"}");
    EXPECT_EQ(c->put({{"rel_a", "h1", 0, "replaced"}}), "");
  }
  auto c = Cache::open(path, err);
  ASSERT_TRUE(c);
  EXPECT_EQ(*c->get("rel_a", "h1", 0), "replaced");
  EXPECT_EQ(*c->get("rel_a", "h1", 1), "y");
  EXPECT_EQ(*c->get("rel_b", "h1", 0), "z");
  EXPECT_FALSE(c->get("rel_b", "h1", 1));
  EXPECT_FALSE(Cache::open("/nonexistent-dir/x.db", err));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sluice::eval
