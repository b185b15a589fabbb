#include "admission/gate.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace sluice::admission {

namespace {
constexpr double kNoCeiling = 1000;
}

void Gate::set_settings(const GateSettings& s) {
  std::lock_guard<std::mutex> lock(mu_);
  const bool first = limit_ == 0;
  s_ = s;
  const double ceiling = s.max_inflight > 0 ? static_cast<double>(s.max_inflight) : kNoCeiling;
  if (!s.adaptive || first) {
    // A fixed limit is the configured one; an adaptive one starts at it (or at a modest 32
    // without a ceiling) and learns from there.
    limit_ = s.adaptive ? (s.max_inflight > 0 ? ceiling : 32.0) : static_cast<double>(s.max_inflight);
  }
  if (s.adaptive) limit_ = std::clamp(limit_, static_cast<double>(std::max<int64_t>(1, s.min_limit)), ceiling);
}

GateSettings Gate::settings() {
  std::lock_guard<std::mutex> lock(mu_);
  return s_;
}

bool Gate::fits_locked(Tier tier, int64_t tokens) const {
  const double share = std::clamp(s_.shed_at, 0.01, 1.0);
  const double f = tier == Tier::kSheddable ? share : tier == Tier::kStandard ? share + (1 - share) / 2 : 1.0;
  if (limit_ > 0 && static_cast<double>(in_flight_) >= std::max(1.0, std::floor(f * limit_))) return false;
  if (s_.max_tokens > 0 && in_flight_ > 0 &&
      static_cast<double>(tokens_ + tokens) > f * static_cast<double>(s_.max_tokens))
    return false;  // a lone request larger than the whole budget still goes through alone
  return true;
}

bool Gate::has_room(Tier tier, int64_t tokens) {
  std::lock_guard<std::mutex> lock(mu_);
  return fits_locked(tier, tokens);
}

Gate::Result Gate::acquire(Tier tier, int64_t tokens, const std::shared_ptr<Waiter>& waiter, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  purge_locked();
  const size_t t = static_cast<size_t>(tier);
  // Waiters of this tier or a higher one go first: a newcomer does not overtake them.
  bool ahead = false;
  for (size_t i = 0; i <= t; ++i) ahead = ahead || !queues_[i].empty();
  if (!ahead && fits_locked(tier, tokens)) {
    ++in_flight_;
    tokens_ += tokens;
    ++counters_.admitted[t];
    return Result::kAdmitted;
  }
  // Default queue: as many as the limit (64 for a pool limited by tokens only).
  const int64_t qmax = s_.queue_max >= 0 ? s_.queue_max : limit_ > 0 ? static_cast<int64_t>(std::ceil(limit_)) : 64;
  if (waiter && tier != Tier::kSheddable && qmax > 0 && s_.timeout_ms(tier) > 0) {
    std::shared_ptr<Waiter> displaced;
    if (queued_total_ >= qmax) {
      displaced = displace_locked(tier);
      if (!displaced) return Result::kRefused;
    }
    waiter->tier = tier;
    waiter->tokens = tokens;
    waiter->since_ms = now_ms;
    queues_[t].push_back(waiter);
    ++queued_total_;
    ++counters_.queued[t];
    if (displaced && displaced->wake) displaced->wake();  // refused at once by its own worker
    return Result::kQueued;
  }
  return Result::kRefused;
}

std::shared_ptr<Waiter> Gate::displace_locked(Tier tier) {
  for (size_t t = queues_.size(); t-- > static_cast<size_t>(tier) + 1;) {
    auto& q = queues_[t];
    while (!q.empty()) {
      std::shared_ptr<Waiter> w = q.back();
      q.pop_back();
      --queued_total_;
      int expected = 0;
      if (w->state.compare_exchange_strong(expected, 2)) {
        ++counters_.shed[t];
        return w;
      }
    }
  }
  return nullptr;
}

bool Gate::give_up(Waiter& w) {
  int expected = 0;
  if (!w.state.compare_exchange_strong(expected, 2)) return false;  // granted meanwhile
  std::lock_guard<std::mutex> lock(mu_);
  ++counters_.timed_out[static_cast<size_t>(w.tier)];
  // Left in its queue; grant_waiters_locked drops it (and fixes the count) when it reaches it.
  return true;
}

void Gate::purge_locked() {
  for (auto& q : queues_) {
    while (!q.empty() && q.front()->state.load() != 0) {
      q.pop_front();
      --queued_total_;
    }
    while (!q.empty() && q.back()->state.load() != 0) {
      q.pop_back();
      --queued_total_;
    }
  }
}

