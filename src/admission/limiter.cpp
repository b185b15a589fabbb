#include "admission/limiter.hpp"

#include <algorithm>
#include <cmath>

namespace sluice::admission {

void LocalLimiter::refill(Bucket& b, int64_t per_minute, int64_t now_ms) {
  const double cap = static_cast<double>(per_minute);
  if (!b.started) {  // first use: full
    b.started = true;
    b.level = cap;
    b.at_ms = now_ms;
    return;
  }
  if (now_ms > b.at_ms) b.level = std::min(cap, b.level + cap * static_cast<double>(now_ms - b.at_ms) / 60000.0);
  b.at_ms = std::max(b.at_ms, now_ms);
}

BucketView LocalLimiter::show(const Bucket& b, int64_t per_minute) {
  BucketView v;
  v.limit = per_minute;
  if (per_minute <= 0) return v;
  const double cap = static_cast<double>(per_minute);
  v.remaining = static_cast<int64_t>(std::floor(std::max(0.0, b.level)));
  v.reset_ms = static_cast<int64_t>(std::ceil((cap - b.level) * 60000.0 / cap));
  return v;
}

Decision LocalLimiter::view_locked(const Limits& l, int64_t now_ms) {
  if (l.rpm > 0) refill(requests_, l.rpm, now_ms);
  if (l.tpm > 0) refill(tokens_, l.tpm, now_ms);
  Decision d;
  d.requests = show(requests_, l.rpm);
  d.tokens = show(tokens_, l.tpm);
  return d;
}

Decision LocalLimiter::reserve(const Limits& l, int64_t tokens, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  Decision d = view_locked(l, now_ms);
  // Time until a bucket holds `need` (a request larger than the whole limit waits for a
  // full bucket: it is admitted alone, then the debt is paid off).
  auto wait_for = [](const Bucket& b, int64_t per_minute, double need) {
    need = std::min(need, static_cast<double>(per_minute));
    return static_cast<int64_t>(std::ceil((need - b.level) * 60000.0 / static_cast<double>(per_minute)));
  };
  if (l.max_concurrent > 0 && in_flight_ >= l.max_concurrent) {
    d.why = Decision::Why::kConcurrency;
    d.retry_after_ms = 1000;  // unknown: when one of them finishes
    return d;
  }
  if (l.rpm > 0 && requests_.level < 1) {
    d.why = Decision::Why::kRequests;
    d.retry_after_ms = wait_for(requests_, l.rpm, 1);
    return d;
  }
  const double need = static_cast<double>(std::max<int64_t>(tokens, 0));
  if (l.tpm > 0 && tokens_.level < std::min(need, static_cast<double>(l.tpm))) {
    d.why = Decision::Why::kTokens;
    d.retry_after_ms = wait_for(tokens_, l.tpm, need);
    return d;
  }
  if (l.rpm > 0) requests_.level -= 1;
  if (l.tpm > 0) tokens_.level -= need;
  ++in_flight_;
  d.admitted = true;
  d.requests = show(requests_, l.rpm);
  d.tokens = show(tokens_, l.tpm);
  return d;
}

void LocalLimiter::reconcile(const Limits& l, int64_t reserved, int64_t used, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (in_flight_ > 0) --in_flight_;
  if (l.tpm <= 0) return;
  refill(tokens_, l.tpm, now_ms);
  // A refund when it used less than it reserved; a debt when more (the bucket goes below 0
  // and later requests wait until it is paid off).
  tokens_.level = std::min(static_cast<double>(l.tpm), tokens_.level + static_cast<double>(reserved - used));
}

Decision LocalLimiter::view(const Limits& l, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  return view_locked(l, now_ms);
}

Limiter& Registry::get(std::string_view tenant) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_tenant_.find(std::string(tenant));
  if (it == by_tenant_.end()) it = by_tenant_.emplace(std::string(tenant), std::make_unique<LocalLimiter>()).first;
  return *it->second;
}

std::optional<Tier> tier_from_name(std::string_view s) {
  if (s == "critical") return Tier::kCritical;
  if (s == "standard") return Tier::kStandard;
  if (s == "sheddable") return Tier::kSheddable;
  return std::nullopt;
}

const char* tier_name(Tier t) {
  switch (t) {
    case Tier::kCritical: return "critical";
    case Tier::kStandard: return "standard";
    case Tier::kSheddable: return "sheddable";
  }
  return "?";
}

bool admit_tier(Tier tier, int64_t inflight, int64_t capacity, double shed_at) {
  if (capacity <= 0) return true;
  const double cap = static_cast<double>(capacity);
  const double share = std::clamp(shed_at, 0.01, 1.0);
  const double limit = tier == Tier::kSheddable  ? share * cap
                       : tier == Tier::kStandard ? (share + (1 - share) / 2) * cap
                                                 : cap;
  return static_cast<double>(inflight) < std::max(1.0, limit);
}

std::string reset_text(int64_t ms) {
  if (ms <= 0) return "0s";
  if (ms < 1000) return std::to_string(ms) + "ms";
  const int64_t s = (ms + 999) / 1000;
  if (s < 60) return std::to_string(s) + "s";
  return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
}

}  // namespace sluice::admission
