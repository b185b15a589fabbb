#include "upstream/balancer.hpp"

#include "core/hash.hpp"

#include <algorithm>
#include <cmath>

namespace sluice::upstream {

namespace {


// Requests in flight there: the gateway's count, or the upstream's own report when higher.
int64_t requests_of(const Target& t) { return t.health ? t.load : 0; }
int64_t tokens_of(const Target& t) { return t.health ? t.health->outstanding_tokens.load(std::memory_order_relaxed) : 0; }
// Load with this request included, scaled up while the target ramps up after readmission
// (slow start): at weight 0.1 an idle target looks like one carrying ten requests.
double weighted_requests(const Target& t) { return static_cast<double>(requests_of(t) + 1) / t.weight; }
double weighted_tokens(const Target& t) { return static_cast<double>(tokens_of(t) + 1) / t.weight; }

// Orders `ts` (available targets) by the policy.
void order(const BalanceSettings& s, std::vector<Target>& ts, const PlanRequest& r) {
  const size_t n = ts.size();
  if (n <= 1) return;
  switch (s.policy) {
    case Policy::kOrdered: return;
    case Policy::kRoundRobin:
      std::rotate(ts.begin(), ts.begin() + static_cast<ptrdiff_t>(r.seq % n), ts.end());
      // A target ramping up keeps its turn with probability `weight`, else goes last.
      std::stable_partition(ts.begin(), ts.end(), [&](const Target& t) {
        return t.weight >= 1 || static_cast<double>(mix64(r.random ^ (t.index + 1)) % 1000) < t.weight * 1000;
      });
      return;
    case Policy::kLeastRequest: {
      // Ties broken by rotation, so an idle pool is still spread.
      std::rotate(ts.begin(), ts.begin() + static_cast<ptrdiff_t>(r.seq % n), ts.end());
      std::stable_sort(ts.begin(), ts.end(),
                       [](const Target& a, const Target& b) { return weighted_requests(a) < weighted_requests(b); });
      return;
    }
    case Policy::kLeastTokens: {
      // Fewest requests in flight, then the fewest tokens: on a batching server a new
      // request's first token waits for a free slot, so the request count decides whether it
      // waits at all, and the tokens still to generate decide which server frees a slot
      // first. (Weighing tokens against requests sent requests to fuller servers and lost to
      // least_request on TTFT: bench/results/2026-11-30-vm-balance-2.json.) Counters are exact
      // and in process, so every target is compared; ties rotate.
      std::rotate(ts.begin(), ts.begin() + static_cast<ptrdiff_t>(r.seq % n), ts.end());
      auto key = [](const Target& t) { return std::make_pair(weighted_requests(t), weighted_tokens(t)); };
      std::stable_sort(ts.begin(), ts.end(), [&](const Target& x, const Target& y) { return key(x) < key(y); });
      return;
    }
    case Policy::kPrefix:
    case Policy::kSession: {
      if (r.affinity == 0) {  // nothing to be affine to: least requests
        BalanceSettings ls = s;
        ls.policy = Policy::kLeastRequest;
        order(ls, ts, r);
        return;
      }
      // Rendezvous (highest random weight) order: stable when targets come and go.
      std::vector<std::pair<uint64_t, Target>> w;
      w.reserve(n);
      for (const Target& t : ts) w.push_back({mix64(r.affinity ^ mix64(t.index + 1)), t});
      std::sort(w.begin(), w.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
      for (size_t i = 0; i < n; ++i) ts[i] = w[i].second;
      // Bounded load: the first target whose load (this request included) stays within
      // c x the average, and within `affinity_slack` of the least loaded target: a cache hit
      // saves prefill, a queue behind a full batch costs far more. Someone always qualifies
      // (the least loaded one).
      // Loads are weighted (slow start), so the least loaded target still qualifies.
      int64_t total = 0;
      double least = 1e300;
      for (const Target& t : ts) {
        total += requests_of(t);
        least = std::min(least, weighted_requests(t));
      }
      double limit = std::max(1.0, std::ceil(s.bounded_load * static_cast<double>(total + 1) / static_cast<double>(n)));
      limit = std::min(limit, least + static_cast<double>(std::max(0, s.affinity_slack)));
      limit = std::max(limit, least);
      for (size_t i = 0; i < n; ++i) {
        if (weighted_requests(ts[i]) <= limit) {
          std::rotate(ts.begin(), ts.begin() + static_cast<ptrdiff_t>(i), ts.begin() + static_cast<ptrdiff_t>(i) + 1);
          return;
        }
      }
      return;
    }
  }
}

}  // namespace

std::optional<Policy> policy_from_name(std::string_view s) {
  if (s == "ordered") return Policy::kOrdered;
  if (s == "round_robin") return Policy::kRoundRobin;
  if (s == "least_request") return Policy::kLeastRequest;
  if (s == "least_tokens") return Policy::kLeastTokens;
  if (s == "prefix") return Policy::kPrefix;
  if (s == "session") return Policy::kSession;
  return std::nullopt;
}

const char* policy_name(Policy p) {
  switch (p) {
    case Policy::kOrdered: return "ordered";
    case Policy::kRoundRobin: return "round_robin";
    case Policy::kLeastRequest: return "least_request";
    case Policy::kLeastTokens: return "least_tokens";
    case Policy::kPrefix: return "prefix";
    case Policy::kSession: return "session";
  }
  return "?";
}

uint64_t affinity_hash(std::string_view key) {
  return mix64(fnv1a(key)) | 1;  // never 0 (0 means "no affinity")
}

Plan make_plan(const BalanceSettings& s, std::span<const Target> targets, const PlanRequest& r) {
  Plan plan;
  std::vector<Target> up, held;
  std::vector<std::pair<int64_t, Target>> down;  // (available at, target)
  for (const Target& t : targets) {
    upstream::Health::Availability a = t.health ? t.health->availability(r.now_ms) : upstream::Health::Availability{r.now_ms, false};
    if (a.at > r.now_ms) {
      down.push_back({a.at, t});
    } else if (a.held) {
      held.push_back(t);  // asked for time (429 Retry-After): after every other available target
      if (t.health) held.back().load = t.health->load(r.now_ms);
    } else {
      up.push_back(t);
      if (t.health) {
        up.back().weight = t.health->weight(r.now_ms);
        up.back().load = t.health->load(r.now_ms);
      }
    }
  }
  order(s, up, r);
  order(s, held, r);
  for (const Target& t : up) plan.steps.push_back({t.index, t.health, false});
  for (const Target& t : held) plan.steps.push_back({t.index, t.health, false});
  if (down.empty()) return plan;
  std::sort(down.begin(), down.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  // Never eject more than max_ejected_share of the pool: the excess (soonest to recover
  // first) stays in the plan, after every available target.
  const double n = static_cast<double>(targets.size());
  const size_t may_eject = static_cast<size_t>(std::floor(std::clamp(s.max_ejected_share, 0.0, 1.0) * n));
  size_t keep = down.size() > may_eject ? down.size() - may_eject : 0;
  for (size_t i = 0; i < keep; ++i) plan.steps.push_back({down[i].second.index, down[i].second.health, true});
  if (plan.steps.empty()) plan.earliest_ms = down.front().first;
  return plan;
}

}  // namespace sluice::upstream
