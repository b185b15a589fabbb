// store/sql_store.cpp: the Store over any SQL database (db.hpp): one transaction per
// mutation, its audit entry inside it. The SQL is the common dialect of SQLite and
// PostgreSQL (`?` placeholders, ON CONFLICT, RETURNING); the backends differ only in db.hpp.
#include <algorithm>
#include <chrono>
#include <mutex>
#include <stdexcept>

#include "core/strings.hpp"
#include "store/history.hpp"
#include "store/db.hpp"
#include "store/migrations.hpp"
#include "store/store.hpp"

namespace sluice::store {

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

// A route policy's cross-environment requirement as the audit log shows it.
std::string evidence_text(const std::string& environment, const std::string& suites) {
  if (environment.empty()) return "";
  return " evidence_environment=" + environment + " evidence_suites=" + suites;
}

// The api_keys columns key_row() reads, in order.
#define KEY_COLUMNS \
  "id, tenant, key_sha256, prefix, label, created_by, revoked_by, replaced_by, created_at, expires_at, revoked_at"

// The flags columns flag_row() reads, in order.
#define FLAG_COLUMNS "key, definition, updated_by, created_at, updated_at, version"

class SqlStore final : public Store {
 public:
  explicit SqlStore(std::unique_ptr<Db> db) : owned_(std::move(db)), db_(owned_.get()) {}

  void exec(const char* sql) { db_->exec(sql); }

  // Applies pending migrations, each in a write transaction that re-reads what is applied:
  // replicas starting together apply each migration once (the write lock serializes them).
  void migrate() {
    // What is applied already, read without the write lock: a replica (or the CLI) opening
    // a current store never waits behind a busy writer.
    std::vector<int64_t> applied;
    try {
      Stmt q(db_, "SELECT version FROM schema_migrations");
      while (q.step()) applied.push_back(q.integer(0));
    } catch (const std::exception&) {  // a new store: no table yet
    }
    for (const Migration& m : db_->migrations()) {
      if (std::find(applied.begin(), applied.end(), static_cast<int64_t>(m.version)) != applied.end()) continue;
      db_->begin();
      try {
        exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
             "applied_at BIGINT NOT NULL)");
        Stmt q(db_, "SELECT 1 FROM schema_migrations WHERE version = ?");
        q.bind(1, static_cast<int64_t>(m.version));
        if (!q.step()) {
          exec(m.sql);
          Stmt ins(db_, "INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)");
          ins.bind(1, static_cast<int64_t>(m.version)).bind(2, std::string(m.name)).bind(3, now_ms());
          ins.step();
        }
        db_->commit(false);
      } catch (...) {
        db_->rollback();
        throw;
      }
    }
    db_->schema_ready();
  }

