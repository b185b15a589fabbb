#include <gtest/gtest.h>

#include "upstream/retry.hpp"

namespace sluice::upstream {
namespace {

TEST(RetryBudget, RetriesAreCappedAtTheRatioPlusTheFloor) {
  RetryBudget b({0.2, 1, 10000});
  int64_t t = 50'000;
  for (int i = 0; i < 1000; ++i) b.on_request(t);
  int spent = 0;
  for (int i = 0; i < 1000; ++i) spent += b.try_spend(t) ? 1 : 0;
  EXPECT_EQ(spent, 200 + 10);  // 20% of 1,000 plus 1/s over 10 s
  EXPECT_EQ(b.view(t).refused, 1000 - spent);
}

TEST(RetryBudget, TheWindowSlides) {
  RetryBudget b({0.1, 0, 2000});
  for (int i = 0; i < 100; ++i) b.on_request(0);
  int spent = 0;
  for (int i = 0; i < 100; ++i) spent += b.try_spend(0);
  EXPECT_EQ(spent, 10);
  EXPECT_FALSE(b.try_spend(1000)) << "still inside the window";
  EXPECT_FALSE(b.try_spend(5000)) << "no requests in the new window, no floor";
  for (int i = 0; i < 30; ++i) b.on_request(5000);
  EXPECT_TRUE(b.try_spend(5000));
}

TEST(Backoff, FullJitterStaysUnderTheExponentialCeilingAndTheCap) {
  EXPECT_EQ(backoff_ms(0, 100, 5000, 0.0), 0);
  EXPECT_EQ(backoff_ms(0, 100, 5000, 0.5), 50);
  EXPECT_EQ(backoff_ms(3, 100, 5000, 0.999999), 799);
  EXPECT_EQ(backoff_ms(20, 100, 5000, 0.5), 2500);
}

TEST(RetryAfter, SecondsAndHttpDates) {
  EXPECT_EQ(parse_retry_after("3", 0), 3000);
  EXPECT_EQ(parse_retry_after(" 0.5 ", 0), 500);
  EXPECT_FALSE(parse_retry_after("", 0));
  EXPECT_FALSE(parse_retry_after("-1", 0));
  EXPECT_FALSE(parse_retry_after("soon", 0));
  // Sun, 06 Nov 1994 08:49:37 GMT = 784111777
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111770), 7000);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111800), 0);
}

}  // namespace
}  // namespace sluice::upstream
