#include "upstream/retry.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <string>

namespace sluice::upstream {

void RetryBudget::set_settings(const RetryBudgetSettings& s) {
  std::lock_guard<std::mutex> lock(mu_);
  s_ = s;
  s_.window_ms = std::clamp<int64_t>(s_.window_ms, 1000, (kBuckets - 1) * 1000);
}

RetryBudget::Bucket& RetryBudget::bucket_locked(int64_t now_ms) {
  int64_t sec = now_ms / 1000;
  Bucket& b = b_[static_cast<size_t>(sec % kBuckets)];
  if (b.second != sec) b = Bucket{sec, 0, 0};
  return b;
}

void RetryBudget::sums_locked(int64_t now_ms, int64_t& req, int64_t& ret) {
  int64_t sec = now_ms / 1000, span = std::max<int64_t>(1, s_.window_ms / 1000);
  req = ret = 0;
  for (const Bucket& b : b_) {
    if (b.second < 0 || b.second > sec || sec - b.second >= span) continue;
    req += b.requests;
    ret += b.retries;
  }
}

void RetryBudget::on_request(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  ++bucket_locked(now_ms).requests;
}

bool RetryBudget::try_spend(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t req, ret;
  sums_locked(now_ms, req, ret);
  double span_s = static_cast<double>(std::max<int64_t>(1, s_.window_ms / 1000));
  double allowed = s_.ratio * static_cast<double>(req) + s_.min_per_second * span_s;
  if (static_cast<double>(ret) + 1 > allowed) {
    ++refused_;
    return false;
  }
  ++bucket_locked(now_ms).retries;
  return true;
}

RetryBudget::View RetryBudget::view(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  View v;
  sums_locked(now_ms, v.requests, v.retries);
  v.refused = refused_;
  return v;
}

int64_t backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms, double random01) {
  double ceiling = std::min<double>(static_cast<double>(cap_ms), static_cast<double>(base_ms) * std::ldexp(1.0, std::min(attempt, 30)));
  return static_cast<int64_t>(std::clamp(random01, 0.0, 1.0) * ceiling);
}

std::optional<int64_t> parse_retry_after(std::string_view v, int64_t now_unix_s) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v.empty()) return std::nullopt;
  double secs = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), secs);
  if (ec == std::errc() && p == v.data() + v.size()) {
    if (!(secs >= 0) || secs > 86400) return std::nullopt;
    return static_cast<int64_t>(secs * 1000);
  }
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  std::tm tm{};
  std::string s(v);
  if (!strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm)) return std::nullopt;
  int64_t at = static_cast<int64_t>(timegm(&tm));
  return std::clamp<int64_t>(at - now_unix_s, 0, 86400) * 1000;
}

}  // namespace sluice::upstream