  void put_blob(const std::string& sha, const std::string& content) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Stmt s(db_, "INSERT INTO blobs(sha256, content) VALUES (?, ?) ON CONFLICT DO NOTHING");
    s.bind(1, sha).bind_blob(2, content).step();
  }

  std::optional<std::string> get_blob(const std::string& sha) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Stmt s(db_, "SELECT content FROM blobs WHERE sha256 = ?");
    s.bind(1, sha);
    if (!s.step()) return std::nullopt;
    return s.blob(0);
  }

  Outcome create_release(const ReleaseRecord& r, const std::vector<std::pair<std::string, std::string>>& blobs,
                         bool& created) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Tx tx(*this);
    created = false;
    {
      Stmt q(db_, "SELECT full_hash FROM releases WHERE id = ?");
      q.bind(1, r.id);
      if (q.step()) {
        if (q.text(0) != r.full_hash) return {"release id collision for " + r.id + " (different content)", "", ""};
        tx.commit();
        return {};
      }
    }
    for (const auto& [sha, content] : blobs) {
      Stmt s(db_, "INSERT INTO blobs(sha256, content) VALUES (?, ?) ON CONFLICT DO NOTHING");
      s.bind(1, sha).bind_blob(2, content).step();
    }
    Stmt ins(db_, "INSERT INTO releases(id, full_hash, route, tuple, created_by, created_at, parent, git_commit, "
                  "eval_pass_id) VALUES (?,?,?,?,?,?,?,?,?)");
    ins.bind(1, r.id).bind(2, r.full_hash).bind(3, r.route).bind(4, r.tuple).bind(5, r.created_by);
    ins.bind(6, r.created_at ? r.created_at : now_ms()).bind_null_if_empty(7, r.parent);
    ins.bind_null_if_empty(8, r.git_commit).bind_null_if_empty(9, r.eval_pass_id);
    ins.step();
    audit_locked({0, 0, r.created_by, "release.create", r.id, "", r.tuple, "", "ok"});
    tx.commit();
    created = true;
    return {"", "", r.id};
  }

  std::optional<ReleaseRecord> get_release(const std::string& id) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    {
      Stmt exact(db_, "SELECT id, full_hash, route, tuple, created_by, created_at, parent, git_commit, eval_pass_id "
                      "FROM releases WHERE id = ?");
      exact.bind(1, id);
      if (exact.step()) return row(exact);
    }
    Stmt s(db_, "SELECT id, full_hash, route, tuple, created_by, created_at, parent, git_commit, eval_pass_id FROM "
                "releases WHERE length(?) >= 6 AND substr(id, 1, length(?)) = ? LIMIT 2");
    s.bind(1, id).bind(2, id).bind(3, id);
    std::optional<ReleaseRecord> found;
    while (s.step()) {
      if (found) return std::nullopt;  // ambiguous prefix
      found = row(s);
    }
    return found;
  }

  std::vector<ReleaseRecord> list_releases(const std::string& route) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Stmt s(db_, "SELECT id, full_hash, route, tuple, created_by, created_at, parent, git_commit, eval_pass_id FROM "
                "releases WHERE ? = '' OR route = ? ORDER BY created_at, id");
    s.bind(1, route).bind(2, route);
    std::vector<ReleaseRecord> out;
    while (s.step()) out.push_back(row(s));
    return out;
  }

  std::vector<RouteRecord> list_routes() override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Stmt s(db_, "SELECT name, stable_release, updated_at FROM routes ORDER BY name");
    std::vector<RouteRecord> out;
    while (s.step()) out.push_back({s.text(0), s.text(1), s.integer(2)});
    return out;
  }

  std::optional<RouteRecord> get_route(const std::string& name) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    return route_locked(name);
  }

  std::vector<RouteChange> route_history(const std::string& route) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    return history_locked(route);
  }

  std::vector<RouteChange> history_locked(const std::string& route) {
    Stmt s(db_, "SELECT seq, route, release, previous, action, actor, reason, at FROM route_history WHERE route = ? "
                "ORDER BY seq");
    s.bind(1, route);
    std::vector<RouteChange> out;
    while (s.step())
      out.push_back({s.integer(0), s.text(1), s.text(2), s.text(3), s.text(4), s.text(5), s.text(6), s.integer(7)});
    return out;
  }

  Outcome promote(const std::string& route, const std::string& release, const std::string& actor,
                  const std::string& reason) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Tx tx(*this);
    if (auto busy = active_rollout_locked(route)) return {busy_message(route, *busy), "", ""};
    Stmt q(db_, "SELECT route FROM releases WHERE id = ?");
    q.bind(1, release);
    if (!q.step()) return {"no release " + release, "", ""};
    if (q.text(0) != route) return {"release " + release + " is for route '" + q.text(0) + "', not '" + route + "'", "", ""};
    auto cur = route_locked(route);
    std::string before = cur ? cur->stable_release : "";
    if (before == release) {
      tx.commit();
      return {"", before, release};
    }
    set_stable(route, release, before, "promote", actor, reason);
    tx.commit();
    return {"", before, release};
  }

  Outcome rollback(const std::string& route, const std::string& actor, const std::string& reason) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Tx tx(*this);
    if (auto busy = active_rollout_locked(route)) return {busy_message(route, *busy), "", ""};
    auto cur = route_locked(route);
    if (!cur) return {"route '" + route + "' has no stable release", "", ""};
    RollbackPlan plan = plan_rollback(history_locked(route), cur->stable_release);
    if (plan.target.empty())
      return {"route '" + route + "' has no earlier known good release to roll back to" +
                  (plan.skipped.empty() ? std::string() : " (" + plan.note() + ")"),
              "", ""};
    set_stable(route, plan.target, cur->stable_release, "rollback", actor, reason, plan.note());
    tx.commit();
    return {"", cur->stable_release, plan.target};
  }

  // ---- rollouts

  static constexpr const char* kRolloutCols =
      "id, route, stable_release, candidate_release, spec, state, status, version, created_by, created_at, updated_at";

  static RolloutRecord rollout_row(const Stmt& s) {
    RolloutRecord r;
    r.id = s.text(0);
    r.route = s.text(1);
    r.stable_release = s.text(2);
    r.candidate_release = s.text(3);
    r.spec = s.text(4);
    r.state = s.text(5);
    r.status = s.text(6);
    r.version = s.integer(7);
    r.created_by = s.text(8);
    r.created_at = s.integer(9);
    r.updated_at = s.integer(10);
    return r;
  }

  Outcome create_rollout(const RolloutRecord& r, const std::string& reason) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Tx tx(*this);
    {
      Stmt q(db_, "SELECT id FROM rollouts WHERE route = ? AND status = 'active'");
      q.bind(1, r.route);
      if (q.step()) return {"route '" + r.route + "' already has an active rollout (" + q.text(0) + ")", "", ""};
    }
    for (const std::string* rel : {&r.stable_release, &r.candidate_release}) {
      Stmt q(db_, "SELECT route FROM releases WHERE id = ?");
      q.bind(1, *rel);
      if (!q.step()) return {"no release " + *rel, "", ""};
      if (q.text(0) != r.route) return {"release " + *rel + " is for route '" + q.text(0) + "'", "", ""};
    }
    int64_t at = now_ms();
    Stmt ins(db_, "INSERT INTO rollouts(id, route, stable_release, candidate_release, spec, state, status, version, "
                  "created_by, created_at, updated_at) VALUES (?,?,?,?,?,?,'active',1,?,?,?)");
    ins.bind(1, r.id).bind(2, r.route).bind(3, r.stable_release).bind(4, r.candidate_release).bind(5, r.spec);
    ins.bind(6, r.state).bind(7, r.created_by).bind(8, at).bind(9, at).step();
    audit_locked({0, at, r.created_by, "rollout.start", r.route, r.stable_release, r.candidate_release + " (" + r.id + ")",
                  reason, "ok"});
    tx.commit();
    return {"", r.stable_release, r.id};
  }

  std::optional<RolloutRecord> get_rollout(const std::string& id) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Stmt s(db_, (std::string("SELECT ") + kRolloutCols + " FROM rollouts WHERE id = ?").c_str());
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return rollout_row(s);
  }

  std::optional<RolloutRecord> active_rollout(const std::string& route) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Stmt s(db_, (std::string("SELECT ") + kRolloutCols + " FROM rollouts WHERE route = ? AND status = 'active'").c_str());
    s.bind(1, route);
    if (!s.step()) return std::nullopt;
    return rollout_row(s);
  }

  std::vector<RolloutRecord> list_rollouts(const std::string& route, bool active_only) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Stmt s(db_, (std::string("SELECT ") + kRolloutCols +
                 " FROM rollouts WHERE (? = '' OR route = ?) AND (? = 0 OR status = 'active') ORDER BY created_at, id")
                    .c_str());
    s.bind(1, route).bind(2, route).bind(3, static_cast<int64_t>(active_only));
    std::vector<RolloutRecord> out;
    while (s.step()) out.push_back(rollout_row(s));
    return out;
  }

  Outcome update_rollout(RolloutRecord& r, bool promote_candidate, const AuditEntry* audit, const Fence* fence,
                         const std::vector<RolloutEvent>* events) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Tx tx(*this);
    if (fence && !fence_holds(*fence)) return {"fenced", "", ""};
    int64_t at = now_ms();
    Stmt up(db_, "UPDATE rollouts SET state = ?, status = ?, version = version + 1, updated_at = ? WHERE id = ? AND "
                 "version = ?");
    up.bind(1, r.state).bind(2, r.status).bind(3, at).bind(4, r.id).bind(5, r.version).step();
    if (db_->changes() != 1) return {"conflict", "", ""};
    if (promote_candidate) {
      auto cur = route_locked(r.route);
      std::string before = cur ? cur->stable_release : "";
      if (before != r.candidate_release)
        set_stable(r.route, r.candidate_release, before, "promote", audit ? audit->actor : "rollout",
                   "rollout " + r.id + " completed");
    }
    if (audit) audit_locked(*audit);
    if (events)
      for (const auto& e : *events) event_locked(e);
    tx.commit();
    ++r.version;
    r.updated_at = at;
    return {};
  }

  Outcome add_rollout_command(const RolloutCommand& c) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Tx tx(*this);
    int64_t at = now_ms();
    Stmt q(db_, "SELECT route FROM rollouts WHERE id = ? AND status = 'active'");
    q.bind(1, c.rollout_id);
    if (!q.step()) return {"rollout " + c.rollout_id + " is not active", "", ""};
    std::string route = q.text(0);
    Stmt ins(db_, "INSERT INTO rollout_commands(rollout_id, command, actor, reason, at) VALUES (?,?,?,?,?)");
    ins.bind(1, c.rollout_id).bind(2, c.command).bind(3, c.actor).bind_null_if_empty(4, c.reason).bind(5, at).step();
    audit_locked({0, at, c.actor, "rollout." + c.command, route, "", c.rollout_id, c.reason, "ok"});
    tx.commit();
    return {};
  }

  std::vector<RolloutCommand> pending_rollout_commands(const std::string& rollout_id) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Stmt s(db_, "SELECT seq, rollout_id, command, actor, reason, at FROM rollout_commands WHERE rollout_id = ? AND "
                "applied_at IS NULL ORDER BY seq");
    s.bind(1, rollout_id);
    std::vector<RolloutCommand> out;
    while (s.step()) out.push_back({s.integer(0), s.text(1), s.text(2), s.text(3), s.text(4), s.integer(5)});
    return out;
  }

  bool mark_rollout_command_applied(int64_t seq, const Fence* fence) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Tx tx(*this);
    if (fence && !fence_holds(*fence)) return false;
    Stmt s(db_, "UPDATE rollout_commands SET applied_at = ? WHERE seq = ?");
    s.bind(1, now_ms()).bind(2, seq).step();
    tx.commit(false);
    return true;
  }

  void append_rollout_event(const RolloutEvent& e) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    event_locked(e);
  }

  void put_rollout_evidence(const std::string& rollout_id, const std::string& replica, const std::string& json,
                            int64_t now_ms) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Stmt s(db_, "INSERT INTO rollout_evidence(rollout_id, replica, evidence, updated_ms) VALUES (?,?,?,?) "
                "ON CONFLICT (rollout_id, replica) DO UPDATE SET evidence = excluded.evidence, "
                "updated_ms = excluded.updated_ms");
    s.bind(1, rollout_id).bind(2, replica).bind(3, json).bind(4, now_ms).step();
  }

  std::vector<std::pair<std::string, std::string>> list_rollout_evidence(const std::string& rollout_id) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Stmt s(db_, "SELECT replica, evidence FROM rollout_evidence WHERE rollout_id = ? ORDER BY replica");
    s.bind(1, rollout_id);
    std::vector<std::pair<std::string, std::string>> out;
    while (s.step()) out.emplace_back(s.text(0), s.text(1));
    return out;
  }

  Lease acquire_lease(const std::string& name, const std::string& holder, int64_t ttl_ms, int64_t now,
                      const std::string& steal_from) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Tx tx(*this);
    Lease l;
    Stmt q(db_, "SELECT holder, token, expires_ms FROM leases WHERE name = ?");
    q.bind(1, name);
    const bool exists = q.step();
    if (exists) {
      l.holder = q.text(0);
      l.token = q.integer(1);
      l.expires_ms = q.integer(2);
    }
    const bool dead = !steal_from.empty() && l.holder == steal_from;
    if (exists && l.holder != holder && l.expires_ms > now && !dead) return l;  // someone else holds it
    const bool renewal = exists && l.holder == holder && l.expires_ms > now;
    if (!renewal) {
      l.token += 1;
      l.holder = holder;
    }
    l.expires_ms = now + ttl_ms;
    Stmt up(db_, exists ? "UPDATE leases SET holder = ?, token = ?, expires_ms = ?, acquired_ms = CASE WHEN ? = 1 "
                          "THEN acquired_ms ELSE ? END WHERE name = ?"
                        : "INSERT INTO leases(holder, token, expires_ms, acquired_ms, name) VALUES (?,?,?,?,?)");
    if (exists)
      up.bind(1, l.holder).bind(2, l.token).bind(3, l.expires_ms).bind(4, static_cast<int64_t>(renewal)).bind(5, now)
          .bind(6, name);
    else
      up.bind(1, l.holder).bind(2, l.token).bind(3, l.expires_ms).bind(4, now).bind(5, name);
    up.step();
    tx.commit(false);
    l.held = true;
    return l;
  }

  void release_lease(const std::string& name, const std::string& holder) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Stmt s(db_, "UPDATE leases SET expires_ms = 0 WHERE name = ? AND holder = ?");
    s.bind(1, name).bind(2, holder).step();
  }

  std::vector<RolloutEvent> rollout_events(const std::string& rollout_id, int64_t after_seq) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Stmt s(db_, "SELECT seq, rollout_id, at, kind, detail FROM rollout_events WHERE rollout_id = ? AND seq > ? ORDER "
                "BY seq");
    s.bind(1, rollout_id).bind(2, after_seq);
    std::vector<RolloutEvent> out;
    while (s.step()) out.push_back({s.integer(0), s.text(1), s.integer(2), s.text(3), s.text(4)});
    return out;
  }

  // ---- route policies

  Outcome set_route_policy(const RoutePolicy& p, const std::string& reason) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Tx tx(*this);
    int64_t at = now_ms();
    std::string before;
    {
      Stmt q(db_, "SELECT require_approval_above, eval_suite, evidence_environment, evidence_suites FROM "
                  "route_policies WHERE route = ?");
      q.bind(1, p.route);
      before = q.step() ? "require_approval_above=" + num_text(q.real(0)) + " eval_suite=" + q.text(1) +
                              evidence_text(q.text(2), q.text(3))
                        : "require_approval_above=" + num_text(kDefaultApprovalAbove) + " (default) eval_suite=";
    }
    const std::string suites = join(p.evidence_suites, ",");
    Stmt up(db_, "INSERT INTO route_policies(route, require_approval_above, eval_suite, updated_by, updated_at, "
                 "evidence_environment, evidence_suites) VALUES (?,?,?,?,?,?,?) ON CONFLICT(route) DO UPDATE SET "
                 "require_approval_above = excluded.require_approval_above, eval_suite = excluded.eval_suite, "
                 "updated_by = excluded.updated_by, updated_at = excluded.updated_at, evidence_environment = "
                 "excluded.evidence_environment, evidence_suites = excluded.evidence_suites");
    up.bind(1, p.route).bind_double(2, p.require_approval_above).bind_null_if_empty(3, p.eval_suite);
    up.bind(4, p.updated_by).bind(5, at).bind(6, p.evidence_environment).bind(7, suites).step();
    audit_locked({0, at, p.updated_by, "route.policy", p.route, before,
                  "require_approval_above=" + num_text(p.require_approval_above) + " eval_suite=" + p.eval_suite +
                      evidence_text(p.evidence_environment, suites),
                  reason, "ok"});
    tx.commit();
    return {};
  }

  std::optional<RoutePolicy> get_route_policy(const std::string& route) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Stmt q(db_, "SELECT route, require_approval_above, eval_suite, updated_by, updated_at, evidence_environment, "
                "evidence_suites FROM route_policies WHERE route = ?");
    q.bind(1, route);
    if (!q.step()) return std::nullopt;
    RoutePolicy p;
    p.route = q.text(0);
    p.require_approval_above = q.real(1);
    p.eval_suite = q.text(2);
    p.updated_by = q.text(3);
    p.updated_at = q.integer(4);
    p.evidence_environment = q.text(5);
    const std::string suites = q.text(6);
    for (std::string_view suite : split(suites, ','))
      if (!suite.empty()) p.evidence_suites.emplace_back(suite);
    return p;
  }

  // ---- tenants and keys

  Outcome put_tenant(const TenantRecord& t, bool create, const std::string& reason) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Tx tx(*this);
    const int64_t at = now_ms();
    std::string before;
    {
      Stmt q(db_, "SELECT spec FROM tenants WHERE name = ?");
      q.bind(1, t.name);
      if (q.step()) before = q.text(0);
    }
    if (create && !before.empty()) return {"tenant '" + t.name + "' already exists (use update)", "", ""};
    if (!create && before.empty()) return {"no tenant '" + t.name + "'", "", ""};
    if (create) {
      Stmt ins(db_, "INSERT INTO tenants(name, spec, created_at, updated_at, updated_by) VALUES (?,?,?,?,?)");
      ins.bind(1, t.name).bind(2, t.spec).bind(3, at).bind(4, at).bind(5, t.updated_by).step();
    } else {
      Stmt up(db_, "UPDATE tenants SET spec = ?, updated_at = ?, updated_by = ? WHERE name = ?");
      up.bind(1, t.spec).bind(2, at).bind(3, t.updated_by).bind(4, t.name).step();
    }
    audit_locked({0, at, t.updated_by, create ? "tenant.create" : "tenant.update", t.name, before, t.spec, reason, "ok"});
    tx.commit();
    return {"", before, t.spec};
  }

  std::optional<TenantRecord> get_tenant(const std::string& name) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Stmt q(db_, "SELECT name, spec, updated_by, created_at, updated_at FROM tenants WHERE name = ?");
    q.bind(1, name);
    if (!q.step()) return std::nullopt;
    return TenantRecord{q.text(0), q.text(1), q.text(2), q.integer(3), q.integer(4)};
  }

  std::vector<TenantRecord> list_tenants() override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Stmt q(db_, "SELECT name, spec, updated_by, created_at, updated_at FROM tenants ORDER BY name");
    std::vector<TenantRecord> out;
    while (q.step()) out.push_back({q.text(0), q.text(1), q.text(2), q.integer(3), q.integer(4)});
    return out;
  }

  Outcome create_api_key(const ApiKeyRecord& k, const std::string& reason) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Tx tx(*this);
    if (!tenant_exists_locked(k.tenant)) return {"no tenant '" + k.tenant + "'", "", ""};
    const int64_t at = now_ms();
    insert_key_locked(k, at);
    audit_locked({0, at, k.created_by, "key.create", k.tenant, "", k.id + " " + k.prefix + "...", reason, "ok"});
    tx.commit();
    return {"", "", k.id};
  }

  Outcome revoke_api_key(const std::string& id, const std::string& actor, const std::string& reason) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Tx tx(*this);
    auto k = key_locked(id);
    if (!k) return {"no API key '" + id + "'", "", ""};
    if (k->revoked_at) return {"API key " + id + " is already revoked", "", ""};
    const int64_t at = now_ms();
    Stmt up(db_, "UPDATE api_keys SET revoked_at = ?, revoked_by = ? WHERE id = ?");
    up.bind(1, at).bind(2, actor).bind(3, id).step();
    audit_locked({0, at, actor, "key.revoke", k->tenant, id, "revoked", reason, "ok"});
    tx.commit();
    return {"", id, "revoked"};
  }

  Outcome rotate_api_key(const std::string& id, const ApiKeyRecord& next, int64_t old_expires_at,
                         const std::string& reason) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Tx tx(*this);
    auto k = key_locked(id);
    const int64_t at = now_ms();
    if (!k) return {"no API key '" + id + "'", "", ""};
    if (!k->replaced_by.empty()) return {"API key " + id + " was already rotated (to " + k->replaced_by + ")", "", ""};
    if (!k->active(at)) return {"API key " + id + " is revoked or expired: create a new key instead", "", ""};
    ApiKeyRecord n = next;
    n.tenant = k->tenant;
    insert_key_locked(n, at);
    Stmt up(db_, "UPDATE api_keys SET expires_at = ?, replaced_by = ? WHERE id = ?");
    up.bind(1, std::max(old_expires_at, at)).bind(2, n.id).bind(3, id).step();
    audit_locked({0, at, n.created_by, "key.rotate", k->tenant, id, n.id + " " + n.prefix + "...", reason, "ok"});
    tx.commit();
    return {"", id, n.id};
  }

  std::optional<ApiKeyRecord> get_api_key(const std::string& id) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    return key_locked(id);
  }

  std::vector<ApiKeyRecord> list_api_keys(const std::string& tenant) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Stmt q(db_, tenant.empty() ? "SELECT " KEY_COLUMNS " FROM api_keys ORDER BY created_at, id"
                               : "SELECT " KEY_COLUMNS " FROM api_keys WHERE tenant = ? ORDER BY created_at, id");
    if (!tenant.empty()) q.bind(1, tenant);
    std::vector<ApiKeyRecord> out;
    while (q.step()) out.push_back(key_row(q));
    return out;
  }

  void add_spend(const std::vector<SpendRecord>& deltas) override {
    if (deltas.empty()) return;
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Tx tx(*this);
    for (const auto& d : deltas) {
      Stmt up(db_, "INSERT INTO tenant_spend(tenant, period, micro_usd) VALUES (?,?,?) ON CONFLICT(tenant, period) DO "
                   "UPDATE SET micro_usd = tenant_spend.micro_usd + excluded.micro_usd");
      up.bind(1, d.tenant).bind(2, d.period).bind(3, d.micro_usd).step();
    }
    tx.commit(false);
  }

  std::vector<SpendRecord> list_spend(const std::vector<std::string>& periods) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    std::vector<SpendRecord> out;
    for (const auto& p : periods) {
      Stmt q(db_, "SELECT tenant, period, micro_usd FROM tenant_spend WHERE period = ? ORDER BY tenant");
      q.bind(1, p);
      while (q.step()) out.push_back({q.text(0), q.text(1), q.integer(2)});
    }
    return out;
  }

  void add_route_spend(const std::vector<RouteSpend>& deltas) override {
    if (deltas.empty()) return;
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Tx tx(*this);
    for (const auto& d : deltas) {
      Stmt up(db_, "INSERT INTO route_spend(day, route, release, tenant, micro_usd, requests) VALUES (?,?,?,?,?,?) "
                   "ON CONFLICT(day, route, release, tenant) DO UPDATE SET micro_usd = route_spend.micro_usd + excluded.micro_usd, "
                   "requests = route_spend.requests + excluded.requests");
      up.bind(1, d.day).bind(2, d.route).bind(3, d.release).bind(4, d.tenant).bind(5, d.micro_usd).bind(6, d.requests).step();
    }
    tx.commit(false);
  }

  std::vector<RouteSpend> list_route_spend(const std::string& from_day, const std::string& to_day) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    std::vector<RouteSpend> out;
    Stmt q(db_, "SELECT day, route, release, tenant, micro_usd, requests FROM route_spend WHERE day >= ? AND day <= ? "
                "ORDER BY day, route, release, tenant");
    q.bind(1, from_day).bind(2, to_day);
    while (q.step()) out.push_back({q.text(0), q.text(1), q.text(2), q.text(3), q.integer(4), q.integer(5)});
    return out;
  }

  // ---- stored responses

  void save_responses(const std::vector<StoredResponse>& saved,
                      const std::vector<std::pair<std::string, std::string>>& deleted, int64_t now) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Tx tx(*this);
    Stmt up(db_, "INSERT INTO stored_responses(tenant, id, body, expires_at) VALUES (?,?,?,?) ON CONFLICT(tenant, id) "
                 "DO UPDATE SET body = excluded.body, expires_at = excluded.expires_at");
    for (const auto& r : saved) up.reset().bind(1, r.tenant).bind(2, r.id).bind(3, r.body).bind(4, r.expires_at).step();
    Stmt del(db_, "DELETE FROM stored_responses WHERE tenant = ? AND id = ?");
    for (const auto& [tenant, id] : deleted) del.reset().bind(1, tenant).bind(2, id).step();
    Stmt prune(db_, "DELETE FROM stored_responses WHERE expires_at <= ?");
    prune.bind(1, now).step();
    tx.commit(false);
  }

  std::vector<StoredResponse> load_responses(int64_t now, int64_t max_bytes) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    std::vector<StoredResponse> out;
    int64_t bytes = 0;
    Stmt q(db_, "SELECT tenant, id, body, expires_at FROM stored_responses WHERE expires_at > ? ORDER BY expires_at DESC");
    q.bind(1, now);
    while (q.step()) {
      StoredResponse r{q.text(0), q.text(1), q.text(2), q.integer(3)};
      bytes += static_cast<int64_t>(r.body.size());
      if (bytes > max_bytes) break;
      out.push_back(std::move(r));
    }
    return out;
  }

  // ---- eval runs

  Outcome record_eval_run(const EvalRunRecord& r) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Tx tx(*this);
    int64_t at = r.created_at ? r.created_at : now_ms();
    Stmt ins(db_, "INSERT INTO eval_runs(id, route, release, baseline, suite_name, suite_hash, passed, summary, "
                  "created_by, created_at, environment) VALUES (?,?,?,?,?,?,?,?,?,?,?)");
    ins.bind(1, r.id).bind(2, r.route).bind(3, r.release).bind_null_if_empty(4, r.baseline).bind(5, r.suite_name);
    ins.bind(6, r.suite_hash).bind(7, static_cast<int64_t>(r.passed)).bind(8, r.summary).bind(9, r.created_by);
    ins.bind(10, at).bind(11, r.environment).step();
    // Only a run against this environment's own gateway is the release's eval pass here.
    if (r.passed && r.environment.empty()) {
      Stmt up(db_, "UPDATE releases SET eval_pass_id = ? WHERE id = ?");
      up.bind(1, r.id).bind(2, r.release).step();
    }
    audit_locked({0, at, r.created_by, r.environment.empty() ? "eval.run" : "eval.import", r.release, r.baseline,
                  r.id + (r.passed ? " passed" : " failed"),
                  "suite " + r.suite_name + (r.environment.empty() ? "" : " in environment " + r.environment), "ok"});
    tx.commit();
    return {"", "", r.id};
  }

  static EvalRunRecord eval_row(const Stmt& s) {
    EvalRunRecord r;
    r.id = s.text(0);
    r.route = s.text(1);
    r.release = s.text(2);
    r.baseline = s.text(3);
    r.suite_name = s.text(4);
    r.suite_hash = s.text(5);
    r.passed = s.integer(6) != 0;
    r.summary = s.text(7);
    r.created_by = s.text(8);
    r.created_at = s.integer(9);
    r.environment = s.text(10);
    return r;
  }

  std::optional<EvalRunRecord> get_eval_run(const std::string& id) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Stmt s(db_, "SELECT id, route, release, baseline, suite_name, suite_hash, passed, summary, created_by, created_at, "
                "environment FROM eval_runs WHERE id = ?");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return eval_row(s);
  }

  std::vector<EvalRunRecord> list_eval_runs(const std::string& release) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Stmt s(db_, "SELECT id, route, release, baseline, suite_name, suite_hash, passed, summary, created_by, created_at, "
                "environment FROM eval_runs WHERE ? = '' OR release = ? ORDER BY created_at, id");
    s.bind(1, release).bind(2, release);
    std::vector<EvalRunRecord> out;
    while (s.step()) out.push_back(eval_row(s));
    return out;
  }

  // ---- feature flags

  std::vector<FlagRecord> list_flags() override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Stmt q(db_, "SELECT " FLAG_COLUMNS " FROM flags ORDER BY key");
    std::vector<FlagRecord> out;
    while (q.step()) out.push_back(flag_row(q));
    return out;
  }

  std::optional<FlagRecord> get_flag(const std::string& key) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    return flag_locked(key);
  }

  Outcome write_flags(const std::vector<FlagRecord>& upserts, const std::vector<std::string>& deletes,
                      const std::vector<AuditEntry>& audit) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Tx tx(*this);
    const int64_t at = now_ms();
    for (const auto& f : upserts) {
      if (std::find(deletes.begin(), deletes.end(), f.key) != deletes.end())
        return {"flag '" + f.key + "' is both written and deleted", "", ""};
      auto cur = flag_locked(f.key);
      const int64_t stored = cur ? cur->version : 0;
      if (stored != f.version)
        return {"conflict: flag '" + f.key + "' is at version " + std::to_string(stored) + ", not " +
                    std::to_string(f.version) + " (changed meanwhile; read it again)",
                "", ""};
      if (cur) {
        Stmt up(db_, "UPDATE flags SET definition = ?, updated_at = ?, updated_by = ?, version = ? WHERE key = ?");
        up.bind(1, f.definition).bind(2, at).bind(3, f.updated_by).bind(4, stored + 1).bind(5, f.key).step();
      } else {
        Stmt ins(db_, "INSERT INTO flags(key, definition, created_at, updated_at, updated_by, version) VALUES (?,?,?,?,?,1)");
        ins.bind(1, f.key).bind(2, f.definition).bind(3, at).bind(4, at).bind(5, f.updated_by).step();
      }
    }
    for (const auto& key : deletes) {
      Stmt del(db_, "DELETE FROM flags WHERE key = ?");
      del.bind(1, key).step();
      if (db_->changes() == 0) return {"conflict: flag '" + key + "' does not exist (deleted meanwhile?)", "", ""};
    }
    for (const auto& e : audit) {
      AuditEntry a = e;
      if (!a.at) a.at = at;
      audit_locked(a);
    }
    tx.commit();
    return {"", "", std::to_string(upserts.size() + deletes.size())};
  }

  void append_audit(const AuditEntry& e) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    audit_locked(e);
  }

  std::vector<AuditEntry> list_audit(size_t limit) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Stmt s(db_, "SELECT seq, at, actor, action, target, before, after, reason, outcome FROM audit ORDER BY seq DESC "
                "LIMIT ?");
    s.bind(1, static_cast<int64_t>(limit));
    std::vector<AuditEntry> out;
    while (s.step())
      out.push_back({s.integer(0), s.integer(1), s.text(2), s.text(3), s.text(4), s.text(5), s.text(6), s.text(7),
                     s.text(8)});
    return out;
  }

  std::vector<AuditEntry> list_audit_between(int64_t from_ms, int64_t to_ms, size_t limit) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Stmt s(db_, "SELECT seq, at, actor, action, target, before, after, reason, outcome FROM audit "
                "WHERE at >= ? AND at < ? ORDER BY at, seq LIMIT ?");
    s.bind(1, from_ms).bind(2, to_ms).bind(3, static_cast<int64_t>(limit));
    std::vector<AuditEntry> out;
    while (s.step())
      out.push_back({s.integer(0), s.integer(1), s.text(2), s.text(3), s.text(4), s.text(5), s.text(6), s.text(7),
                     s.text(8)});
    return out;
  }

  // Not counted as a change: events never alter what a snapshot is built from.
  void append_events(const std::vector<EventRecord>& events) override {
    if (events.empty()) return;
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Tx tx(*this);
    for (const auto& e : events) {
      Stmt s(db_, "INSERT INTO events(at, kind, route, subject, summary, detail) VALUES (?,?,?,?,?,?)");
      s.bind(1, e.at ? e.at : now_ms()).bind(2, e.kind).bind(3, e.route).bind(4, e.subject).bind(5, e.summary);
      s.bind(6, e.detail.empty() ? std::string("{}") : e.detail).step();
    }
    tx.commit(false);
  }

  std::vector<EventRecord> list_events(int64_t from_ms, int64_t to_ms, size_t limit) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Stmt s(db_, "SELECT seq, at, kind, route, subject, summary, detail FROM events WHERE at >= ? AND at < ? "
                "ORDER BY at, seq LIMIT ?");
    s.bind(1, from_ms).bind(2, to_ms).bind(3, static_cast<int64_t>(limit));
    std::vector<EventRecord> out;
    while (s.step()) out.push_back({s.integer(0), s.integer(1), s.text(2), s.text(3), s.text(4), s.text(5), s.text(6)});
    return out;
  }

  uint64_t change_counter() override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    return db_->external_version() + local_changes_;
  }

  uint64_t external_change_counter() override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    return db_->external_version();
  }

  bool connected() override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    return db_->connected();
  }

 private:
  bool fence_holds(const Fence& f) {
    Stmt q(db_, "SELECT token FROM leases WHERE name = ?");
    q.bind(1, f.lease);
    return q.step() && q.integer(0) == f.token;
  }

  void event_locked(const RolloutEvent& e) {
    Stmt s(db_, "INSERT INTO rollout_events(rollout_id, at, kind, detail) VALUES (?,?,?,?)");
    s.bind(1, e.rollout_id).bind(2, e.at ? e.at : now_ms()).bind(3, e.kind).bind(4, e.detail).step();
  }

  // A write transaction. Inside atomically() it is nested: it begins and commits nothing of
  // its own, and one that ends without commit() (a refused write) dooms the outer one.
  struct Tx {
    explicit Tx(SqlStore& s) : s(s) {
      if (s.tx_depth_++ == 0) {
        s.db_->begin();
        s.tx_doomed_ = s.tx_counts_ = false;
      }
    }
    ~Tx() {
      if (!done) {
        if (s.tx_depth_ == 1) s.db_->rollback();
        else s.tx_doomed_ = true;
      }
      --s.tx_depth_;
    }
    // `counts`: the change is one the snapshot shows (not, e.g., spend bookkeeping).
    void commit(bool counts = true) {
      done = true;
      if (s.tx_depth_ > 1) {
        s.tx_counts_ = s.tx_counts_ || counts;
        return;
      }
      counts = counts || s.tx_counts_;
      s.db_->commit(counts);
      if (counts) ++s.local_changes_;
    }
    SqlStore& s;
    bool done = false;
  };

 public:
  Outcome atomically(const std::function<Outcome()>& fn) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (tx_depth_ > 0) return fn();  // already inside one: it is part of that
    Tx tx(*this);
    Outcome o;
    try {
      o = fn();
    } catch (const std::exception& e) {
      o.error = e.what();
    }
    if (o.ok() && tx_doomed_) o.error = "a write inside the transaction was refused";
    if (o.ok()) tx.commit(false);  // counts if a write inside did
    return o;
  }

 private:

  static ReleaseRecord row(const Stmt& s) {
    ReleaseRecord r;
    r.id = s.text(0);
    r.full_hash = s.text(1);
    r.route = s.text(2);
    r.tuple = s.text(3);
    r.created_by = s.text(4);
    r.created_at = s.integer(5);
    r.parent = s.text(6);
    r.git_commit = s.text(7);
    r.eval_pass_id = s.text(8);
    return r;
  }

  // A route under a rollout changes stable release only through the rollout.
  std::optional<std::string> active_rollout_locked(const std::string& route) {
    Stmt q(db_, "SELECT id FROM rollouts WHERE route = ? AND status = 'active'");
    q.bind(1, route);
    if (!q.step()) return std::nullopt;
    return q.text(0);
  }
  static std::string busy_message(const std::string& route, const std::string& rollout) {
    return "route '" + route + "' has an active rollout (" + rollout +
           "): let it finish, or abort it first (sluice rollout abort " + route + ")";
  }

  std::optional<RouteRecord> route_locked(const std::string& name) {
    Stmt s(db_, "SELECT name, stable_release, updated_at FROM routes WHERE name = ?");
    s.bind(1, name);
    if (!s.step()) return std::nullopt;
    return RouteRecord{s.text(0), s.text(1), s.integer(2)};
  }

  void set_stable(const std::string& route, const std::string& release, const std::string& before,
                  const std::string& action, const std::string& actor, const std::string& reason,
                  const std::string& note = "") {
    int64_t at = now_ms();
    Stmt up(db_, "INSERT INTO routes(name, stable_release, updated_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE "
                 "SET stable_release = excluded.stable_release, updated_at = excluded.updated_at");
    up.bind(1, route).bind(2, release).bind(3, at).step();
    Stmt h(db_, "INSERT INTO route_history(route, release, previous, action, actor, reason, at) VALUES (?,?,?,?,?,?,?)");
    h.bind(1, route).bind(2, release).bind_null_if_empty(3, before).bind(4, action).bind(5, actor);
    h.bind_null_if_empty(6, reason).bind(7, at).step();
    std::string why = note.empty() ? reason : reason + (reason.empty() ? "[" : " [") + note + "]";
    audit_locked({0, at, actor, "route." + action, route, before, release, why, "ok"});
  }

  bool tenant_exists_locked(const std::string& name) {
    Stmt q(db_, "SELECT 1 FROM tenants WHERE name = ?");
    q.bind(1, name);
    return q.step();
  }
  static ApiKeyRecord key_row(const Stmt& q) {
    ApiKeyRecord k;
    k.id = q.text(0);
    k.tenant = q.text(1);
    k.key_sha256 = q.text(2);
    k.prefix = q.text(3);
    k.label = q.text(4);
    k.created_by = q.text(5);
    k.revoked_by = q.text(6);
    k.replaced_by = q.text(7);
    k.created_at = q.integer(8);
    k.expires_at = q.integer(9);
    k.revoked_at = q.integer(10);
    return k;
  }
  std::optional<ApiKeyRecord> key_locked(const std::string& id) {
    Stmt q(db_, "SELECT " KEY_COLUMNS " FROM api_keys WHERE id = ?");
    q.bind(1, id);
    if (!q.step()) return std::nullopt;
    return key_row(q);
  }
  void insert_key_locked(const ApiKeyRecord& k, int64_t at) {
    Stmt ins(db_, "INSERT INTO api_keys(id, tenant, key_sha256, prefix, label, created_at, created_by, expires_at) "
                  "VALUES (?,?,?,?,?,?,?,?)");
    ins.bind(1, k.id).bind(2, k.tenant).bind(3, k.key_sha256).bind(4, k.prefix).bind_null_if_empty(5, k.label);
    ins.bind(6, at).bind(7, k.created_by).bind(8, k.expires_at).step();
  }

  static FlagRecord flag_row(const Stmt& q) {
    return {q.text(0), q.text(1), q.text(2), q.integer(3), q.integer(4), q.integer(5)};
  }
  std::optional<FlagRecord> flag_locked(const std::string& key) {
    Stmt q(db_, "SELECT " FLAG_COLUMNS " FROM flags WHERE key = ?");
    q.bind(1, key);
    if (!q.step()) return std::nullopt;
    return flag_row(q);
  }

  void audit_locked(const AuditEntry& e) {
    Stmt s(db_, "INSERT INTO audit(at, actor, action, target, before, after, reason, outcome) VALUES (?,?,?,?,?,?,?,?)");
    s.bind(1, e.at ? e.at : now_ms()).bind(2, e.actor).bind(3, e.action).bind_null_if_empty(4, e.target);
    s.bind_null_if_empty(5, e.before).bind_null_if_empty(6, e.after).bind_null_if_empty(7, e.reason);
    s.bind(8, e.outcome).step();
  }

  std::unique_ptr<Db> owned_;
  Db* db_;
  std::recursive_mutex mu_;  // recursive: the calls inside atomically() take it again
  int tx_depth_ = 0;         // Tx objects alive (nested inside atomically())
  bool tx_doomed_ = false;   // a nested Tx ended without commit: the outer one must not commit
  bool tx_counts_ = false;   // a nested Tx committed a change the snapshot shows
  uint64_t local_changes_ = 0;
};

}  // namespace

std::unique_ptr<Store> open_sql_store(std::unique_ptr<Db> db, const std::string& name, std::string& error) {
  auto store = std::make_unique<SqlStore>(std::move(db));
  try {
    store->migrate();
  } catch (const std::exception& e) {
    error = name + ": " + e.what();
    return nullptr;
  }
  return store;
}

}  // namespace sluice::store
