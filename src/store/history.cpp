#include "store/history.hpp"

#include <algorithm>
#include <map>

namespace sluice::store {

namespace {

struct Marks {
  std::map<std::string, int64_t> last_stable;       // release -> seq it last became stable
  std::map<std::string, const RouteChange*> marked;  // release -> the rollback that removed it
};

Marks read(const std::vector<RouteChange>& history) {
  Marks m;
  for (const RouteChange& c : history) {
    if (c.action == "rollback") {
      if (!c.previous.empty()) m.marked[c.previous] = &c;
    } else {
      m.marked.erase(c.release);  // promoted again on purpose: known good again
    }
    m.last_stable[c.release] = c.seq;
    // The release a first promote replaced (a route's very first stable release may predate
    // the history rows of an older store) is known good as of before that change.
    if (!c.previous.empty() && !m.last_stable.count(c.previous)) m.last_stable[c.previous] = c.seq - 1;
  }
  return m;
}

}  // namespace

std::string RollbackPlan::note() const {
  std::string o;
  for (const auto& [rel, why] : skipped) o += (o.empty() ? "skipped " : "; skipped ") + rel + " (" + why + ")";
  return o;
}

RollbackPlan plan_rollback(const std::vector<RouteChange>& history, const std::string& current) {
  Marks m = read(history);
  std::vector<std::pair<int64_t, std::string>> order;  // newest first
  for (const auto& [rel, seq] : m.last_stable)
    if (rel != current) order.push_back({seq, rel});
  std::sort(order.rbegin(), order.rend());
  RollbackPlan plan;
  for (const auto& [seq, rel] : order) {
    auto it = m.marked.find(rel);
    if (it == m.marked.end()) {
      plan.target = rel;
      return plan;
    }
    const RouteChange& by = *it->second;
    std::string why = "rolled back by " + by.actor + " at history #" + std::to_string(by.seq);
    if (!by.reason.empty()) why += ": " + by.reason;
    plan.skipped.push_back({rel, why});
  }
  return plan;
}

std::vector<std::string> rolled_back_releases(const std::vector<RouteChange>& history) {
  std::vector<std::string> out;
  for (const auto& [rel, by] : read(history).marked) out.push_back(rel);
  return out;
}

}  // namespace sluice::store
