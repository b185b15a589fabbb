#include "sharedlimits/lease.hpp"

#include <algorithm>
#include <cmath>

namespace sluice::sharedlimits {

using admission::BucketView;
using admission::Decision;
using admission::Limits;

int64_t share(int64_t limit, int64_t replicas) {
  if (limit <= 0) return 0;
  return std::max<int64_t>(1, limit / std::max<int64_t>(1, replicas));
}

namespace {

double max_slice(int64_t cap, const Tuning& t) { return std::max(1.0, std::floor(static_cast<double>(cap) * t.slice_fraction)); }

BucketView show(const Lane& l, int64_t cap) {
  BucketView v;
  v.limit = cap;
  if (cap <= 0) return v;
  const double c = static_cast<double>(cap);
  const double have = std::clamp(l.global + l.slice, 0.0, c);
  v.remaining = static_cast<int64_t>(std::floor(have));
  v.reset_ms = static_cast<int64_t>(std::ceil((c - have) * 60000.0 / c));
  return v;
}

// May this replica take `need` from the lane now? From its slice, or on credit while the
// store showed plenty: each replica's credit is its share of the level above the margin,
// so all replicas together cannot take more than the store had.
bool fits(const TenantState& st, const Lane& l, int64_t cap, double need, int64_t replicas, const Tuning& t) {
  if (cap <= 0) return true;
  if (l.slice >= need) return true;
  if (!st.known) return false;
  const double credit = std::max(0.0, l.global - static_cast<double>(cap) * t.credit_margin) / static_cast<double>(replicas);
  return l.slice - need >= -credit;
}

int64_t wait_ms(const Lane& l, int64_t cap, double need, const Tuning& t) {
  const double missing = need - l.slice - std::max(0.0, l.global);
  if (missing <= 0) return t.retry_ms;  // the store has it: the next lease brings it
  return t.retry_ms + static_cast<int64_t>(std::ceil(missing * 60000.0 / static_cast<double>(cap)));
}

// One limiter per tenant (admission::Registry keeps it); its state is shared with the sync thread.
class SharedLimiter final : public admission::Limiter {
 public:
  SharedLimiter(Hub& hub, std::shared_ptr<TenantState> st) : hub_(hub), st_(std::move(st)) {}

  Decision reserve(const Limits& l, int64_t tokens, int64_t now_ms) override {
    TenantState& st = *st_;
    const Tuning& t = hub_.tuning;
    const int64_t n = std::max<int64_t>(1, hub_.replicas.load(std::memory_order_relaxed));
    const Mode mode = hub_.current();
    bool wake = false;
    Decision d;
    {
      std::lock_guard<std::mutex> lock(st.mu);
      st.limits = l;
      st.has_limits = true;
      const bool buckets = l.rpm > 0 || l.tpm > 0;
      // Concurrency stays per replica: each takes its share of the tenant's limit.
      const int64_t conc = l.max_concurrent > 0 ? std::max<int64_t>(1, (l.max_concurrent + n - 1) / n) : 0;
      if (mode != Mode::kShared && buckets) {
        if (mode == Mode::kFailClosed) {
          hub_.fallback_closed.fetch_add(1, std::memory_order_relaxed);
          d = view_locked(l, now_ms, mode, n);
          d.why = Decision::Why::kUnavailable;
          d.retry_after_ms = 1000;
          return d;
        }
        hub_.fallback_open.fetch_add(1, std::memory_order_relaxed);
        if (conc > 0 && st.in_flight >= conc) {
          d = view_locked(l, now_ms, mode, n);
          d.why = Decision::Why::kConcurrency;
          d.retry_after_ms = 1000;
          return d;
        }
        d = st.fallback.reserve(local_share(l, n), tokens, now_ms);
        if (d.admitted) d.in_flight = ++st.in_flight;
        return d;
      }
      d = view_locked(l, now_ms, Mode::kShared, n);
      if (conc > 0 && st.in_flight >= conc) {
        d.why = Decision::Why::kConcurrency;
        d.retry_after_ms = 1000;  // unknown: when one of them finishes
        return d;
      }
      const double need_r = l.rpm > 0 ? 1.0 : 0.0;
      const double need_t = l.tpm > 0 ? static_cast<double>(std::min(std::max<int64_t>(tokens, 0), l.tpm)) : 0.0;
      st.req.seen = std::max(st.req.seen, need_r);
      st.tok.seen = std::max(st.tok.seen, need_t);
      auto refuse = [&](Lane& lane, int64_t cap, double need, Decision::Why why) {
        wake = lane.hungry < need;
        lane.hungry = std::max(lane.hungry, need);
        lane.hungry_at = now_ms;
        d.why = why;
        d.retry_after_ms = wait_ms(lane, cap, need, t);
      };
      if (!fits(st, st.req, l.rpm, need_r, n, t)) {
        refuse(st.req, l.rpm, need_r, Decision::Why::kRequests);
      } else if (!fits(st, st.tok, l.tpm, need_t, n, t)) {
        refuse(st.tok, l.tpm, need_t, Decision::Why::kTokens);
      } else {
        for (auto [lane, need] : {std::pair{&st.req, need_r}, std::pair{&st.tok, need_t}}) {
          lane->slice -= need;
          lane->used += need;
          if (lane->slice >= 0) lane->hungry = 0;
        }
        d.admitted = true;
        d.in_flight = ++st.in_flight;
        d.requests = show(st.req, l.rpm);
        d.tokens = show(st.tok, l.tpm);
      }
    }
    if (wake) hub_.wake();
    return d;
  }

