#include "admission/limiter.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

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
  d.in_flight = in_flight_;
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
  d.in_flight = in_flight_;
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

Registry::Entry& Registry::entry(std::string_view tenant) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_tenant_.find(std::string(tenant));
  if (it == by_tenant_.end()) {
    auto e = std::make_unique<Entry>();
    e->limiter = factory_ ? factory_(std::string(tenant)) : std::make_unique<LocalLimiter>();
    it = by_tenant_.emplace(std::string(tenant), std::move(e)).first;
  }
  return *it->second;  // entries are never erased: the reference outlives the lock
}

void Registry::set_factory(Factory f) {
  std::lock_guard<std::mutex> lock(mu_);
  factory_ = std::move(f);
}

Limiter& Registry::get(std::string_view tenant) { return *entry(tenant).limiter; }
Budget& Registry::budget(std::string_view tenant) { return entry(tenant).budget; }

void Registry::for_each(const std::function<void(const std::string&, Limiter&, Budget&)>& fn) {
  std::vector<std::pair<const std::string*, Entry*>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [name, e] : by_tenant_) all.emplace_back(&name, e.get());
  }
  for (auto& [name, e] : all) fn(*name, *e->limiter, e->budget);
}

// ---------------------------------------------------------------- budgets

int64_t day_of(int64_t unix_ms) { return unix_ms >= 0 ? unix_ms / 86400000 : (unix_ms - 86399999) / 86400000; }

namespace {
// Howard Hinnant's civil_from_days: days since 1970-01-01 -> year, month (1-12), day.
void civil(int64_t z, int64_t& y, int64_t& m, int64_t& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = yoe + era * 400 + (m <= 2 ? 1 : 0);
}
std::string two(int64_t v) { return (v < 10 ? "0" : "") + std::to_string(v); }
}  // namespace

int64_t month_of_day(int64_t day) {
  int64_t y, m, d;
  civil(day, y, m, d);
  return y * 12 + (m - 1);
}

std::string day_name(int64_t day) {
  int64_t y, m, d;
  civil(day, y, m, d);
  return std::to_string(y) + "-" + two(m) + "-" + two(d);
}

std::string month_name(int64_t month) { return std::to_string(month / 12) + "-" + two(month % 12 + 1); }

void Budget::roll(int64_t now_ms) {
  const int64_t day = day_of(now_ms);
  if (day == day_) return;
  const int64_t month = month_of_day(day);
  day_ = day;
  spent_.day_micro_usd = 0;
  if (month != month_) {
    month_ = month;
    spent_.month_micro_usd = 0;
  }
}

void Budget::charge(int64_t micro_usd, int64_t now_ms) {
  if (micro_usd <= 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  roll(now_ms);
  spent_.day_micro_usd += micro_usd;
  spent_.month_micro_usd += micro_usd;
  if (unsaved_.micro_usd > 0 && unsaved_.day != day_) {
    // A day ended before its spend was taken: keep it for the previous day.
    if (unsaved_before_.micro_usd > 0 && unsaved_before_.day == unsaved_.day) {
      unsaved_before_.micro_usd += unsaved_.micro_usd;
    } else {
      unsaved_before_ = unsaved_;
    }
    unsaved_ = {};
  }
  unsaved_.day = day_;
  unsaved_.micro_usd += micro_usd;
}

Budget::View Budget::spent(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  roll(now_ms);
  return spent_;
}

void Budget::restore(int64_t day_micro_usd, int64_t month_micro_usd, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  roll(now_ms);
  spent_.day_micro_usd = std::max(spent_.day_micro_usd, day_micro_usd);
  spent_.month_micro_usd = std::max(spent_.month_micro_usd, month_micro_usd);
}

std::vector<Budget::Unsaved> Budget::take_unsaved() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Unsaved> out;
  if (unsaved_before_.micro_usd > 0) out.push_back(unsaved_before_);
  if (unsaved_.micro_usd > 0) out.push_back(unsaved_);
  unsaved_before_ = unsaved_ = {};
  return out;
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

std::string reset_text(int64_t ms) {
  if (ms <= 0) return "0s";
  if (ms < 1000) return std::to_string(ms) + "ms";
  const int64_t s = (ms + 999) / 1000;
  if (s < 60) return std::to_string(s) + "s";
  return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
}

}  // namespace sluice::admission