void Gate::grant_waiters_locked(int64_t now_ms, std::vector<std::shared_ptr<Waiter>>& granted) {
  for (size_t t = 0; t < queues_.size(); ++t) {
    const int64_t lifo_after = std::max<int64_t>(1, s_.timeout_ms(static_cast<Tier>(t)) / 10);
    auto& q = queues_[t];
    while (!q.empty()) {
      // Waiters that gave up leave from either end.
      if (q.front()->state.load() != 0) {
        q.pop_front();
        --queued_total_;
        continue;
      }
      if (q.back()->state.load() != 0) {
        q.pop_back();
        --queued_total_;
        continue;
      }
      const bool lifo = now_ms - q.front()->since_ms >= lifo_after;
      Waiter& w = lifo ? *q.back() : *q.front();
      if (!fits_locked(w.tier, w.tokens)) return;  // higher tiers first: lower ones wait behind them
      std::shared_ptr<Waiter> taken = lifo ? q.back() : q.front();
      if (lifo) {
        q.pop_back();
      } else {
        q.pop_front();
      }
      --queued_total_;
      int expected = 0;
      if (taken->state.compare_exchange_strong(expected, 1)) {
        ++in_flight_;
        tokens_ += taken->tokens;
        ++counters_.admitted[t];
        granted.push_back(std::move(taken));
      }
    }
  }
}

void Gate::sample_locked(double ttft_ms) {
  if (!s_.adaptive || !(ttft_ms > 0) || !std::isfinite(ttft_ms)) return;
  ++samples_;
  if (samples_ == 1) {
    short_rtt_ = long_rtt_ = ttft_ms;
    return;
  }
  short_rtt_ += (ttft_ms - short_rtt_) * 0.1;  // ~10 samples
  // The baseline: what TTFT is without queueing. It learns from samples taken with the limit
  // lightly used (~500 samples), and drifts up only slowly under load (~5,000), so queueing
  // in an upstream that the limit let through is not taken for its normal TTFT.
  const bool light = static_cast<double>(in_flight_) < limit_ / 2;
  long_rtt_ += (ttft_ms - long_rtt_) * (ttft_ms < long_rtt_ || light ? 1.0 / 500 : 1.0 / 5000);
  // When latency falls well below the baseline (the load went away), the baseline follows fast.
  if (long_rtt_ / short_rtt_ > 2) long_rtt_ *= 0.95;
  // An under-used limit says nothing about the upstream: do not grow it.
  if (static_cast<double>(in_flight_) < limit_ / 2) return;
  const double gradient = std::clamp(s_.tolerance * long_rtt_ / short_rtt_, 0.5, 1.0);
  const double queue_allowance = std::sqrt(limit_);
  const double next = limit_ * gradient + queue_allowance;
  limit_ = limit_ * (1 - s_.smoothing) + next * s_.smoothing;
  const double ceiling = s_.max_inflight > 0 ? static_cast<double>(s_.max_inflight) : kNoCeiling;
  limit_ = std::clamp(limit_, static_cast<double>(std::max<int64_t>(1, s_.min_limit)), ceiling);
}

void Gate::release(int64_t tokens, double ttft_ms, int64_t now_ms) {
  std::vector<std::shared_ptr<Waiter>> granted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (in_flight_ > 0) --in_flight_;
    tokens_ = std::max<int64_t>(0, tokens_ - tokens);
    sample_locked(ttft_ms);
    // The drain rate: completions per 250 ms, smoothed over about two seconds.
    if (drain_bucket_ms_ == 0) drain_bucket_ms_ = now_ms;
    ++drain_count_;
    if (now_ms - drain_bucket_ms_ >= 250) {
      const double rate = static_cast<double>(drain_count_) * 1000.0 / static_cast<double>(now_ms - drain_bucket_ms_);
      drain_rate_ = drain_rate_ == 0 ? rate : drain_rate_ + (rate - drain_rate_) * 0.25;
      drain_bucket_ms_ = now_ms;
      drain_count_ = 0;
    }
    grant_waiters_locked(now_ms, granted);
  }
  for (auto& w : granted)
    if (w->wake) w->wake();
}

void Gate::count_overflow() {
  std::lock_guard<std::mutex> lock(mu_);
  ++counters_.overflowed;
}

void Gate::count_shed(Tier tier) {
  std::lock_guard<std::mutex> lock(mu_);
  ++counters_.shed[static_cast<size_t>(tier)];
}

int64_t Gate::retry_after_ms(int64_t) {
  std::lock_guard<std::mutex> lock(mu_);
  if (drain_rate_ <= 0) return 1000;
  // Everyone queued and one more must drain before a newcomer fits.
  const double ms = static_cast<double>(queued_total_ + 1) * 1000.0 / drain_rate_;
  return std::clamp<int64_t>(static_cast<int64_t>(std::ceil(ms)), 1, 60000);
}

GateView Gate::view() {
  std::lock_guard<std::mutex> lock(mu_);
  GateView v = counters_;
  v.limit = limit_;
  v.in_flight = in_flight_;
  v.tokens_in_flight = tokens_;
  v.baseline_ttft_ms = long_rtt_;
  v.recent_ttft_ms = short_rtt_;
  v.drain_per_s = drain_rate_;
  for (size_t t = 0; t < queues_.size(); ++t) {
    int64_t n = 0;
    for (const auto& w : queues_[t]) n += w->state.load() == 0 ? 1 : 0;
    v.waiting[t] = n;
  }
  return v;
}

}  // namespace sluice::admission
