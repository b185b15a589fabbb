#include "control/flags.hpp"

#include <functional>
#include <map>
#include <optional>
#include <set>

#include "core/clock.hpp"
#include "core/json_object.hpp"
#include "flags/flagset.hpp"

namespace sluice::control {

namespace {

using flags::Flag;
using flags::Kind;
using flags::Value;

std::string quoted(std::string_view s) {
  std::string o;
  append_json_string(o, s);
  return o;
}
const char* boolean(bool b) { return b ? "true" : "false"; }

bool is_kill(Kind k) { return k != Kind::kPlain && k != Kind::kRelease; }

std::string meta(const Flag& f, std::string_view key) {
  const Value* v = f.metadata.get(key);
  return !v ? "" : v->is_string() ? v->s : flags::js_string(*v);
}

std::optional<Flag> parse_record(const store::FlagRecord& r, std::string& error) {
  return flags::parse_flag(r.key, r.definition, error);
}

// What a flag is, for lists: the parsed flag's role and state, the record's bookkeeping.
JsonObject summary(const store::FlagRecord& r, const Flag* f, const std::string& error) {
  JsonObject o;
  o.str("key", r.key);
  if (f) {
    const flags::Role role = flags::role_of(*f);
    o.str("state", f->enabled ? "ENABLED" : "DISABLED").str("kind", flags::kind_name(role.kind));
    if (!role.route.empty()) o.str("route", role.route);
    if (!role.tool.empty()) o.str("tool", role.tool);
    o.raw("default_variant", f->default_variant ? quoted(*f->default_variant) : "null");
    o.raw("targeted", boolean(!f->targeting.is_null()));
    o.str("owner", meta(*f, "owner")).str("purpose", meta(*f, "purpose"));
  } else {
    o.str("error", "the stored definition no longer parses: " + error);
  }
  o.num("version", r.version).str("updated_at", iso_time(r.updated_at)).str("updated_by", r.updated_by);
  return o;
}

// One stored flag with its definition; `changed` (the result of a change) when given.
std::string flag_json(const store::FlagRecord& r, const char* changed = nullptr) {
  std::string err;
  auto f = parse_record(r, err);
  JsonObject o = summary(r, f ? &*f : nullptr, err);
  o.str("created_at", iso_time(r.created_at)).raw("definition", r.definition);
  if (changed) o.raw("changed", changed);
  return o.done();
}

std::function<std::optional<std::string>(const std::string&)> release_routes(store::Store& s) {
  return [&s](const std::string& id) -> std::optional<std::string> {
    auto r = s.get_release(id);
    if (!r) return std::nullopt;
    return r->route;
  };
}

// Prefixes a role error with the line and column it is about in `def` (the flag's
// definition as read, with positions): the variant it names, else the metadata member it
// names, else the metadata, else the flag itself.
std::string locate(const Value* def, const std::string& error) {
  const Value* at = def;
  if (def && def->is_object()) {
    const Value* variants = def->get("variants");
    const Value* metadata = def->get("metadata");
    bool found = false;
    if (variants && variants->is_object())
      for (const auto& [name, v] : variants->obj())
        if (error.find("variant '" + name + "'") != std::string::npos) {
          at = &v;
          found = true;
          break;
        }
    if (!found && metadata && metadata->is_object()) {
      at = metadata;
      for (const char* k : {"kill", "tool", "route"})
        if (const Value* m = metadata->get(k); m && error.find(std::string("metadata.") + k) != std::string::npos) {
          at = m;
          break;
        }
    }
  }
  const std::string where = at ? at->where() : "";
  return where.empty() ? error : where + ": " + error;
}

// check_role, its error placed in `text` (a definition, or a whole file when `file`).
std::string check(store::Store& s, const Flag& f, const std::string& text, bool file) {
  std::string e = flags::check_role(f, release_routes(s));
  if (e.empty()) return e;
  std::string ignored;
  auto doc = flags::parse_document(text, ignored);
  const Value* def = doc ? &*doc : nullptr;
  if (def && file) def = def->get("flags") ? def->get("flags")->get(f.key) : nullptr;
  return locate(def, e);
}

store::AuditEntry audit_entry(const std::string& action, const std::string& key, const std::string& before,
                              const std::string& after, const std::string& actor, const std::string& reason) {
  store::AuditEntry e;
  e.actor = actor;
  e.action = action;
  e.target = key;
  e.before = before;
  e.after = after;
  e.reason = reason;
  return e;
}

// Writes `next` as flag `key` (nullptr: deletes it) over `cur`, what the caller read, with one
// audit entry; nothing is written when the definition is already stored.
Result write_one(store::Store& s, const std::string& key, const std::optional<store::FlagRecord>& cur, const Flag* next,
                 const std::string& action, const std::string& actor, const std::string& reason) {
  const std::string after = next ? next->json() : "";
  if (next && cur && cur->definition == after) return {"", flag_json(*cur, "false")};
  const store::AuditEntry e = audit_entry(action, key, cur ? cur->definition : "", after, actor, reason);
  std::vector<store::FlagRecord> upserts;
  std::vector<std::string> deletes;
  if (next) upserts.push_back({key, after, actor, 0, 0, cur ? cur->version : 0});
  else deletes.push_back(key);
  store::Outcome out = s.write_flags(upserts, deletes, {e});
  if (!out.ok()) return {out.error, ""};
  if (!next) return {"", JsonObject().str("key", key).raw("deleted", "true").raw("changed", "true").done()};
  auto stored = s.get_flag(key);
  return {"", stored ? flag_json(*stored, "true") : ""};
}

// The stored flag `key`, parsed (an error when it is missing or no longer parses).
Result stored_flag(store::Store& s, const std::string& key, std::optional<store::FlagRecord>& rec,
                   std::optional<Flag>& flag) {
  rec = s.get_flag(key);
  if (!rec) return {"no flag '" + key + "'", ""};
  std::string err;
  flag = parse_record(*rec, err);
  if (!flag) return {"the stored definition of flag '" + key + "' no longer parses (" + err + "): set it again", ""};
  return {};
}

Result set_state(store::Store& s, const std::string& key, bool enabled, bool kill_only, const std::string& action,
                 const std::string& actor, const std::string& reason) {
  std::optional<store::FlagRecord> rec;
  std::optional<Flag> f;
  if (Result r = stored_flag(s, key, rec, f); !r.ok()) return r;
  if (kill_only && !is_kill(flags::role_of(*f).kind))
    return {"flag '" + key + "' is not a kill switch (sluice flag disable turns any flag off)", ""};
  f->enabled = enabled;
  return write_one(s, key, rec, &*f, action, actor, reason);
}

// The flag set's metadata joined to a flag's own; the flag's keys win.
Value merged_metadata(const Value& own, const Value& set) {
  flags::Object o = own.obj();
  for (const auto& [k, v] : set.obj())
    if (!own.get(k)) o.emplace_back(k, v);
  return Value::object(std::move(o));
}

std::string key_list(const std::vector<std::string>& keys) { return json_array(keys, quoted); }

bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > 200) return false;
  for (unsigned char c : s)
    if (c <= ' ' || c == 0x7f) return false;
  return true;
}