  void reconcile(const Limits& l, int64_t reserved, int64_t used, int64_t now_ms) override {
    TenantState& st = *st_;
    const int64_t n = std::max<int64_t>(1, hub_.replicas.load(std::memory_order_relaxed));
    const Mode mode = hub_.current();
    std::lock_guard<std::mutex> lock(st.mu);
    if (st.in_flight > 0) --st.in_flight;
    if (l.tpm <= 0) return;
    if (mode == Mode::kShared) {
      // A refund is headroom this replica already leased; a debt is paid by its next leases.
      st.tok.slice += static_cast<double>(reserved - used);
    } else if (mode == Mode::kFailOpen) {
      st.fallback.reconcile(local_share(l, n), reserved, used, now_ms);
    }
  }

  Decision view(const Limits& l, int64_t now_ms) override {
    const int64_t n = std::max<int64_t>(1, hub_.replicas.load(std::memory_order_relaxed));
    std::lock_guard<std::mutex> lock(st_->mu);
    return view_locked(l, now_ms, hub_.current(), n);
  }

 private:
  static Limits local_share(const Limits& l, int64_t n) { return Limits{share(l.rpm, n), share(l.tpm, n), 0}; }

  Decision view_locked(const Limits& l, int64_t now_ms, Mode mode, int64_t n) {
    if (mode == Mode::kFailOpen) {
      Decision d = st_->fallback.view(local_share(l, n), now_ms);
      d.in_flight = st_->in_flight;
      return d;
    }
    Decision d;
    d.in_flight = st_->in_flight;
    d.requests = show(st_->req, l.rpm);
    d.tokens = show(st_->tok, l.tpm);
    return d;
  }

