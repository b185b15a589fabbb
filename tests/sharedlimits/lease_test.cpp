// The shared limiter's pure half: admission from leased slices, credit bounded by the
// store's last level, give-backs restored when a round fails, and the fallback modes.
#include "sharedlimits/lease.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace sl = sluice::sharedlimits;
using sluice::admission::Decision;
using sluice::admission::Limits;

namespace {

// The store's side of one round, as the Lua script does it, without refill (time stands still).
struct FakeStore {
  int64_t level_r, level_t, rpm, tpm;
  sl::Reply answer(const sl::Plan& p) {
    sl::Reply r;
    auto lane = [](int64_t& level, int64_t cap, int64_t want, int64_t& got) {
      if (cap <= 0) return;
      if (want < 0) {
        level = std::min(cap, level - want);
      } else {
        got = std::max<int64_t>(0, std::min(want, level));
        level -= got;
      }
    };
    lane(level_r, rpm, p.want_r, r.got_r);
    lane(level_t, tpm, p.want_t, r.got_t);
    r.level_r = level_r;
    r.level_t = level_t;
    return r;
  }
  // One sync round of a replica against the store.
  void sync(sl::Hub& hub, int64_t now) {
    for (auto& st : hub.all()) {
      sl::Plan p = sl::plan(*st, hub.tuning, now);
      if (!p.send) continue;
      sl::Reply r = answer(p);
      sl::apply(*st, p, &r, now, hub.tuning);
    }
  }
};

}  // namespace

TEST(Share, DividesTheLimitByLiveReplicas) {
  EXPECT_EQ(sl::share(300, 3), 100);
  EXPECT_EQ(sl::share(100, 3), 33);
  EXPECT_EQ(sl::share(2, 3), 1);  // never 0 for a limited tenant
  EXPECT_EQ(sl::share(0, 3), 0);  // no limit stays no limit
  EXPECT_EQ(sl::share(100, 0), 100);
}

TEST(Lease, FirstRequestWaitsForTheFirstLeaseThenAdmitsFromTheSlice) {
  sl::Hub hub;
  auto lim = hub.make_limiter("acme");
  const Limits l{0, 60000, 0};
  Decision d = lim->reserve(l, 500, 1000);
  EXPECT_FALSE(d.admitted);  // nothing leased and the store never answered
  EXPECT_EQ(d.why, Decision::Why::kTokens);
  EXPECT_GT(d.retry_after_ms, 0);
  EXPECT_TRUE(hub.wait(0)) << "the refusal woke the sync thread";

  FakeStore store{0, 60000, 0, 60000};
  store.sync(hub, 1001);
  EXPECT_LE(store.level_t, 60000 - 500) << "the lease brought at least the refused need";
  d = lim->reserve(l, 500, 1002);
  EXPECT_TRUE(d.admitted);
  EXPECT_EQ(d.tokens.limit, 60000);
}

TEST(Lease, CreditIsTheReplicaShareOfTheLevelAboveTheMargin) {
  sl::Hub hub;  // credit_margin 5%
  hub.replicas = 2;
  auto lim = hub.make_limiter("acme");
  const Limits l{0, 10000, 0};
  lim->reserve(l, 1, 0);  // registers the limits
  FakeStore store{0, 10000, 0, 10000};
  store.sync(hub, 1);
  const int64_t level = store.level_t;  // what the replica saw
  auto st = hub.find("acme");
  const double slice = st->tok.slice;
  // Credit: (level - 500) / 2 below zero.
  const double credit = (static_cast<double>(level) - 500.0) / 2.0;
  const int64_t fits = static_cast<int64_t>(slice + credit);
  EXPECT_TRUE(lim->reserve(l, fits, 2).admitted);
  Decision d = lim->reserve(l, 2, 3);
  EXPECT_FALSE(d.admitted) << "the credit is spent";
  EXPECT_EQ(d.why, Decision::Why::kTokens);
  // The next round covers the debt from the store.
  store.sync(hub, 10);
  EXPECT_GE(st->tok.slice, 0.0);
  EXPECT_LT(store.level_t, level - fits + static_cast<int64_t>(slice) + 1);
}

TEST(Lease, ReplicasNeverTakeMoreThanTheStoreHeldOnceSettled) {
  // Three replicas draining one store (no refill): what they admitted, less what they still
  // owe it, is what the store gave.
  FakeStore store{0, 30000, 0, 30000};
  std::vector<std::unique_ptr<sl::Hub>> hubs;
  std::vector<std::unique_ptr<sluice::admission::Limiter>> lims;
  for (int i = 0; i < 3; ++i) {
    hubs.push_back(std::make_unique<sl::Hub>());
    hubs.back()->replicas = 3;
    lims.push_back(hubs.back()->make_limiter("acme"));
  }
  const Limits l{0, 30000, 0};
  int64_t admitted = 0;
  for (int64_t now = 0; now < 4000; ++now) {
    for (int i = 0; i < 3; ++i) {
      if (lims[i]->reserve(l, 100, now).admitted) {
        admitted += 100;
        lims[i]->reconcile(l, 100, 100, now);
      }
      if (now % 5 == i) store.sync(*hubs[i], now);
    }
  }
  double owed = 0, held = 0;
  for (auto& h : hubs) {
    const double s = h->find("acme")->tok.slice;
    (s < 0 ? owed : held) += std::abs(s);
  }
  EXPECT_EQ(store.level_t, 0) << "drained";
  EXPECT_NEAR(static_cast<double>(admitted), 30000.0 - held + owed, 0.5);
  EXPECT_GE(static_cast<double>(admitted), 30000.0 * 0.98);
  EXPECT_LE(static_cast<double>(admitted), 30000.0 * 1.02) << "credit overshoot is bounded";
}