// A kill switch: an ENABLED flag with `variants`, defaulting to `variant`, and the metadata
// that gives it its meaning (route, tool) and its owner and purpose.
Result put_kill(store::Store& s, const std::string& kind, const std::string& route, const std::string& tool,
                const std::string& variants, const std::string& variant, const std::string& actor,
                const std::string& reason) {
  if (kind != "rollouts" && !valid_name(route))
    return {"a route name (or \"*\" for every route) is 1 to 200 characters without spaces, got '" + route + "'", ""};
  if (kind == "tool" && !valid_name(tool)) return {"a tool name is 1 to 200 characters without spaces, got '" + tool + "'", ""};
  std::string key = "kill." + kind;
  if (kind != "rollouts") key += "." + (route == "*" ? std::string("all") : route);
  if (kind == "tool") key += "." + tool;
  JsonObject m;
  m.str("kill", kind);
  if (!route.empty()) m.str("route", route);
  if (!tool.empty()) m.str("tool", tool);
  m.str("owner", actor);
  if (!reason.empty()) m.str("purpose", reason);
  const std::string def = JsonObject()
                              .str("state", "ENABLED")
                              .raw("variants", variants)
                              .str("defaultVariant", variant)
                              .raw("metadata", m.done())
                              .done();
  std::string err;
  auto f = flags::parse_flag(key, def, err);
  if (!f) return {err, ""};
  if (std::string e = flags::check_role(*f, release_routes(s)); !e.empty()) return {e, ""};
  return write_one(s, key, s.get_flag(key), &*f, "kill." + kind, actor, reason);
}

constexpr const char* kOnOff = "{\"on\":true,\"off\":false}";

