#include "incident/timeline.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "core/error.hpp"
#include "core/json_object.hpp"

namespace sluice::incident {

namespace {

bool starts(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// One string member of a JSON object's text ("" when absent or not JSON).
std::string member(std::string_view json, std::initializer_list<const char*> path) {
  if (json.empty() || json.size() > (1 << 20)) return "";
  simdjson::dom::parser p;
  simdjson::dom::element e;
  if (p.parse(json.data(), json.size()).get(e)) return "";
  for (const char* k : path)
    if (e[k].get(e)) return "";
  std::string_view v;
  if (!e.get_string().get(v)) return std::string(v);
  bool b;
  if (!e.get_bool().get(b)) return b ? "true" : "false";
  return "";
}

bool valid_json_object(std::string_view json) {
  if (json.empty() || json.size() > (1 << 20)) return false;
  simdjson::dom::parser p;
  simdjson::dom::element e;
  return !p.parse(json.data(), json.size()).get(e) && e.is_object();
}

std::string by(const store::AuditEntry& a) {
  std::string s = " by " + a.actor;
  if (!a.reason.empty()) s += ": " + a.reason;
  return s;
}

std::string audit_detail(const store::AuditEntry& a) {
  JsonObject o;
  o.num("audit_seq", a.seq).str("actor", a.actor).str("action", a.action).str("target", a.target);
  o.str("before", a.before.size() > 4096 ? a.before.substr(0, 4096) : a.before);
  o.str("after", a.after.size() > 4096 ? a.after.substr(0, 4096) : a.after);
  return o.str("reason", a.reason).str("outcome", a.outcome).done();
}

}  // namespace

std::optional<Entry> from_audit(const store::AuditEntry& a) {
  if (a.outcome != "ok" && !starts(a.action, "alarm.")) return std::nullopt;  // refusals are not events of the route
  Entry e;
  e.t_ms = a.at;
  e.detail = audit_detail(a);
  if (a.action == "route.promote") {
    e.kind = "release.promoted";
    e.route = a.target;
    e.subject = a.after;
    e.summary = a.after + " promoted" + (a.before.empty() ? std::string() : " (was " + a.before + ")") + by(a);
  } else if (a.action == "route.rollback") {
    e.kind = "rollback";
    e.route = a.target;
    e.subject = a.after;
    e.summary = "rolled back to " + a.after + " (from " + a.before + ")" + by(a);
  } else if (a.action == "rollout.start") {
    e.kind = "rollout.start";
    e.route = a.target;
    e.subject = a.after;
    e.summary = "rollout of " + a.after + " started over " + a.before + by(a);
  } else if (starts(a.action, "flag.") || starts(a.action, "kill.")) {
    e.kind = a.action;
    e.subject = a.target;
    const std::string& def = a.after.empty() ? a.before : a.after;
    e.route = member(def, {"metadata", "route"});
    std::string state = member(a.after, {"state"}), variant = member(a.after, {"defaultVariant"});
    std::string what = a.after.empty() ? "deleted" : (state.empty() ? "set" : state);
    if (!variant.empty()) what += ", default variant " + variant;
    e.summary = (starts(a.action, "kill.") || member(def, {"metadata", "kill"}).size() ? "kill switch " : "flag ") +
                a.target + " " + what + by(a);
  } else if (starts(a.action, "alarm.")) {
    e.kind = a.action;
    e.route = a.target;
    e.subject = starts(a.actor, "alarm:") ? a.actor.substr(6) : a.actor;
    std::string verb = a.action == "alarm.fire" ? "fired" : a.action == "alarm.resolve" ? "resolved" : a.action.substr(6);
    e.summary = "alarm " + e.subject + " " + verb;
    if (!a.after.empty() && a.after.size() <= 200) e.summary += ": " + a.after;
    if (!a.reason.empty()) e.summary += " (" + a.reason + ")";
    if (a.outcome != "ok") e.summary += " [" + a.outcome + "]";
  } else {
    return std::nullopt;  // tenants, keys, policies, eval runs, releases created, rollout bookkeeping
  }
  return e;
}

Entry from_rollout_event(const store::RolloutRecord& r, const store::RolloutEvent& ev) {
  Entry e;
  e.t_ms = ev.at;
  e.kind = "rollout." + ev.kind;
  e.route = r.route;
  e.subject = r.id;
  e.summary = member(ev.detail, {"message"});
  if (e.summary.empty()) e.summary = ev.kind;
  if (ev.kind == "step" || ev.kind == "decision")
    e.summary = r.candidate_release + " " + e.summary;  // which candidate: a route may run several in a window
  if (valid_json_object(ev.detail)) {
    // The rollout's own detail (message, weights, gates with interval, estimate and n), and which rollout.
    e.detail = "{\"rollout\":";
    append_json_string(e.detail, r.id);
    e.detail += ",\"candidate\":";
    append_json_string(e.detail, r.candidate_release);
    e.detail += ",\"stable\":";
    append_json_string(e.detail, r.stable_release);
    e.detail += "," + ev.detail.substr(ev.detail.find('{') + 1);
  }
  return e;
}

Entry from_event(const store::EventRecord& r) {
  Entry e;
  e.t_ms = r.at;
  e.kind = r.kind;
  e.route = r.route;
  e.subject = r.subject;
  e.summary = r.summary;
  e.detail = valid_json_object(r.detail) ? r.detail : "{}";
  return e;
}

bool belongs(const Entry& e, const std::string& route, const std::vector<std::string>& upstreams) {
  if (route.empty() || e.route == route || e.route == "*") return true;
  if (starts(e.kind, "breaker.")) return std::find(upstreams.begin(), upstreams.end(), e.subject) != upstreams.end();
  // Not about one route: config reloads, flags that name no route, alarms without a target.
  return e.route.empty() && (starts(e.kind, "config.") || starts(e.kind, "alarm.") || starts(e.kind, "kill."));
}

std::vector<Entry> select(std::vector<Entry> all, const Query& q, const std::vector<std::string>& upstreams) {
  std::vector<Entry> out;
  for (auto& e : all)
    if (e.t_ms >= q.from_ms && e.t_ms < q.to_ms && belongs(e, q.route, upstreams)) out.push_back(std::move(e));
  std::stable_sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.t_ms < b.t_ms; });
  return out;
}

