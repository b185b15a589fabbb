// incident/timeline.hpp: one route's incident timeline, merged in time order from what the
// store already records and what the gateway adds:
//
//   audit log       releases promoted (route.promote), rollbacks (route.rollback), rollouts
//                   started, flag flips and kill switches (flag.*, kill.*), alarms (actor
//                   "alarm:<name>", alarm.fire / alarm.resolve / alarm.action.*)
//   rollout events  each step, gate decision (with its interval, estimate and n), pause,
//                   automatic rollback, completion, operator command
//   events table    upstream breaker changes and ejections, config reloads (ring.hpp)
//
// Which events belong to route R: those about R; those about every route (config reloads,
// flags for route "*", alarms without a target); and upstream events about an upstream R
// uses (the caller resolves that: `release_upstreams` from the store, plus whatever the
// running config says). The conversions, the filter, the merge and both formats are pure.
#pragma once
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.hpp"

namespace sluice::incident {

struct Entry {
  int64_t t_ms = 0;
  std::string kind;     // release.promoted | rollback | rollout.<kind> | flag.* | kill.* | alarm.* |
                        // breaker.open | breaker.half_open | breaker.closed | config.reload
  std::string route;    // "" = not about one route; "*" = every route
  std::string subject;  // an upstream, a flag key, an alarm, a release...
  std::string summary;  // one line for humans, with its numbers
  std::string detail = "{}";  // JSON object: the numbers behind it
};

struct Query {
  std::string route;  // "" = every route
  int64_t from_ms = 0;
  int64_t to_ms = std::numeric_limits<int64_t>::max();
  size_t limit = 5000;  // per source
};

// Conversions (nullopt: not an incident event, e.g. a tenant key created).
std::optional<Entry> from_audit(const store::AuditEntry& a);
Entry from_rollout_event(const store::RolloutRecord& r, const store::RolloutEvent& e);
Entry from_event(const store::EventRecord& e);

// Whether `e` belongs to route `route`'s timeline ("" = every entry does); `upstreams` are
// the names of the upstreams the route uses.
bool belongs(const Entry& e, const std::string& route, const std::vector<std::string>& upstreams);
// Keeps the entries of the query's route and window, in time order (stable: entries of one
// millisecond keep the order they were given in).
std::vector<Entry> select(std::vector<Entry> all, const Query& q, const std::vector<std::string>& upstreams);

// {"events":[{"t_ms","kind","route","subject","summary","detail":{...}}]} (the admin API's
// and the dashboard's shape). An entry matched through an upstream carries `route`: the
// route asked for.
std::string to_json(const std::vector<Entry>& entries, const std::string& route = "");
// One line per entry: "2026-12-01 09:40:01.123  rollout.decision   math-tutor  promote: ...".
std::string to_text(const std::vector<Entry>& entries);
std::string format_line(const Entry& e);
// "2026-12-01 09:40:01.123" (UTC).
std::string clock_text(int64_t ms);

// A time bound: "2h", "90s", "30m", "2d" (that long before now), unix milliseconds, or
// "now". nullopt when malformed.
std::optional<int64_t> parse_time(std::string_view s, int64_t now_ms);

// Store-backed: the upstream (or pool) names the route's releases name, and every entry of
// the query's window (audit log, rollout events, events table) before selection.
std::vector<std::string> release_upstreams(store::Store& s, const std::string& route);
std::vector<Entry> gather(store::Store& s, const Query& q);
// gather + select.
std::vector<Entry> timeline(store::Store& s, const Query& q, const std::vector<std::string>& upstreams);

}  // namespace sluice::incident