// The one variant every evaluation of a flag whose targeting is a top-level `fractional`
// gets, when one variant has all the weight.
std::optional<std::string> fractional_winner(const Flag& f) {
  if (!f.targeting.is_object() || f.targeting.obj().size() != 1 || f.targeting.obj()[0].first != "fractional")
    return std::nullopt;
  const Value& args = f.targeting.obj()[0].second;
  if (!args.is_array()) return std::nullopt;
  std::set<std::string> weighted;
  for (const Value& b : args.arr()) {
    if (!b.is_array()) continue;  // the bucketing expression
    if (b.arr().empty() || b.arr().size() > 2 || !b.arr()[0].is_string()) return std::nullopt;
    double w = 1;
    if (b.arr().size() == 2) {
      if (!b.arr()[1].is_number()) return std::nullopt;
      w = b.arr()[1].n;
    }
    if (w > 0) weighted.insert(b.arr()[0].s);
  }
  if (weighted.size() != 1) return std::nullopt;
  return *weighted.begin();
}

}  // namespace

std::vector<Flag> load_flags(store::Store& s, std::string& error) {
  std::vector<Flag> out;
  for (const auto& r : s.list_flags()) {
    std::string err;
    auto f = parse_record(r, err);
    if (!f) {
      error += "flag '" + r.key + "' in the store no longer parses and is left out: " + err + "\n";
      continue;
    }
    out.push_back(std::move(*f));
  }
  return out;
}

std::string list_flags_json(store::Store& s) {
  return JsonObject()
      .raw("flags", json_array(s.list_flags(),
                               [](const store::FlagRecord& r) {
                                 std::string err;
                                 auto f = parse_record(r, err);
                                 return summary(r, f ? &*f : nullptr, err).done();
                               }))
      .done();
}

Result show_flag(store::Store& s, const std::string& key) {
  auto r = s.get_flag(key);
  if (!r) return {"no flag '" + key + "'", ""};
  return {"", flag_json(*r)};
}

Result set_flag(store::Store& s, const std::string& key, const std::string& definition, const std::string& actor,
                const std::string& reason) {
  if (definition.size() > flags::kMaxFlagFileBytes)
    return {"the definition is " + std::to_string(definition.size()) + " bytes; at most " +
                std::to_string(flags::kMaxFlagFileBytes) + " are read",
            ""};
  std::string err;
  auto f = flags::parse_flag(key, definition, err);
  if (!f) return {err, ""};
  if (std::string e = check(s, *f, definition, false); !e.empty()) return {e, ""};
  return write_one(s, key, s.get_flag(key), &*f, "flag.set", actor, reason);
}

Result enable_flag(store::Store& s, const std::string& key, const std::string& actor, const std::string& reason) {
  return set_state(s, key, true, false, "flag.enable", actor, reason);
}

Result disable_flag(store::Store& s, const std::string& key, const std::string& actor, const std::string& reason) {
  return set_state(s, key, false, false, "flag.disable", actor, reason);
}

Result delete_flag(store::Store& s, const std::string& key, const std::string& actor, const std::string& reason) {
  auto cur = s.get_flag(key);
  if (!cur) return {"no flag '" + key + "'", ""};
  return write_one(s, key, cur, nullptr, "flag.delete", actor, reason);
}

Result import_flags(store::Store& s, const std::string& file_text, const std::string& mode, const std::string& actor,
                    const std::string& reason) {
  if (mode != "merge" && mode != "replace") return {"an import is \"merge\" or \"replace\", not '" + mode + "'", ""};
  std::string err;
  auto file = flags::parse_flag_file(file_text, err);
  if (!file) return {err, ""};
  for (auto& f : file->flags) {
    if (!file->metadata.obj().empty()) f.metadata = merged_metadata(f.metadata, file->metadata);
    if (std::string e = check(s, f, file_text, true); !e.empty()) return {e, ""};
  }
  std::map<std::string, store::FlagRecord> stored;
  for (auto& r : s.list_flags()) stored.emplace(r.key, std::move(r));
  std::vector<store::FlagRecord> upserts;
  std::vector<std::string> deletes, created, updated;
  std::vector<store::AuditEntry> audit;
  std::set<std::string> in_file;
  size_t unchanged = 0;
  for (const auto& f : file->flags) {
    in_file.insert(f.key);
    const std::string def = f.json();
    auto it = stored.find(f.key);
    const bool exists = it != stored.end();
    if (exists && it->second.definition == def) {
      ++unchanged;
      continue;
    }
    upserts.push_back({f.key, def, actor, 0, 0, exists ? it->second.version : 0});
    audit.push_back(audit_entry("flag.import", f.key, exists ? it->second.definition : "", def, actor, reason));
    (exists ? updated : created).push_back(f.key);
  }
  if (mode == "replace")
    for (const auto& [key, r] : stored)
      if (!in_file.count(key)) {
        deletes.push_back(key);
        audit.push_back(audit_entry("flag.import", key, r.definition, "", actor, reason));
      }
  const bool changed = !upserts.empty() || !deletes.empty();
  if (changed) {
    store::Outcome out = s.write_flags(upserts, deletes, audit);
    if (!out.ok()) return {out.error, ""};
  }
  return {"", JsonObject()
                  .str("mode", mode)
                  .num("created", static_cast<int64_t>(created.size()))
                  .num("updated", static_cast<int64_t>(updated.size()))
                  .num("unchanged", static_cast<int64_t>(unchanged))
                  .num("deleted", static_cast<int64_t>(deletes.size()))
                  .raw("changed", boolean(changed))
                  .raw("keys", JsonObject()
                                   .raw("created", key_list(created))
                                   .raw("updated", key_list(updated))
                                   .raw("deleted", key_list(deletes))
                                   .done())
                  .done()};
}

