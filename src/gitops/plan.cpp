#include "gitops/plan.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <thread>

#include "config/tenant_spec.hpp"
#include "core/clock.hpp"
#include "core/crypto.hpp"
#include "core/error.hpp"
#include "core/strings.hpp"
#include "flags/flagset.hpp"
#include "flags/value.hpp"

namespace sluice::gitops {

namespace {

std::string json_text(const std::string& s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

// Member-by-member difference of two JSON objects ("" = no object): the members of `after` in
// their order, then those only `before` has.
std::vector<Field> object_fields(const std::string& before, const std::string& after) {
  std::string err;
  auto parse = [&](const std::string& t) {
    if (t.empty()) return flags::Value::object({});
    auto v = flags::parse_json(t, err);
    return v && v->is_object() ? *v : flags::Value::object({{"value", flags::Value::string(t)}});
  };
  const flags::Value b = parse(before), a = parse(after);
  auto text = [](const flags::Value* v) {
    std::string out;
    if (v) flags::append_json(out, *v);
    return out;
  };
  std::vector<Field> out;
  for (const auto& [k, v] : a.obj()) {
    std::string was = text(b.get(k)), now = text(&v);
    if (was != now) out.push_back({k, was, now});
  }
  for (const auto& [k, v] : b.obj())
    if (!a.get(k)) out.push_back({k, text(&v), ""});
  return out;
}

std::string approval_text(double v) { return v > 100 ? "\"never\"" : num_text(v); }

std::vector<Field> policy_fields(const store::RoutePolicy* before, const store::RoutePolicy& after) {
  std::vector<Field> out;
  const std::string ab = before ? approval_text(before->require_approval_above) : "";
  const std::string aa = approval_text(after.require_approval_above);
  if (ab != aa) out.push_back({"require_approval_above", ab, aa});
  const std::string eb = before ? json_text(before->eval_suite) : "", ea = json_text(after.eval_suite);
  if (eb != ea) out.push_back({"eval_suite", eb, ea});
  const std::string vb = before ? json_text(before->evidence_environment) : "";
  const std::string va = json_text(after.evidence_environment);
  if (vb != va) out.push_back({"evidence_environment", vb, va});
  auto list = [](const std::vector<std::string>& l) {
    std::string o = "[";
    for (const auto& x : l) o += (o.size() > 1 ? "," : "") + json_text(x);
    return o + "]";
  };
  const std::string sb = before ? list(before->evidence_suites) : "", sa = list(after.evidence_suites);
  if (sb != sa) out.push_back({"evidence_suites", sb, sa});
  return out;
}

bool default_policy(const store::RoutePolicy& p) {
  return p.require_approval_above == store::kDefaultApprovalAbove && p.eval_suite.empty() &&
         p.evidence_environment.empty() && p.evidence_suites.empty();
}

// A stored tenant's spec in canonical form (the text as stored when it no longer parses).
std::string canonical_tenant(const store::TenantRecord& r) {
  config::Tenant t;
  t.name = r.name;
  if (!config::apply_tenant_json(r.spec, t).empty()) return r.spec;
  return config::tenant_json(t);
}

int kind_rank(const std::string& kind) {
  if (kind == "Tenant") return 0;
  if (kind == "RoutePolicy") return 1;
  if (kind == "Flag") return 2;
  return 3;
}

void plan_tenants(store::Store& s, const Desired& d, bool prune, Plan& p) {
  const int64_t now = unix_millis();
  std::set<std::string> declared;
  for (const auto& t : d.tenants) {
    declared.insert(t.name);
    auto cur = s.get_tenant(t.name);
    Change c;
    c.kind = "Tenant";
    c.name = t.name;
    c.where = t.where;
    c.op = cur ? Op::kChange : Op::kCreate;
    const std::string before = cur ? canonical_tenant(*cur) : "";
    c.fields = object_fields(before, t.spec);
    if (!cur || before != t.spec) c.tenant_spec = t.spec;
    std::vector<store::ApiKeyRecord> active;
    if (cur)
      for (auto& k : s.list_api_keys(t.name))
        if (k.active(now)) active.push_back(std::move(k));
    for (const auto& k : t.keys) {
      const bool have = std::any_of(active.begin(), active.end(), [&](const auto& a) { return a.key_sha256 == k.sha256; });
      if (have) continue;
      c.new_keys.push_back(k);
      c.fields.push_back({"key " + k.ref, "", json_text("new key, label " + k.label)});
    }
    if (prune && t.keys_declared)
      for (const auto& a : active) {
        const bool kept = std::any_of(t.keys.begin(), t.keys.end(), [&](const auto& k) { return k.sha256 == a.key_sha256; });
        if (kept) continue;
        c.revoke_key_ids.push_back(a.id);
        c.fields.push_back({"key " + a.id, json_text(a.prefix + "... label " + a.label), ""});
      }
    if (!c.fields.empty()) p.changes.push_back(std::move(c));
  }
  if (prune)
    for (const auto& r : s.list_tenants())
      if (!declared.count(r.name))
        p.notes.push_back("Tenant " + r.name + " is in the store, not in the files (tenants cannot be removed)");
}

void plan_policies(store::Store& s, const Desired& d, bool prune, Plan& p) {
  std::set<std::string> declared;
  for (const auto& dp : d.policies) {
    declared.insert(dp.route);
    store::RoutePolicy want;
    want.route = dp.route;
    want.require_approval_above = dp.require_approval_above;
    want.eval_suite = dp.eval_suite;
    want.evidence_environment = dp.evidence_environment;
    want.evidence_suites = dp.evidence_suites;
    auto cur = s.get_route_policy(dp.route);
    if (!cur && default_policy(want)) continue;  // what the route has without a policy
    Change c;
    c.kind = "RoutePolicy";
    c.name = dp.route;
    c.where = dp.where;
    c.op = cur ? Op::kChange : Op::kCreate;
    c.fields = policy_fields(cur ? &*cur : nullptr, want);
    c.policy = want;
    if (!c.fields.empty()) p.changes.push_back(std::move(c));
  }
  if (!prune) return;
  std::set<std::string> routes;
  for (const auto& r : s.list_routes()) routes.insert(r.name);
  for (const auto& r : s.list_releases()) routes.insert(r.route);
  for (const auto& route : routes) {
    if (declared.count(route)) continue;
    auto cur = s.get_route_policy(route);
    if (!cur || default_policy(*cur)) continue;
    Change c;
    c.kind = "RoutePolicy";
    c.name = route;
    c.op = Op::kRemove;
    c.policy.route = route;  // the defaults
    c.fields = policy_fields(&*cur, c.policy);
    p.changes.push_back(std::move(c));
  }
}

void plan_flags(store::Store& s, const Desired& d, bool prune, Plan& p, std::vector<std::string>& errors) {
  auto release_route = [&s](const std::string& id) -> std::optional<std::string> {
    auto r = s.get_release(id);
    if (!r) return std::nullopt;
    return r->route;
  };
  std::set<std::string> declared;
  for (const auto& f : d.flags) {
    declared.insert(f.key);
    if (std::string e = flags::check_role(f.flag, release_route); !e.empty()) {
      errors.push_back(f.where + ": Flag " + f.key + ": " + e);
      continue;
    }
    auto cur = s.get_flag(f.key);
    if (cur && cur->definition == f.definition) continue;
    Change c;
    c.kind = "Flag";
    c.name = f.key;
    c.where = f.where;
    c.op = cur ? Op::kChange : Op::kCreate;
    c.previous = cur ? cur->definition : "";
    c.flag_version = cur ? cur->version : 0;
    c.definition = f.definition;
    c.fields = object_fields(c.previous, f.definition);
    p.changes.push_back(std::move(c));
  }
  if (!prune) return;
  for (const auto& r : s.list_flags()) {
    if (declared.count(r.key)) continue;
    if (r.key.rfind("kill.", 0) == 0) {
      p.notes.push_back("Flag " + r.key + " is a kill switch, not in the files (kept: --prune leaves kill switches)");
      continue;
    }
    Change c;
    c.kind = "Flag";
    c.name = r.key;
    c.op = Op::kRemove;
    c.previous = r.definition;
    c.flag_version = r.version;
    c.fields = object_fields(r.definition, "");
    p.changes.push_back(std::move(c));
  }
}

void plan_releases(store::Store& s, const Desired& d, bool prune, Plan& p, std::vector<std::string>& errors) {
  std::set<std::string> declared;
  for (const auto& dr : d.releases) {
    declared.insert(dr.route);
    auto r = s.get_release(dr.stable);
    if (!r) {
      errors.push_back(dr.where + ": RouteRelease " + dr.route + ": no release '" + dr.stable + "' in the store");
      continue;
    }
    if (r->route != dr.route) {
      errors.push_back(dr.where + ": RouteRelease " + dr.route + ": release " + r->id + " is a release of route '" +
                       r->route + "'");
      continue;
    }
    auto cur = s.get_route(dr.route);
    const std::string was = cur ? cur->stable_release : "";
    if (was == r->id) continue;
    Change c;
    c.kind = "RouteRelease";
    c.name = dr.route;
    c.where = dr.where;
    c.op = was.empty() ? Op::kCreate : Op::kChange;
    c.release = r->id;
    c.fields.push_back({"stable", was.empty() ? "" : json_text(was), json_text(r->id)});
    p.changes.push_back(std::move(c));
  }
  if (prune)
    for (const auto& r : s.list_routes())
      if (!declared.count(r.name) && !r.stable_release.empty())
        p.notes.push_back("RouteRelease " + r.name + " (stable " + r.stable_release +
                          ") is in the store, not in the files (a stable release cannot be removed)");
}

}  // namespace

Plan make_plan(store::Store& s, const Desired& d, bool prune, std::vector<std::string>& errors) {
  Plan p;
  p.notes = d.notes;
  plan_tenants(s, d, prune, p);
  plan_policies(s, d, prune, p);
  plan_flags(s, d, prune, p, errors);
  plan_releases(s, d, prune, p, errors);
  std::stable_sort(p.changes.begin(), p.changes.end(), [](const Change& a, const Change& b) {
    const int ka = kind_rank(a.kind), kb = kind_rank(b.kind);
    return ka != kb ? ka < kb : a.name < b.name;
  });
  for (const auto& c : p.changes) {
    if (c.op == Op::kCreate) ++p.creates;
    if (c.op == Op::kChange) ++p.changes_count;
    if (c.op == Op::kRemove) ++p.removes;
  }
  return p;
}

std::string summary(const Plan& p) {
  return "Plan: " + std::to_string(p.creates) + " to create, " + std::to_string(p.changes_count) + " to change, " +
         std::to_string(p.removes) + " to remove.";
}

std::string render(const Plan& p) {
  std::string out;
  for (const auto& c : p.changes) {
    out += c.op == Op::kCreate ? "+ " : c.op == Op::kChange ? "~ " : "- ";
    out += c.kind + " " + c.name;
    if (c.op == Op::kRemove && c.kind == "RoutePolicy") out += " (reset to the defaults)";
    if (!c.where.empty()) out += "  (" + c.where + ")";
    out += "\n";
    for (const auto& f : c.fields) {
      out += "    " + f.name + ": ";
      if (f.before.empty()) out += f.after;
      else out += f.before + " -> " + (f.after.empty() ? "(none)" : f.after);
      out += "\n";
    }
  }
  for (const auto& n : p.notes) out += "note: " + n + "\n";
  if (p.empty()) out += "No changes: the store matches the files.\n";
  return out + summary(p) + "\n";
}

Applied apply_plan(store::Store& s, const Plan& p, const std::string& actor, const std::string& reason) {
  Applied a;
  // One store transaction for the whole plan: a refused write leaves nothing of it applied.
  store::Outcome all = s.atomically([&]() -> store::Outcome {
  bool flags_written = false;
  for (const auto& c : p.changes) {
    store::Outcome out;
    if (c.kind == "Tenant") {
      if (!c.tenant_spec.empty())
        out = s.put_tenant(store::TenantRecord{c.name, c.tenant_spec, actor, 0, 0}, c.op == Op::kCreate, reason);
      for (size_t i = 0; out.ok() && i < c.new_keys.size(); ++i) {
        const KeyRef& k = c.new_keys[i];
        store::ApiKeyRecord r;
        r.id = random_token("key_", 8);
        r.tenant = c.name;
        r.key_sha256 = k.sha256;
        r.prefix = k.prefix;
        r.label = k.label;
        r.created_by = actor;
        out = s.create_api_key(r, reason);
      }
      for (size_t i = 0; out.ok() && i < c.revoke_key_ids.size(); ++i) out = s.revoke_api_key(c.revoke_key_ids[i], actor, reason);
    } else if (c.kind == "RoutePolicy") {
      store::RoutePolicy pol = c.policy;
      pol.updated_by = actor;
      out = s.set_route_policy(pol, reason);
    } else if (c.kind == "RouteRelease") {
      out = s.promote(c.name, c.release, actor, reason);
    } else if (c.kind == "Flag" && !flags_written) {
      // Every flag change of the plan in one transaction.
      flags_written = true;
      std::vector<store::FlagRecord> upserts;
      std::vector<std::string> deletes;
      std::vector<store::AuditEntry> audit;
      std::vector<std::string> names;
      for (const auto& f : p.changes) {
        if (f.kind != "Flag") continue;
        names.push_back("Flag/" + f.name);
        store::AuditEntry e;
        e.actor = actor;
        e.target = f.name;
        e.before = f.previous;
        e.after = f.definition;
        e.reason = reason;
        if (f.op == Op::kRemove) {
          e.action = "flag.delete";
          deletes.push_back(f.name);
        } else {
          e.action = "flag.apply";
          upserts.push_back({f.name, f.definition, actor, 0, 0, f.flag_version});
        }
        audit.push_back(std::move(e));
      }
      out = s.write_flags(upserts, deletes, audit);
      if (out.ok()) a.done.insert(a.done.end(), names.begin(), names.end());
      else a.error = "Flag: " + out.error;
      if (!out.ok()) return {a.error, "", ""};
      continue;
    } else {
      continue;  // a flag written with the others
    }
    if (!out.ok()) {
      a.error = c.kind + " " + c.name + ": " + out.error;
      return {a.error, "", ""};
    }
    a.done.push_back(c.kind + "/" + c.name);
  }
  store::AuditEntry e;
  e.actor = actor;
  e.action = "gitops.apply";
  e.target = "gitops";
  e.after = summary(p);
  e.reason = reason;
  if (!p.empty()) s.append_audit(e);
  return {};
  });
  if (!all.ok()) {
    if (a.error.empty()) a.error = all.error;
    a.done.clear();  // rolled back: nothing of the plan stands
  }
  return a;
}

namespace {

// True when `holder` ("apply:HOST:PID:...") is an apply of this host whose process is gone:
// its lease need not be waited out.
bool dead_local_holder(const std::string& holder, const std::string& host) {
  const std::string prefix = "apply:" + host + ":";
  if (holder.rfind(prefix, 0) != 0) return false;
  const long pid = std::strtol(holder.c_str() + prefix.size(), nullptr, 10);
  return pid > 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

}  // namespace

ApplyLease::ApplyLease(store::Store& s, int64_t wait_ms, int64_t ttl_ms) : s_(s) {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  mine_ = std::string("apply:") + host + ":" + std::to_string(getpid()) + ":" + random_token("", 4);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  for (;;) {
    const std::string steal = dead_local_holder(other_, host) ? other_ : "";
    store::Lease l = s_.acquire_lease(kApplyLease, mine_, ttl_ms, unix_millis(), steal);
    if (l.held) {
      held_ = true;
      return;
    }
    const bool retry_now = steal.empty() && dead_local_holder(l.holder, host);
    other_ = l.holder;
    if (retry_now) continue;
    if (std::chrono::steady_clock::now() >= deadline) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

ApplyLease::~ApplyLease() {
  if (held_) s_.release_lease(kApplyLease, mine_);
}

namespace {

// The first line `cmd` prints ("" when it fails).
std::string first_line(const std::string& cmd, bool& any_output) {
  any_output = false;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return "";
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, f)) out += buf;
  const int rc = pclose(f);
  if (rc != 0) return "";
  any_output = !out.empty();
  return out.substr(0, out.find('\n'));
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace

std::string git_revision(const std::string& dir) {
  bool any = false;
  const std::string d = shell_quote(dir);
  std::string head = first_line("git -C " + d + " rev-parse HEAD 2>/dev/null", any);
  if (head.size() < 7) return "";
  first_line("git -C " + d + " status --porcelain --untracked-files=normal -- . 2>/dev/null", any);
  return any ? head + "-dirty" : head;
}

}  // namespace sluice::gitops