  Hub& hub_;
  std::shared_ptr<TenantState> st_;
};

// Lease or give back for one lane; returns the units asked (> 0) or given back (< 0).
int64_t plan_lane(Lane& l, int64_t cap, const Tuning& t, int64_t now_ms, double dt_ms) {
  // Smoothed over rate_tau_ms whatever the plan period: requests tens of ms apart must not
  // make the slice swing between a lease after each one and a give-back before the next.
  const double alpha = 1.0 - std::exp(-dt_ms / t.rate_tau_ms);
  l.rate += alpha * (l.used / dt_ms - l.rate);
  l.used = 0;
  l.peak = std::max(l.seen, l.peak * (1.0 - alpha));
  l.seen = 0;
  if (cap <= 0) return 0;
  if (l.hungry > 0 && now_ms - l.hungry_at > t.hungry_ms) l.hungry = 0;
  const double need = std::min(l.hungry, static_cast<double>(cap));
  // Enough for the recent rate over the lookahead (at most max_slice), and at least one request
  // of the recent size, so the next one finds its slice ready.
  const double goal = std::max({std::min(max_slice(cap, t), l.rate * t.lookahead_ms), std::min(l.peak, static_cast<double>(cap)), need});
  if (l.slice < need || l.slice < goal * 0.5) return static_cast<int64_t>(std::ceil(goal - l.slice));
  if (l.slice > 2 * goal + 1) {
    const double back = std::floor(l.slice - goal);
    l.slice -= back;  // no longer this replica's: the data plane cannot use it while it travels
    l.returning = back;
    return -static_cast<int64_t>(back);
  }
  return 0;
}

}  // namespace

Plan plan(TenantState& st, const Tuning& t, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(st.mu);
  Plan p;
  if (!st.has_limits || (st.limits.rpm <= 0 && st.limits.tpm <= 0)) return p;
  const double dt = static_cast<double>(std::max<int64_t>(1, now_ms - st.last_plan_ms));
  st.last_plan_ms = now_ms;
  p.rpm = st.limits.rpm;
  p.tpm = st.limits.tpm;
  p.want_r = plan_lane(st.req, p.rpm, t, now_ms, dt);
  p.want_t = plan_lane(st.tok, p.tpm, t, now_ms, dt);
  if (now_ms < st.next_ask_ms && p.want_r >= 0 && p.want_t >= 0) {
    // The store was short last time: asking again before it refilled would only cost a round
    // trip (what refills meanwhile stays in the store, so nothing is lost).
    p.want_r = p.want_t = 0;
    return p;
  }
  p.send = p.want_r != 0 || p.want_t != 0 || !st.known || now_ms - st.last_sync_ms >= t.refresh_ms;
  return p;
}

void apply(TenantState& st, const Plan& p, const Reply* r, int64_t now_ms, const Tuning& t) {
  std::lock_guard<std::mutex> lock(st.mu);
  for (Lane* l : {&st.req, &st.tok}) {
    if (!r) l->slice += l->returning;  // the store never got it back: still this replica's
    l->returning = 0;
  }
  if (!r) return;
  st.req.slice += static_cast<double>(r->got_r);
  st.tok.slice += static_cast<double>(r->got_t);
  st.req.global = static_cast<double>(r->level_r);
  st.tok.global = static_cast<double>(r->level_t);
  st.known = true;
  st.last_sync_ms = now_ms;
  // Short grants: ask again once the store has refilled what was missing (at least retry_ms,
  // at most starved_max_ms).
  double wait = 0;
  if (p.want_r > r->got_r && p.rpm > 0)
    wait = std::max(wait, static_cast<double>(p.want_r - r->got_r) * 60000.0 / static_cast<double>(p.rpm));
  if (p.want_t > r->got_t && p.tpm > 0)
    wait = std::max(wait, static_cast<double>(p.want_t - r->got_t) * 60000.0 / static_cast<double>(p.tpm));
  st.next_ask_ms = wait > 0 ? now_ms + std::clamp<int64_t>(static_cast<int64_t>(std::ceil(wait)), t.retry_ms, t.starved_max_ms) : 0;
}

std::shared_ptr<TenantState> Hub::add(const std::string& tenant) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& s : tenants_)
    if (s->name == tenant) return s;
  tenants_.push_back(std::make_shared<TenantState>(tenant));
  return tenants_.back();
}

std::shared_ptr<TenantState> Hub::find(const std::string& tenant) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& s : tenants_)
    if (s->name == tenant) return s;
  return nullptr;
}

std::vector<std::shared_ptr<TenantState>> Hub::all() {
  std::lock_guard<std::mutex> lock(mu_);
  return tenants_;
}

std::unique_ptr<admission::Limiter> Hub::make_limiter(const std::string& tenant) {
  return std::make_unique<SharedLimiter>(*this, add(tenant));
}

void Hub::wake() {
  woken_.store(true, std::memory_order_relaxed);
  cv_.notify_one();
}

bool Hub::wait(int64_t ms) {
  std::unique_lock<std::mutex> lock(wake_mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return woken_.load() || stop_.load(); });
  return woken_.exchange(false);
}

void Hub::stop() {
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    stop_.store(true);
  }
  cv_.notify_all();
}

}  // namespace sluice::sharedlimits
