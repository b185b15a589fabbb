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

namespace sluice::admission {
namespace {

TEST(Budget, SpendIsPerUtcDayAndMonthAndRollsOver) {
  Budget b;
  const int64_t nov30 = 1795996800000;  // 2026-11-30T00:00:00Z
  EXPECT_EQ(day_name(day_of(nov30)), "2026-11-30");
  EXPECT_EQ(month_name(month_of_day(day_of(nov30))), "2026-11");
  EXPECT_EQ(day_name(day_of(nov30 - 1)), "2026-11-29");
  EXPECT_EQ(month_name(month_of_day(day_of(nov30 + 86400000))), "2026-12");
  EXPECT_EQ(day_name(day_of(951782400000)), "2000-02-29");  // a leap day
  b.charge(1500, nov30 + 1000);
  b.charge(500, nov30 + 2000);
  EXPECT_EQ(b.spent(nov30 + 3000).day_micro_usd, 2000);
  std::vector<Budget::Unsaved> u = b.take_unsaved();
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0].micro_usd, 2000);
  EXPECT_EQ(day_name(u[0].day), "2026-11-30");
  EXPECT_TRUE(b.take_unsaved().empty()) << "taken once";
  // Spend charged just before midnight and not yet taken stays with its day.
  Budget m;
  m.charge(30, nov30 + 86399000);
  m.charge(40, nov30 + 86400000 + 1);
  u = m.take_unsaved();
  ASSERT_EQ(u.size(), 2u);
  EXPECT_EQ(day_name(u[0].day), "2026-11-30");
  EXPECT_EQ(u[0].micro_usd, 30);
  EXPECT_EQ(day_name(u[1].day), "2026-12-01");
  EXPECT_EQ(u[1].micro_usd, 40);
  // The next day (in December): the day and the month start again.
  const int64_t dec1 = nov30 + 86400000;
  EXPECT_EQ(b.spent(dec1).day_micro_usd, 0);
  EXPECT_EQ(b.spent(dec1).month_micro_usd, 0);
  // A restart restores what the store kept (never lowering what this process counted).
  b.restore(100, 900, dec1 + 10);
  EXPECT_EQ(b.spent(dec1 + 10).day_micro_usd, 100);
  EXPECT_EQ(b.spent(dec1 + 10).month_micro_usd, 900);
  b.charge(0, dec1 + 11);
  b.charge(-5, dec1 + 11);
  EXPECT_EQ(b.spent(dec1 + 12).day_micro_usd, 100) << "nothing and negative amounts are not charged";
}

}  // namespace
}  // namespace sluice::admission
