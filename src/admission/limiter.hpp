// admission/limiter.hpp: per-tenant rate limits that hold under concurrency. A request
// reserves what it may cost at admission (one request; its prompt tokens estimated from the
// rendered body plus max_tokens) and reconciles with the real usage when it finishes (a
// refund, or a debit the bucket carries as debt), so concurrent requests cannot overshoot a
// limit the way counting after each response does. Buckets refill continuously (a limit per
// minute is limit/60000 per ms). State lives in a Registry beside the snapshot, so a config
// reload keeps what each tenant has used. Behind an interface: in process now, a shared store
// for several replicas later.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sluice::admission {

// Priority tiers: when a pool nears its capacity the lowest tier is shed first.
enum class Tier { kCritical = 0, kStandard = 1, kSheddable = 2 };
std::optional<Tier> tier_from_name(std::string_view s);
const char* tier_name(Tier t);

struct Limits {
  int64_t rpm = 0;             // requests per minute (0: no limit)
  int64_t tpm = 0;             // tokens per minute, input + output (0: no limit)
  int64_t max_concurrent = 0;  // requests in flight (0: no limit)
};

// One bucket's state for the x-ratelimit-* headers.
struct BucketView {
  int64_t limit = 0;      // 0: not limited
  int64_t remaining = 0;  // whole units left now (0 when in debt)
  int64_t reset_ms = 0;   // until the bucket is full again
};

struct Decision {
  bool admitted = false;
  int64_t in_flight = 0;  // the tenant's requests in flight (after this one, when admitted)
  // kUnavailable: a shared limiter whose store cannot be reached, configured to fail closed.
  enum class Why { kNone, kRequests, kTokens, kConcurrency, kUnavailable } why = Why::kNone;
  int64_t retry_after_ms = 0;  // when the refused request would fit (0 when admitted)
  BucketView requests, tokens;
};

class Limiter {
 public:
  virtual ~Limiter() = default;
  // Reserves one request and `tokens` at `now_ms`, or refuses and says when it would fit.
  virtual Decision reserve(const Limits& l, int64_t tokens, int64_t now_ms) = 0;
  // The request finished: `reserved` tokens are replaced by `used` (refund or debit), and
  // its concurrency slot is freed.
  virtual void reconcile(const Limits& l, int64_t reserved, int64_t used, int64_t now_ms) = 0;
  virtual Decision view(const Limits& l, int64_t now_ms) = 0;
};

// The in-process limiter of one tenant.
class LocalLimiter final : public Limiter {
 public:
  Decision reserve(const Limits& l, int64_t tokens, int64_t now_ms) override;
  void reconcile(const Limits& l, int64_t reserved, int64_t used, int64_t now_ms) override;
  Decision view(const Limits& l, int64_t now_ms) override;

 private:
  struct Bucket {
    bool started = false;  // not used yet: full
    double level = 0;      // units left (below 0: a debt from requests that used more than they reserved)
    int64_t at_ms = 0;
  };
  static void refill(Bucket& b, int64_t per_minute, int64_t now_ms);
  static BucketView show(const Bucket& b, int64_t per_minute);
  Decision view_locked(const Limits& l, int64_t now_ms);

  std::mutex mu_;
  Bucket requests_, tokens_;
  int64_t in_flight_ = 0;
};

// A tenant's spend in the current UTC day and month, in micro-dollars (from the upstreams'
// price table, charged when a request finishes). A budget is checked at admission: requests
// already in flight when it runs out still finish, so the overshoot is bounded by the
// tenant's concurrency times one request's cost.
class Budget {
 public:
  struct View {
    int64_t day_micro_usd = 0, month_micro_usd = 0;
  };
  void charge(int64_t micro_usd, int64_t now_ms);
  View spent(int64_t now_ms);
  // Spend an earlier run persisted for the current periods (at start; not "unsaved").
  void restore(int64_t day_micro_usd, int64_t month_micro_usd, int64_t now_ms);
  // What was charged since the last call, to persist: the day (days since the epoch) it
  // belongs to and the amount (two entries when a UTC day ended in between).
  struct Unsaved {
    int64_t day = 0, micro_usd = 0;
  };
  std::vector<Unsaved> take_unsaved();

 private:
  void roll(int64_t now_ms);
  std::mutex mu_;
  int64_t day_ = -1, month_ = -1;  // current periods: days since the epoch, months since year 0
  View spent_;
  Unsaved unsaved_, unsaved_before_;  // this day's, and the previous day's not yet taken
};

// Days since the epoch and months since year 0 (UTC) of a time, and their names
// ("2026-11-30", "2026-11") as the store keys spend.
int64_t day_of(int64_t unix_ms);
int64_t month_of_day(int64_t day);
std::string day_name(int64_t day);
std::string month_name(int64_t month);

// Each tenant's limiter and budget, kept across snapshots (keyed by tenant name).
class Registry {
 public:
  // Makes each tenant's limiter (default: a LocalLimiter). Set once at start, before any
  // tenant is seen: the shared limiter of several replicas (src/sharedlimits).
  using Factory = std::function<std::unique_ptr<Limiter>(const std::string& tenant)>;
  void set_factory(Factory f);
  Limiter& get(std::string_view tenant);
  Budget& budget(std::string_view tenant);
  // Every tenant seen so far (metrics, the admin view, persisting spend).
  void for_each(const std::function<void(const std::string&, Limiter&, Budget&)>& fn);

 private:
  struct Entry {
    std::unique_ptr<Limiter> limiter;
    Budget budget;
  };
  Entry& entry(std::string_view tenant);
  std::mutex mu_;
  Factory factory_;
  std::unordered_map<std::string, std::unique_ptr<Entry>> by_tenant_;
};

// "1s", "6m0s", "20ms": the duration format of OpenAI's x-ratelimit-reset-* headers.
std::string reset_text(int64_t ms);

}  // namespace sluice::admission