std::string export_flags(store::Store& s) {
  std::string ignored;  // a definition that no longer parses cannot be written as a flag
  const std::vector<Flag> all = load_flags(s, ignored);
  std::vector<const Flag*> out;
  for (const auto& f : all) out.push_back(&f);
  return flags::flag_file_json(out);
}

Result kill_route(store::Store& s, const std::string& route, const std::string& mode, const std::string& actor,
                  const std::string& reason) {
  if (!flags::route_kill_mode(mode))
    return {"a route kill switch's mode is block, fallback, static or off, not '" + mode + "'", ""};
  return put_kill(s, "route", route, "",
                  "{\"off\":\"off\",\"block\":\"block\",\"fallback\":\"fallback\",\"static\":\"static\"}", mode, actor,
                  reason);
}

Result kill_tool(store::Store& s, const std::string& route, const std::string& tool, const std::string& actor,
                 const std::string& reason) {
  return put_kill(s, "tool", route, tool, kOnOff, "on", actor, reason);
}

Result kill_shadow(store::Store& s, const std::string& route, const std::string& actor, const std::string& reason) {
  return put_kill(s, "shadow", route.empty() ? "*" : route, "", kOnOff, "on", actor, reason);
}

Result kill_rollouts(store::Store& s, const std::string& actor, const std::string& reason) {
  return put_kill(s, "rollouts", "", "", kOnOff, "on", actor, reason);
}

Result kill_clear(store::Store& s, const std::string& key, const std::string& actor, const std::string& reason) {
  return set_state(s, key, false, true, "kill.clear", actor, reason);
}

std::string kills_json(store::Store& s) {
  std::vector<std::string> out;
  for (const auto& r : s.list_flags()) {
    std::string err;
    auto f = parse_record(r, err);
    if (!f) continue;
    const Kind kind = flags::role_of(*f).kind;
    if (!is_kill(kind)) continue;
    const Value* v = f->default_variant ? f->variant(*f->default_variant) : nullptr;
    JsonObject o = summary(r, &*f, "");
    bool on = f->enabled;
    if (kind == Kind::kKillRoute) {
      const std::string mode = v && v->is_string() ? v->s : "off";
      o.str("mode", mode);
      on = on && mode != "off";
    } else {
      on = on && v && v->is_bool() && v->b;
    }
    out.push_back(o.raw("on", boolean(on)).done());
  }
  return JsonObject().raw("kills", json_array(out, [](const std::string& x) { return x; })).done();
}

std::string stale_flags_json(store::Store& s, int64_t older_than_ms, int64_t now_ms) {
  std::vector<std::string> out;
  for (const auto& r : s.list_flags()) {
    std::string err;
    auto f = parse_record(r, err);
    std::vector<std::string> why;
    if (!f) {
      why.push_back("its stored definition no longer parses: " + err);
    } else if (!is_kill(flags::role_of(*f).kind)) {
      const std::string gets =
          f->default_variant ? "variant '" + *f->default_variant + "'" : std::string("the caller's default");
      if (!f->enabled) why.push_back("disabled: every evaluation gets the caller's default");
      else if (f->targeting.is_null()) why.push_back("static: no targeting, every evaluation gets " + gets);
      else if (auto v = fractional_winner(*f)) why.push_back("fully ramped: fractional gives variant '" + *v + "' all the weight");
    }
    const int64_t age = now_ms - r.updated_at;
    if (older_than_ms > 0 && age >= older_than_ms)
      why.push_back("unchanged for " + std::to_string(age / 86400000) + " days (since " + iso_time(r.updated_at) + ")");
    if (why.empty()) continue;
    JsonObject o = summary(r, f ? &*f : nullptr, err);
    o.num("unchanged_days", age / 86400000).raw("reasons", json_array(why, quoted));
    out.push_back(o.done());
  }
  return JsonObject()
      .num("older_than_s", older_than_ms / 1000)
      .raw("stale", json_array(out, [](const std::string& x) { return x; }))
      .done();
}

}  // namespace sluice::control
