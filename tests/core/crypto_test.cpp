#include "core/crypto.hpp"

#include <gtest/gtest.h>

#include "core/ids.hpp"

namespace sluice {

TEST(Sha256, KnownVector) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(RandomToken, PrefixedAndUnique) {
  auto a = random_token("sk-", 16), b = random_token("sk-", 16);
  EXPECT_EQ(a.substr(0, 3), "sk-");
  EXPECT_EQ(a.size(), 3u + 32u);
  EXPECT_NE(a, b);
}

TEST(ConstantTimeEquals, ComparesContentAndLength) {
  EXPECT_TRUE(constant_time_equals("abc", "abc"));
  EXPECT_FALSE(constant_time_equals("abc", "abd"));
  EXPECT_FALSE(constant_time_equals("abc", "abcd"));
}

TEST(RequestIds, UniqueAndWellFormed) {
  RequestIdGenerator g(3);
  auto a = g.next(), b = g.next();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), 24u);
  EXPECT_EQ(a.substr(0, 4), "req_");
}

}  // namespace sluice
