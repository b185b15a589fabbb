// Reserve at admission, reconcile at completion: limits hold under concurrency.
#include "admission/limiter.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace sluice::admission {
namespace {

TEST(Limiter, RequestsPerMinuteRefuseAndSayWhenToComeBack) {
  LocalLimiter l;
  Limits lim{3, 0, 0};
  for (int i = 0; i < 3; ++i) {
    Decision d = l.reserve(lim, 10, 1000);
    ASSERT_TRUE(d.admitted) << i;
    EXPECT_EQ(d.requests.remaining, 2 - i);
    l.reconcile(lim, 10, 10, 1000);
  }
  Decision d = l.reserve(lim, 10, 1000);
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.why, Decision::Why::kRequests);
  EXPECT_EQ(d.retry_after_ms, 20000);  // one request refills every 60 s / 3
  EXPECT_FALSE(l.reserve(lim, 10, 20999).admitted);
  EXPECT_TRUE(l.reserve(lim, 10, 21000).admitted);
}

TEST(Limiter, ConcurrentRequestsCannotOvershootTheTokenLimit) {
  // Five requests of 40 tokens at once against 100 TPM: counting after each response would
  // admit all five (200); reserving admits two.
  LocalLimiter l;
  Limits lim{0, 100, 0};
  int admitted = 0;
  for (int i = 0; i < 5; ++i) admitted += l.reserve(lim, 40, 0).admitted ? 1 : 0;
  EXPECT_EQ(admitted, 2);
  Decision refused = l.reserve(lim, 40, 0);
  EXPECT_EQ(refused.why, Decision::Why::kTokens);
  EXPECT_EQ(refused.tokens.remaining, 20);
  EXPECT_EQ(refused.retry_after_ms, 12000);  // 20 more tokens at 100 per minute
  // One of them used only 10: the 30 it did not use come back at once.
  l.reconcile(lim, 40, 10, 0);
  EXPECT_TRUE(l.reserve(lim, 40, 0).admitted);
}

TEST(Limiter, UsingMoreThanReservedIsADebtLaterRequestsWaitFor) {
  LocalLimiter l;
  Limits lim{0, 100, 0};
  ASSERT_TRUE(l.reserve(lim, 50, 0).admitted);
  l.reconcile(lim, 50, 150, 0);  // the answer was far longer than estimated
  Decision d = l.reserve(lim, 10, 0);
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.tokens.remaining, 0);
  EXPECT_EQ(d.retry_after_ms, 36000);  // from -50 to 10 at 100 per minute
  EXPECT_TRUE(l.reserve(lim, 10, 36000).admitted);
}

TEST(Limiter, ARequestLargerThanTheWholeLimitWaitsForAFullBucket) {
  LocalLimiter l;
  Limits lim{0, 100, 0};
  EXPECT_TRUE(l.reserve(lim, 500, 0).admitted);  // alone, on a full bucket
  EXPECT_FALSE(l.reserve(lim, 500, 0).admitted);
}

TEST(Limiter, ConcurrencyLimitFreesOnReconcile) {
  LocalLimiter l;
  Limits lim{0, 0, 2};
  EXPECT_TRUE(l.reserve(lim, 1, 0).admitted);
  EXPECT_TRUE(l.reserve(lim, 1, 0).admitted);
  Decision d = l.reserve(lim, 1, 0);
  EXPECT_EQ(d.why, Decision::Why::kConcurrency);
  l.reconcile(lim, 1, 1, 0);
  EXPECT_TRUE(l.reserve(lim, 1, 0).admitted);
}

TEST(Limiter, HoldsUnderThreads) {
  LocalLimiter l;
  Limits lim{0, 10000, 0};
  std::atomic<int> admitted{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 500; ++i)
        if (l.reserve(lim, 7, 5).admitted) admitted.fetch_add(1);
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(admitted.load(), 10000 / 7);  // exactly what fits, however they interleave
}

TEST(Registry, KeepsOneLimiterPerTenant) {
  Registry r;
  Limits lim{1, 0, 0};
  EXPECT_TRUE(r.get("acme").reserve(lim, 1, 0).admitted);
  EXPECT_FALSE(r.get("acme").reserve(lim, 1, 0).admitted);
  EXPECT_TRUE(r.get("globex").reserve(lim, 1, 0).admitted);
}

TEST(ResetText, OpenAIsDurationFormat) {
  EXPECT_EQ(reset_text(0), "0s");
  EXPECT_EQ(reset_text(20), "20ms");
  EXPECT_EQ(reset_text(1000), "1s");
  EXPECT_EQ(reset_text(1001), "2s");
  EXPECT_EQ(reset_text(360000), "6m0s");
  EXPECT_EQ(reset_text(61500), "1m2s");
}

}  // namespace
}  // namespace sluice::admission
