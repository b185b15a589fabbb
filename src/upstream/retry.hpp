// upstream/retry.hpp: how much a gateway may retry, and when. Retries happen only before
// the first byte reached the client; this decides whether one may happen at all (a budget,
// so retries cannot multiply an outage) and how long to wait first (full jitter).
#pragma once
#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>

namespace sluice::upstream {

struct RetryBudgetSettings {
  double ratio = 0.2;       // retries may add at most this share of the requests...
  int min_per_second = 3;   // ...plus this floor, so a quiet route can still retry
  int64_t window_ms = 10000;
};

// A sliding window of 1-second buckets: requests seen and retries spent. Shared by every
// worker (one mutex, a few integer operations per request).
class RetryBudget {
 public:
  explicit RetryBudget(RetryBudgetSettings s = {}) : s_(s) {}
  void set_settings(const RetryBudgetSettings& s);
  void on_request(int64_t now_ms);
  // Spends one retry when the budget allows it.
  bool try_spend(int64_t now_ms);
  struct View {
    int64_t requests = 0, retries = 0, refused = 0;
  };
  View view(int64_t now_ms);

 private:
  static constexpr int kBuckets = 64;
  struct Bucket {
    int64_t second = -1, requests = 0, retries = 0;
  };
  Bucket& bucket_locked(int64_t now_ms);
  void sums_locked(int64_t now_ms, int64_t& req, int64_t& ret);

  std::mutex mu_;
  RetryBudgetSettings s_;
  Bucket b_[kBuckets];
  int64_t refused_ = 0;
};

// Full-jitter exponential backoff: uniform in [0, min(cap, base * 2^attempt)).
// `random01` is a uniform draw in [0, 1).
int64_t backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms, double random01);

// Retry-After as seconds ("3") or an HTTP date; nullopt when absent or unreadable.
// Returns milliseconds from `now_unix_s`.
std::optional<int64_t> parse_retry_after(std::string_view v, int64_t now_unix_s);

}  // namespace sluice::upstream