TEST(Lease, RefundsAreGivenBackAndRestoredWhenTheRoundFails) {
  sl::Hub hub;
  auto lim = hub.make_limiter("acme");
  const Limits l{0, 100000, 0};
  lim->reserve(l, 1, 0);
  FakeStore store{0, 100000, 0, 100000};
  store.sync(hub, 1);
  ASSERT_TRUE(lim->reserve(l, 5000, 2).admitted);  // on credit
  store.sync(hub, 3);                                // the debt is covered
  lim->reconcile(l, 5000, 10, 4);  // a large refund lands in the slice
  auto st = hub.find("acme");
  const double before = st->tok.slice;
  sl::Plan p = sl::plan(*st, hub.tuning, 500);
  ASSERT_LT(p.want_t, 0) << "more than the replica needs: given back";
  EXPECT_NEAR(st->tok.slice, before + static_cast<double>(p.want_t), 0.5) << "out of the slice while it travels";
  sl::apply(*st, p, nullptr, 501, hub.tuning);  // the round failed
  EXPECT_NEAR(st->tok.slice, before, 0.5) << "restored: the store never got it";
  p = sl::plan(*st, hub.tuning, 1000);
  ASSERT_LT(p.want_t, 0);
  const int64_t level = store.level_t;
  sl::Reply r = store.answer(p);
  sl::apply(*st, p, &r, 1001, hub.tuning);
  EXPECT_EQ(store.level_t, std::min<int64_t>(100000, level - p.want_t));
}

TEST(Fallback, FailOpenAdmitsThisReplicasShareFailClosedRefuses) {
  sl::Hub hub;
  hub.replicas = 3;
  auto lim = hub.make_limiter("acme");
  const Limits l{0, 3000, 0};
  hub.mode = static_cast<int>(sl::Mode::kFailOpen);
  int64_t admitted = 0;
  for (int i = 0; i < 50; ++i)
    if (lim->reserve(l, 100, 0).admitted) admitted += 100;
  EXPECT_EQ(admitted, 1000) << "3000 / 3 replicas";
  EXPECT_EQ(hub.fallback_open.load(), 50u);

  hub.mode = static_cast<int>(sl::Mode::kFailClosed);
  Decision d = lim->reserve(l, 1, 0);
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.why, Decision::Why::kUnavailable);
  EXPECT_GT(d.retry_after_ms, 0);
  // A tenant without rpm/tpm limits is not refused for want of the store.
  EXPECT_TRUE(lim->reserve(Limits{0, 0, 0}, 1, 0).admitted);
}

TEST(Fallback, ConcurrencyIsSplitAcrossReplicas) {
  sl::Hub hub;
  hub.replicas = 2;
  auto lim = hub.make_limiter("acme");
  const Limits l{0, 0, 5};  // ceil(5 / 2) = 3 here
  int ok = 0;
  for (int i = 0; i < 5; ++i) ok += lim->reserve(l, 1, 0).admitted ? 1 : 0;
  EXPECT_EQ(ok, 3);
  lim->reconcile(l, 1, 1, 1);
  EXPECT_TRUE(lim->reserve(l, 1, 2).admitted);
}

TEST(Lease, AShortGrantWaitsForTheRefillBeforeAskingAgain) {
  sl::Hub hub;
  auto lim = hub.make_limiter("acme");
  const Limits l{0, 60000, 0};  // 1 token per ms
  EXPECT_FALSE(lim->reserve(l, 100, 0).admitted);
  auto st = hub.find("acme");
  FakeStore store{0, 40, 0, 60000};  // nearly empty
  sl::Plan p = sl::plan(*st, hub.tuning, 1);
  ASSERT_EQ(p.want_t, 100);
  sl::Reply r = store.answer(p);
  EXPECT_EQ(r.got_t, 40);
  sl::apply(*st, p, &r, 1, hub.tuning);
  // 60 tokens missing: 60 ms of refill before the next ask.
  EXPECT_FALSE(sl::plan(*st, hub.tuning, 30).send);
  EXPECT_FALSE(lim->reserve(l, 100, 31).admitted);  // still short, and no round trip for it
  EXPECT_FALSE(sl::plan(*st, hub.tuning, 40).send);
  p = sl::plan(*st, hub.tuning, 62);
  EXPECT_TRUE(p.send);
  EXPECT_GE(p.want_t, 60);
}

TEST(Lease, SparseRequestsFindTheirSliceReadyWhenTheStoreIsLow) {
  // Requests 50 ms apart (ten plan rounds between them) against a store below the credit
  // margin: once the first has been seen, each next one finds a slice of its size waiting
  // (the slice is not given back between requests).
  sl::Hub hub;
  auto lim = hub.make_limiter("acme");
  const Limits l{0, 60000, 0};
  FakeStore store{0, 700, 0, 60000};  // 20 requests of 35, far below the 3000 margin
  int admitted = 0, refused = 0;
  for (int64_t now = 0; now < 1000; now += 5) {
    if (now % 50 == 0) {
      if (lim->reserve(l, 35, now).admitted) {
        ++admitted;
        lim->reconcile(l, 35, 35, now);
      } else {
        ++refused;
      }
    }
    store.sync(hub, now + 1);
  }
  EXPECT_EQ(refused, 1) << "only the very first, before anything was leased";
  EXPECT_EQ(admitted, 19);
}