std::string to_json(const std::vector<Entry>& entries, const std::string& route) {
  return JsonObject()
      .raw("events", json_array(entries,
                                [&](const Entry& e) {
                                  return JsonObject()
                                      .num("t_ms", e.t_ms)
                                      .str("kind", e.kind)
                                      .str("route", e.route.empty() && !route.empty() ? route : e.route)
                                      .str("subject", e.subject)
                                      .str("summary", e.summary)
                                      .raw("detail", e.detail.empty() ? "{}" : e.detail)
                                      .done();
                                }))
      .done();
}

std::string clock_text(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03d", static_cast<int>(ms % 1000));
  return buf;
}

std::string format_line(const Entry& e) {
  std::string kind = e.kind;
  if (kind.size() < 18) kind.resize(18, ' ');
  std::string line = clock_text(e.t_ms) + "  " + kind + "  ";
  if (!e.route.empty()) line += e.route + "  ";
  return line + e.summary;
}

std::string to_text(const std::vector<Entry>& entries) {
  std::string out;
  for (const auto& e : entries) out += format_line(e) + "\n";
  return out;
}

std::optional<int64_t> parse_time(std::string_view s, int64_t now_ms) {
  if (s == "now") return now_ms;
  if (s.empty() || s.size() > 16) return std::nullopt;
  size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  if (digits == 0) return std::nullopt;
  int64_t n = 0;
  for (size_t i = 0; i < digits; ++i) n = n * 10 + (s[i] - '0');
  std::string_view unit = s.substr(digits);
  if (unit.empty()) return n;  // unix milliseconds
  int64_t scale = unit == "ms" ? 1 : unit == "s" ? 1000 : unit == "m" ? 60000 : unit == "h" ? 3600000 : unit == "d" ? 86400000 : 0;
  if (scale == 0) return std::nullopt;
  return now_ms - n * scale;
}

std::vector<std::string> release_upstreams(store::Store& s, const std::string& route) {
  std::vector<std::string> out;
  for (const auto& r : s.list_releases(route)) {
    std::string u = member(r.tuple, {"model", "upstream"});
    if (!u.empty() && std::find(out.begin(), out.end(), u) == out.end()) out.push_back(u);
  }
  return out;
}

std::vector<Entry> gather(store::Store& s, const Query& q) {
  std::vector<Entry> all;
  for (const auto& a : s.list_audit_between(q.from_ms, q.to_ms, q.limit))
    if (auto e = from_audit(a)) all.push_back(std::move(*e));
  for (const auto& r : s.list_rollouts(q.route, false)) {
    for (const auto& ev : s.rollout_events(r.id, 0))
      if (ev.at >= q.from_ms && ev.at < q.to_ms) all.push_back(from_rollout_event(r, ev));
  }
  for (const auto& ev : s.list_events(q.from_ms, q.to_ms, q.limit)) all.push_back(from_event(ev));
  return all;
}

std::vector<Entry> timeline(store::Store& s, const Query& q, const std::vector<std::string>& upstreams) {
  return select(gather(s, q), q, upstreams);
}

}  // namespace sluice::incident
