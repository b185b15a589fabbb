#include "gateway/flags_admin.hpp"

#include <simdjson.h>

#include "control/flags.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/strings.hpp"
#include "json/splice.hpp"

namespace sluice::gateway {

namespace {

AdminAnswer fail(int status, std::string_view code, const std::string& message) {
  ApiError e{status, status == 403 ? "permission_error" : "invalid_request_error", std::string(code), message};
  return {status, e.to_json(), false};
}

// A control result as an answer: a missing flag is a 404, a concurrent write a 409, anything
// else refused a 400 (the message says what and where).
AdminAnswer from(const control::Result& r, bool change) {
  if (r.ok()) return {200, r.text, change};
  if (starts_with(r.error, "no flag")) return fail(404, "flag_not_found", r.error);
  if (starts_with(r.error, "conflict:")) return fail(409, "conflict", r.error);
  return fail(400, "invalid_flag", r.error);
}

std::string query_value(std::string_view query, std::string_view key) {
  for (auto kv : split(query, '&')) {
    const size_t eq = kv.find('=');
    if (eq != std::string_view::npos && kv.substr(0, eq) == key) return percent_decode(kv.substr(eq + 1)).value_or("");
  }
  return "";
}

// The request body, checked once: a JSON object (or nothing).
struct Body {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  bool present = false, ok = true;
  explicit Body(std::string_view text) : present(!text.empty()) {
    if (present) ok = !parser.parse(text.data(), text.size()).get(doc) && doc.is_object();
  }
  // A string member ("" when absent, nullopt when present and not a string).
  std::optional<std::string> str(const char* key) const {
    if (!present || !ok) return std::string();
    auto v = doc[key];
    if (v.error() == simdjson::NO_SUCH_FIELD) return std::string();
    std::string_view s;
    if (v.get_string().get(s)) return std::nullopt;
    return std::string(s);
  }
};

}  // namespace

std::optional<AdminAnswer> flag_endpoints(store::Store& st, const AdminCall& c, std::string_view query) {
  constexpr std::string_view kFlags = "/admin/v1/flags", kKill = "/admin/v1/kill";
  const bool flags_path = c.path == kFlags || starts_with(c.path, "/admin/v1/flags/");
  const bool kill_path = c.path == kKill || starts_with(c.path, "/admin/v1/kill/");
  if (!flags_path && !kill_path) return std::nullopt;
  const bool get = c.method == "GET";
  if (!get && c.rank < 2) return fail(403, "insufficient_role", "this action needs the operator role");
  Body body(c.body);
  if (!get && !body.ok) return fail(400, "invalid_json", "the body must be a JSON object");
  // Every member a change reads is a string, checked before anything is done.
  std::string reason, route, tool, mode, key;
  const std::pair<const char*, std::string*> members[] = {
      {"reason", &reason}, {"route", &route}, {"tool", &tool}, {"mode", &mode}, {"key", &key}};
  for (const auto& [name, out] : members) {
    auto v = body.str(name);
    if (!v) return fail(400, "invalid_request", std::string("'") + name + "' must be a string");
    *out = std::move(*v);
  }
  if (reason.empty()) reason = query_value(query, "reason");

  if (kill_path) {
    if (c.path == kKill) {
      if (!get) return fail(405, "method_not_allowed", "GET /admin/v1/kill lists the kill switches; POST to /admin/v1/kill/{kind}");
      return AdminAnswer{200, control::kills_json(st), false};
    }
    const std::string_view kind = c.path.substr(kKill.size() + 1);
    if (c.method != "POST") return fail(405, "method_not_allowed", "kill switches are set with POST");
    if (kind == "route") {
      if (route.empty()) return fail(400, "invalid_request", "'route' is required (\"*\": every route)");
      return from(control::kill_route(st, route, mode.empty() ? "block" : mode, c.actor, reason), true);
    }
    if (kind == "tool") {
      if (route.empty() || tool.empty()) return fail(400, "invalid_request", "'route' and 'tool' are required");
      return from(control::kill_tool(st, route, tool, c.actor, reason), true);
    }
    if (kind == "shadow") return from(control::kill_shadow(st, route, c.actor, reason), true);
    if (kind == "rollouts") return from(control::kill_rollouts(st, c.actor, reason), true);
    if (kind == "clear") {
      if (key.empty()) return fail(400, "invalid_request", "'key' (the kill switch's flag key) is required");
      return from(control::kill_clear(st, key, c.actor, reason), true);
    }
    return fail(404, "unknown_url", "Unknown admin URL: " + std::string(c.path) +
                                        " (kill switches: route, tool, shadow, rollouts, clear)");
  }

  if (c.path == kFlags) {
    if (!get) return fail(405, "method_not_allowed", "GET /admin/v1/flags lists the flags; PUT /admin/v1/flags/{key} sets one");
    return AdminAnswer{200, control::list_flags_json(st), false};
  }
  std::string_view rest = c.path.substr(kFlags.size() + 1);
  if (rest == "export" && get) return AdminAnswer{200, control::export_flags(st), false};
  if (rest == "stale" && get) {
    const std::string v = query_value(query, "older_than_s");
    int64_t seconds = 30 * 86400;
    if (!v.empty()) {
      char* end = nullptr;
      seconds = std::strtoll(v.c_str(), &end, 10);
      if (*end != '\0' || seconds < 0) return fail(400, "invalid_request", "'older_than_s' is a number of seconds (0: age not considered)");
    }
    return AdminAnswer{200, control::stale_flags_json(st, seconds * 1000, unix_millis()), false};
  }
  if (rest == "import" && c.method == "POST") {
    if (!body.present || body.doc["file"].get_string().error())
      return fail(400, "invalid_request", "'file' (the flag file's text, JSON or YAML) is required");
    std::string_view file = body.doc["file"].get_string().value_unsafe();
    bool replace = false;
    if (auto r = body.doc["replace"]; r.error() != simdjson::NO_SUCH_FIELD && r.get_bool().get(replace))
      return fail(400, "invalid_request", "'replace' must be true or false");
    return from(control::import_flags(st, std::string(file), replace ? "replace" : "merge", c.actor, reason), true);
  }

  const size_t slash = rest.find('/');
  const auto decoded = percent_decode(rest.substr(0, slash));
  if (!decoded || decoded->empty()) return fail(400, "invalid_request", "a flag key is a non-empty, percent-encoded path segment");
  const std::string& flag = *decoded;
  const std::string_view verb = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  if (verb.empty()) {
    if (get) return from(control::show_flag(st, flag), false);
    if (c.method == "DELETE") return from(control::delete_flag(st, flag, c.actor, reason), true);
    if (c.method == "PUT") {
      // The definition as the client wrote it (an object, or its text as a string), so errors
      // point at its own lines and columns.
      std::optional<std::string> def;
      if (auto members = json::top_level_members(c.body))
        for (const auto& m : *members)
          if (m.key == "definition") def = std::string(m.value);
      if (!def) return fail(400, "invalid_request", "'definition' is required: the flag as under flags.KEY in a flag file");
      if (!def->empty() && def->front() == '"') {
        std::string_view text;
        if (body.doc["definition"].get_string().get(text)) return fail(400, "invalid_request", "'definition' is malformed");
        def = std::string(text);
      }
      return from(control::set_flag(st, flag, *def, c.actor, reason), true);
    }
  } else if (c.method == "POST" && (verb == "enable" || verb == "disable")) {
    return from(verb == "enable" ? control::enable_flag(st, flag, c.actor, reason)
                                 : control::disable_flag(st, flag, c.actor, reason),
                true);
  }
  return fail(404, "unknown_url", "Unknown admin URL: " + std::string(c.method) + " " + std::string(c.path));
}

}  // namespace sluice::gateway
