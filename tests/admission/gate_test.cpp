// The pool admission gate: tier thresholds, the bounded queue (critical first, deadlines,
// no slot lost when a waiter gives up as it is granted), the adaptive limit following TTFT,
// the token capacity, and Retry-After from the drain rate.
#include "admission/gate.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace sluice::admission {
namespace {

using R = Gate::Result;

GateSettings fixed(int64_t n, int64_t queue = 0) {
  GateSettings s;
  s.max_inflight = n;
  s.queue_max = queue;
  s.queue_timeout_ms = 1000;
  return s;
}

std::shared_ptr<Waiter> waiter(std::atomic<int>* woken = nullptr) {
  auto w = std::make_shared<Waiter>();
  w->wake = [woken] {
    if (woken) woken->fetch_add(1);
  };
  return w;
}

TEST(Gate, TiersStopAtTheirShareOfTheLimit) {
  Gate g(fixed(10));
  for (int i = 0; i < 8; ++i) ASSERT_EQ(g.acquire(Tier::kSheddable, 0, nullptr, 0), R::kAdmitted);
  EXPECT_EQ(g.acquire(Tier::kSheddable, 0, nullptr, 0), R::kRefused);  // 80 %
  EXPECT_EQ(g.acquire(Tier::kStandard, 0, nullptr, 0), R::kAdmitted);   // up to 90 %
  EXPECT_EQ(g.acquire(Tier::kStandard, 0, nullptr, 0), R::kRefused);
  EXPECT_EQ(g.acquire(Tier::kCritical, 0, nullptr, 0), R::kAdmitted);  // up to full
  EXPECT_EQ(g.acquire(Tier::kCritical, 0, nullptr, 0), R::kRefused);
  EXPECT_EQ(g.view().in_flight, 10);
  for (int i = 0; i < 10; ++i) g.release(0, -1, 0);
  EXPECT_EQ(g.view().in_flight, 0);
}

TEST(Gate, QueueGrantsCriticalFirstAndNeverSheddable) {
  Gate g(fixed(2, 8));
  ASSERT_EQ(g.acquire(Tier::kCritical, 0, nullptr, 0), R::kAdmitted);
  ASSERT_EQ(g.acquire(Tier::kCritical, 0, nullptr, 0), R::kAdmitted);
  std::atomic<int> woken{0};
  auto std1 = waiter(&woken), crit = waiter(&woken), shed = waiter(&woken);
  EXPECT_EQ(g.acquire(Tier::kStandard, 0, std1, 0), R::kQueued);
  EXPECT_EQ(g.acquire(Tier::kCritical, 0, crit, 0), R::kQueued);
  EXPECT_EQ(g.acquire(Tier::kSheddable, 0, shed, 0), R::kRefused) << "sheddable requests never wait";
  EXPECT_EQ(g.view().waiting[0], 1);
  EXPECT_EQ(g.view().waiting[1], 1);
  g.release(0, -1, 0);  // one slot: the critical waiter, although it came later
  EXPECT_EQ(crit->state.load(), 1);
  EXPECT_EQ(std1->state.load(), 0);
  EXPECT_EQ(woken.load(), 1);
  g.release(0, -1, 0);  // 1 in flight of 2: standard's threshold (1.8 -> 1) is not met yet
  EXPECT_EQ(std1->state.load(), 0);
  g.release(0, -1, 0);
  EXPECT_EQ(std1->state.load(), 1);
  EXPECT_EQ(g.view().in_flight, 1);
}

TEST(Gate, AWaiterThatGivesUpLeavesNoSlotBehind) {
  Gate g(fixed(1, 4));
  ASSERT_EQ(g.acquire(Tier::kCritical, 0, nullptr, 0), R::kAdmitted);
  auto late = waiter(), next = waiter();
  ASSERT_EQ(g.acquire(Tier::kCritical, 0, late, 0), R::kQueued);
  ASSERT_EQ(g.acquire(Tier::kCritical, 0, next, 0), R::kQueued);
  EXPECT_TRUE(g.give_up(*late));  // its deadline passed first
  EXPECT_EQ(g.view().timed_out[0], 1);
  g.release(0, -1, 0);
  EXPECT_EQ(late->state.load(), 2);
  EXPECT_EQ(next->state.load(), 1) << "the slot went to the next live waiter";
  EXPECT_FALSE(g.give_up(*next)) << "granted before its deadline: it holds the slot";
  EXPECT_EQ(g.view().in_flight, 1);
  g.release(0, -1, 0);
  EXPECT_EQ(g.view().in_flight, 0);
}

TEST(Gate, TheQueueIsBounded) {
  Gate g(fixed(1, 2));
  ASSERT_EQ(g.acquire(Tier::kCritical, 0, nullptr, 0), R::kAdmitted);
  EXPECT_EQ(g.acquire(Tier::kCritical, 0, waiter(), 0), R::kQueued);
  EXPECT_EQ(g.acquire(Tier::kCritical, 0, waiter(), 0), R::kQueued);
  EXPECT_EQ(g.acquire(Tier::kCritical, 0, waiter(), 0), R::kRefused);
}

TEST(Gate, ACriticalArrivalDisplacesTheNewestLowerTierWaiterFromAFullQueue) {
  Gate g(fixed(1, 2));
  ASSERT_EQ(g.acquire(Tier::kCritical, 0, nullptr, 0), R::kAdmitted);
  std::atomic<int> woken{0};
  auto old_std = waiter(&woken), new_std = waiter(&woken), crit = waiter(&woken), crit2 = waiter(&woken), crit3 = waiter(&woken);
  ASSERT_EQ(g.acquire(Tier::kStandard, 0, old_std, 0), R::kQueued);
  ASSERT_EQ(g.acquire(Tier::kStandard, 0, new_std, 1), R::kQueued);
  EXPECT_EQ(g.acquire(Tier::kStandard, 0, waiter(), 2), R::kRefused) << "full for its own tier";
  EXPECT_EQ(g.acquire(Tier::kCritical, 0, crit, 3), R::kQueued);
  EXPECT_EQ(new_std->state.load(), 2) << "the newest standard waiter made room";
  EXPECT_EQ(woken.load(), 1) << "and was woken to be refused at once";
  EXPECT_EQ(old_std->state.load(), 0);
  EXPECT_EQ(g.acquire(Tier::kCritical, 0, crit2, 4), R::kQueued);
  EXPECT_EQ(old_std->state.load(), 2);
  EXPECT_EQ(g.acquire(Tier::kCritical, 0, crit3, 5), R::kRefused) << "critical waiters are never displaced";
  EXPECT_EQ(g.view().shed[1], 2);
  g.release(0, -1, 6);
  EXPECT_EQ(crit->state.load(), 1);
}

TEST(Gate, UnderSustainedOverloadTheNewestWaiterGoesFirst) {
  Gate g(fixed(1, 8));  // queue_timeout 1000 ms: newest first once the oldest waited 100 ms
  ASSERT_EQ(g.acquire(Tier::kStandard, 0, nullptr, 0), R::kAdmitted);
  auto a = waiter(), b = waiter(), c = waiter();
  ASSERT_EQ(g.acquire(Tier::kStandard, 0, a, 0), R::kQueued);
  ASSERT_EQ(g.acquire(Tier::kStandard, 0, b, 10), R::kQueued);
  g.release(0, -1, 50);  // the oldest waited 50 ms: first in, first out
  EXPECT_EQ(a->state.load(), 1);
  ASSERT_EQ(g.acquire(Tier::kStandard, 0, c, 150), R::kQueued);
  g.release(0, -1, 200);  // b has waited 190 ms: congested, the newest (c) goes first
  EXPECT_EQ(c->state.load(), 1);
  EXPECT_EQ(b->state.load(), 0);
}

TEST(Gate, TokensInFlightAreACapacityToo) {
  GateSettings s;
  s.max_tokens = 1000;
  s.queue_max = 0;
  Gate g(s);
  EXPECT_EQ(g.acquire(Tier::kCritical, 600, nullptr, 0), R::kAdmitted);
  EXPECT_EQ(g.acquire(Tier::kCritical, 600, nullptr, 0), R::kRefused);
  EXPECT_EQ(g.acquire(Tier::kCritical, 400, nullptr, 0), R::kAdmitted);
  g.release(600, -1, 0);
  g.release(400, -1, 0);
  EXPECT_EQ(g.view().tokens_in_flight, 0);
  EXPECT_EQ(g.acquire(Tier::kCritical, 5000, nullptr, 0), R::kAdmitted) << "a lone request larger than the budget goes alone";
}

TEST(Gate, TheAdaptiveLimitFollowsTimeToFirstToken) {
  GateSettings s;
  s.adaptive = true;
  s.max_inflight = 100;
  s.min_limit = 4;
  s.queue_max = 0;
  Gate g(s);
  EXPECT_DOUBLE_EQ(g.view().limit, 100);
  // Keep it busy (samples only count when at least half the limit is in use).
  auto fill = [&] {
    while (g.acquire(Tier::kCritical, 0, nullptr, 0) == R::kAdmitted) {
    }
  };
  fill();
  int64_t t = 0;
  for (int i = 0; i < 600; ++i) {  // a steady 50 ms: the baseline
    g.release(0, 50, t += 5);
    fill();
  }
  const double steady = g.view().limit;
  EXPECT_GT(steady, 90);
  for (int i = 0; i < 200; ++i) {  // the upstream saturates: TTFT 4x the baseline
    g.release(0, 200, t += 5);
    fill();
  }
  const double loaded = g.view().limit;
  EXPECT_LT(loaded, steady / 2) << "the limit shrank as TTFT rose";
  EXPECT_GE(loaded, 4);
  for (int i = 0; i < 400; ++i) {  // it recovers
    g.release(0, 50, t += 5);
    fill();
  }
  EXPECT_GT(g.view().limit, loaded * 2) << "and grew back";
}

TEST(Gate, RetryAfterFollowsTheDrainRate) {
  Gate g(fixed(100, 0));
  EXPECT_EQ(g.retry_after_ms(0), 1000) << "nothing measured yet";
  for (int i = 0; i < 100; ++i) ASSERT_EQ(g.acquire(Tier::kCritical, 0, nullptr, 0), R::kAdmitted);
  // 100 completions per second for two seconds.
  for (int i = 0; i < 100; ++i) g.release(0, -1, 10 * i + 1);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(g.acquire(Tier::kCritical, 0, nullptr, 0), R::kAdmitted);
  for (int i = 0; i < 100; ++i) g.release(0, -1, 1000 + 10 * i + 1);
  const int64_t ms = g.retry_after_ms(2000);
  EXPECT_GE(ms, 5);
  EXPECT_LE(ms, 30) << "one slot drains in about 10 ms";
}

TEST(Gate, ConcurrentAcquireReleaseAndGiveUpLoseNoSlot) {
  Gate g(fixed(8, 64));
  std::vector<std::thread> ts;
  std::atomic<int64_t> granted{0};
  for (int k = 0; k < 4; ++k) {
    ts.emplace_back([&, k] {
      for (int i = 0; i < 2000; ++i) {
        auto w = waiter();
        const Tier tier = static_cast<Tier>((i + k) % 2);
        R r = g.acquire(tier, 1, w, i);
        if (r == R::kAdmitted) {
          g.release(1, -1, i);
        } else if (r == R::kQueued) {
          if (!g.give_up(*w)) {  // granted meanwhile: it holds a slot
            granted.fetch_add(1);
            g.release(1, -1, i);
          }
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  GateView v = g.view();
  EXPECT_EQ(v.in_flight, 0);
  EXPECT_EQ(v.tokens_in_flight, 0);
}

}  // namespace
}  // namespace sluice::admission
