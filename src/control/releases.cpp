#include "control/releases.hpp"

#include <algorithm>
#include <ctime>

#include "core/error.hpp"
#include "core/json_object.hpp"
#include "release/compiled.hpp"
#include "release/diff.hpp"
#include "release/manifest.hpp"
#include "store/history.hpp"

namespace sluice::control {

namespace {

std::function<std::optional<std::string>(const std::string&)> blobs_of(store::Store& s) {
  return [&s](const std::string& h) { return s.get_blob(h); };
}

}  // namespace

Result create_release(store::Store& s, const std::string& path, const std::string& actor) {
  std::vector<std::string> errors;
  auto m = release::load_manifest(path, errors);
  if (!m) {
    std::string all;
    for (const auto& e : errors) all += e + "\n";
    return {all, ""};
  }
  store::ReleaseRecord r;
  r.id = m->id;
  r.full_hash = m->full_hash;
  r.route = m->route;
  r.tuple = release::to_json(m->tuple);
  r.created_by = actor;
  r.git_commit = m->git_commit;
  r.parent = m->parent;
  if (r.parent.empty()) {
    // Lineage: by default a release descends from its route's stable release.
    if (auto route = s.get_route(r.route)) r.parent = route->stable_release;
  }
  std::vector<std::pair<std::string, std::string>> blobs;
  for (const auto& b : m->blobs) blobs.emplace_back(b.sha256, b.content);
  // Compile once now so a release that cannot serve never enters the store.
  std::string cerr;
  auto compiled = release::compile(r.id, r.tuple, [&](const std::string& h) -> std::optional<std::string> {
    for (const auto& [sha, content] : blobs)
      if (sha == h) return content;
    return std::nullopt;
  }, cerr);
  if (!compiled) return {cerr, ""};
  bool created = false;
  auto out = s.create_release(r, blobs, created);
  if (!out.ok()) return {out.error, ""};
  return {"", r.id + (created ? "" : " (already existed: same content)")};
}

std::string release_json(const store::ReleaseRecord& r) {
  return JsonObject()
      .str("id", r.id)
      .str("route", r.route)
      .str("full_hash", r.full_hash)
      .str("created_by", r.created_by)
      .str("created_at", iso_time(r.created_at))
      .str("parent", r.parent)
      .str("git_commit", r.git_commit)
      .str("eval_pass_id", r.eval_pass_id)
      .raw("tuple", r.tuple)
      .done();
}

std::string releases_json(store::Store& s, const std::string& route) {
  return JsonObject().raw("releases", json_array(s.list_releases(route), release_json)).done();
}

std::string routes_json(store::Store& s) {
  auto route = [&](const store::RouteRecord& r) {
    auto change = [](const store::RouteChange& h) {
      return JsonObject()
          .str("release", h.release)
          .str("previous", h.previous)
          .str("action", h.action)
          .str("actor", h.actor)
          .str("reason", h.reason)
          .str("at", iso_time(h.at))
          .done();
    };
    auto history = s.route_history(r.name);
    auto marked = store::rolled_back_releases(history);
    return JsonObject()
        .str("name", r.name)
        .str("stable_release", r.stable_release)
        .str("updated_at", iso_time(r.updated_at))
        .raw("rolled_back", json_array(marked, [](const std::string& id) {
               std::string o;
               append_json_string(o, id);
               return o;
             }))
        .raw("history", json_array(history, change))
        .done();
  };
  return JsonObject().raw("routes", json_array(s.list_routes(), route)).done();
}

std::string eval_run_json(const store::EvalRunRecord& r, bool with_summary) {
  JsonObject o;
  o.str("id", r.id)
      .str("route", r.route)
      .str("release", r.release)
      .str("baseline", r.baseline)
      .str("suite", r.suite_name)
      .str("suite_hash", r.suite_hash)
      .raw("passed", r.passed ? "true" : "false")
      .str("created_by", r.created_by)
      .str("created_at", iso_time(r.created_at))
      .str("environment", r.environment);
  if (with_summary) o.raw("summary", r.summary.empty() ? "null" : r.summary);
  return o.done();
}

std::string eval_runs_json(store::Store& s, const std::string& release, bool with_summary) {
  return JsonObject()
      .raw("eval_runs", json_array(s.list_eval_runs(release),
                                   [&](const store::EvalRunRecord& r) { return eval_run_json(r, with_summary); }))
      .done();
}

std::string audit_json(store::Store& s, size_t limit) {
  auto entry = [](const store::AuditEntry& e) {
    return JsonObject()
        .num("seq", e.seq)
        .str("at", iso_time(e.at))
        .str("actor", e.actor)
        .str("action", e.action)
        .str("target", e.target)
        .str("before", e.before)
        .str("after", e.after)
        .str("reason", e.reason)
        .str("outcome", e.outcome)
        .done();
  };
  return JsonObject().raw("audit", json_array(s.list_audit(limit), entry)).done();
}

Result list_releases_text(store::Store& s, const std::string& route) {
  std::string out;
  std::vector<store::RouteRecord> routes = s.list_routes();
  for (const auto& r : s.list_releases(route)) {
    bool stable = false;
    for (const auto& rt : routes) stable = stable || rt.stable_release == r.id;
    out += r.id + "  " + r.route + "  " + iso_time(r.created_at) + "  " + r.created_by + (stable ? "  (stable)" : "") + "\n";
  }
  if (out.empty()) out = "no releases\n";
  return {"", out};
}

Result show_release_text(store::Store& s, const std::string& id) {
  auto r = s.get_release(id);
  if (!r) return {"no release " + id, ""};
  auto tuple = release::from_json(r->tuple);
  std::string out = "release    " + r->id + "\nroute      " + r->route + "\nhash       " + r->full_hash +
                    "\ncreated    " + iso_time(r->created_at) + " by " + r->created_by +
                    "\nparent     " + (r->parent.empty() ? "-" : r->parent) +
                    "\ngit commit " + (r->git_commit.empty() ? "-" : r->git_commit) +
                    "\neval pass  " + (r->eval_pass_id.empty() ? "-" : r->eval_pass_id) + "\n\ntuple:\n" +
                    release::to_pretty_json(*tuple) + "\n";
  std::string err;
  auto c = release::compile(r->id, r->tuple, blobs_of(s), err);
  if (c && c->mode != release::PromptMode::kNone) {
    out += "\nprompt " + c->prompt_hash + " preview (variables shown as <name>):\n";
    release::Vars vars;
    auto add_vars = [&](const release::Template& t) {
      for (const auto& v : t.variables()) vars.emplace_back(v, "<" + v + ">");
    };
    if (c->system) add_vars(*c->system);
    if (c->user) add_vars(*c->user);
    for (const auto& [role, t] : c->few_shot) add_vars(t);
    vars.emplace_back("input", "<input>");
    std::string text, missing;
    if (c->system && c->system->render(vars, text, missing)) out += "  [system] " + text + "\n";
    for (const auto& [role, t] : c->few_shot) {
      text.clear();
      if (t.render(vars, text, missing)) out += "  [" + role + "] " + text + "\n";
    }
    text.clear();
    if (c->user && c->user->render(vars, text, missing)) out += "  [user] " + text + "\n";
  }
  auto history = s.route_history(r->route);
  auto marked = store::rolled_back_releases(history);
  if (std::find(marked.begin(), marked.end(), r->id) != marked.end())
    out += "\nmarked rolled back on " + r->route + ": a rollback never returns to it until it is promoted again\n";
  out += "\nroute history of " + r->route + ":\n";
  for (const auto& h : history) {
    out += "  " + iso_time(h.at) + "  " + h.action + "  " + (h.previous.empty() ? "-" : h.previous) + " -> " + h.release +
           "  by " + h.actor + (h.reason.empty() ? "" : "  (" + h.reason + ")") + (h.release == r->id ? "  <-" : "") +
           "\n";
  }
  return {"", out};
}

Result diff_releases_text(store::Store& s, const std::string& a, const std::string& b) {
  auto ra = s.get_release(a), rb = s.get_release(b);
  if (!ra) return {"no release " + a, ""};
  if (!rb) return {"no release " + b, ""};
  auto ta = release::from_json(ra->tuple), tb = release::from_json(rb->tuple);
  return {"", "--- " + ra->id + "\n+++ " + rb->id + "\n" + release::diff(*ta, *tb, blobs_of(s))};
}

std::shared_ptr<const release::Compiled> compile_release(store::Store& s, const std::string& id, std::string& error) {
  auto r = s.get_release(id);
  if (!r) {
    error = "release " + id + " not found";
    return nullptr;
  }
  return release::compile(r->id, r->tuple, blobs_of(s), error);
}

std::vector<config::RouteBinding> route_bindings(store::Store& s, std::string& error) {
  std::vector<config::RouteBinding> out;
  for (const auto& route : s.list_routes()) {
    std::string err;
    auto c = compile_release(s, route.stable_release, err);
    if (!c) {
      error += "route " + route.name + ": " + err + "\n";
      continue;
    }
    out.push_back({route.name, std::move(c)});
  }
  return out;
}

}  // namespace sluice::control
