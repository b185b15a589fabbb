// store/store.hpp: what sluice persists, behind one interface with one conformance suite
// (tests/store/). The control plane writes here and publishes snapshots; the data plane
// never touches it. Every mutating call is one transaction that includes its audit entry.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice::store {

struct ReleaseRecord {
  std::string id, full_hash, route, tuple, created_by, parent, git_commit, eval_pass_id;
  int64_t created_at = 0;
};

struct RouteRecord {
  std::string name, stable_release;
  int64_t updated_at = 0;
};

struct RouteChange {
  int64_t seq = 0;
  std::string route, release, previous, action, actor, reason;
  int64_t at = 0;
};

struct AuditEntry {
  int64_t seq = 0, at = 0;
  std::string actor, action, target, before, after, reason, outcome = "ok";
};

struct RolloutRecord {
  std::string id, route, stable_release, candidate_release, spec, state, status = "active", created_by;
  int64_t version = 0, created_at = 0, updated_at = 0;
};

struct RolloutCommand {
  int64_t seq = 0;
  std::string rollout_id, command, actor, reason;
  int64_t at = 0;
};

struct RolloutEvent {
  int64_t seq = 0;
  std::string rollout_id;
  int64_t at = 0;
  std::string kind, detail;
};

// A route without a policy of its own needs a person's sign-off before full exposure: an
// approval step before any rollout step above this weight. A route opts out explicitly
// (require_approval_above = kNoApproval, audited).
inline constexpr double kDefaultApprovalAbove = 99;
inline constexpr double kNoApproval = 101;

struct RoutePolicy {
  std::string route;
  double require_approval_above = kDefaultApprovalAbove;  // percent; above 100 = never
  std::string eval_suite;               // suite name a candidate must have passed ("" = any)
  // Promotion between environments: a rollout may start only when the release also passed,
  // in environment `evidence_environment` ("" = no such requirement), every suite of
  // `evidence_suites` (empty: any passing run there). The evidence arrives in an imported
  // release bundle (control/bundle.hpp).
  std::string evidence_environment;
  std::vector<std::string> evidence_suites;
  std::string updated_by;
  int64_t updated_at = 0;
};

struct EvalRunRecord {
  std::string id, route, release, baseline, suite_name, suite_hash, summary, created_by;
  bool passed = false;
  int64_t created_at = 0;
  // Where the run happened: "" for this store's own environment, else the environment named
  // by the bundle it was imported from. Only own runs satisfy the eval gate and set the
  // release's eval_pass_id; imported ones are evidence for a route's evidence_environment.
  std::string environment;
};

// A tenant defined through the CLI or admin API. `spec` is its settings as JSON
// (config/tenant_spec.hpp checks it before it is stored).
struct TenantRecord {
  std::string name, spec, updated_by;
  int64_t created_at = 0, updated_at = 0;
};

// An API key of a tenant: only its hash is kept; `prefix` lets a person recognise it.
struct ApiKeyRecord {
  std::string id, tenant, key_sha256, prefix, label, created_by, revoked_by, replaced_by;
  int64_t created_at = 0;
  int64_t expires_at = 0;  // a rotated key stays valid until then (0: never)
  int64_t revoked_at = 0;  // 0: not revoked
  bool active(int64_t now_ms) const { return revoked_at == 0 && (expires_at == 0 || now_ms < expires_at); }
};

// Money a tenant spent in one period ("2026-11-30" or "2026-11"), in micro-dollars.
struct SpendRecord {
  std::string tenant, period;
  int64_t micro_usd = 0;
};

// Money spent on one UTC day by (route, release, tenant), and the priced requests behind it.
struct RouteSpend {
  std::string day, route, release, tenant;
  int64_t micro_usd = 0, requests = 0;
};

// A Responses API answer kept for previous_response_id (bridge/front.hpp).
struct StoredResponse {
  std::string tenant, id, body;
  int64_t expires_at = 0;  // unix ms
};

// A feature flag (flags/flagd.hpp): `definition` is its canonical JSON, the object under
// flags.KEY of a flagd flag file. `version` counts its writes (1 when created).
struct FlagRecord {
  std::string key, definition, updated_by;
  int64_t created_at = 0, updated_at = 0, version = 0;
};

// An event of the incident timeline that no other table records (incident/ring.hpp):
// upstream breaker changes and ejections, config reloads. `detail` is a JSON object.
struct EventRecord {
  int64_t seq = 0, at = 0;
  std::string kind, route, subject, summary, detail;
};

// A lease: one holder at a time (the rollout controller of several replicas).
struct Lease {
  std::string holder;
  int64_t token = 0;       // raised by every change of holder; 0: never held
  int64_t expires_ms = 0;  // unix ms
  bool held = false;       // acquire_lease: the caller holds it now
};
// A write made on behalf of a lease holder: refused ("fenced") unless lease `lease` still has
// `token`, so a holder that lost its lease (paused, cut off, presumed dead) cannot write.
struct Fence {
  std::string lease;
  int64_t token = 0;
};

// Result of a mutation: error empty on success.
struct Outcome {
  std::string error;
  std::string before, after;
  bool ok() const { return error.empty(); }
};

// The store, split by what it holds: each part is an interface of its own, so a module
// can say which part it uses; `Store` is all of them over one database (sql_store.cpp).

// Releases (immutable, content-addressed, with their blobs), each route's stable release
// and history, and route policies.
class ReleaseStore {
 public:
  virtual ~ReleaseStore() = default;

  virtual void put_blob(const std::string& sha256, const std::string& content) = 0;
  virtual std::optional<std::string> get_blob(const std::string& sha256) = 0;

  // Inserts the release and its blobs atomically with an audit entry. Creating identical
  // content again is not an error: `created` is false and the stored record is returned.
  virtual Outcome create_release(const ReleaseRecord& r, const std::vector<std::pair<std::string, std::string>>& blobs,
                                 bool& created) = 0;
  // Exact id, or a unique prefix of it.
  virtual std::optional<ReleaseRecord> get_release(const std::string& id_or_prefix) = 0;
  virtual std::vector<ReleaseRecord> list_releases(const std::string& route = "") = 0;

  virtual std::vector<RouteRecord> list_routes() = 0;
  virtual std::optional<RouteRecord> get_route(const std::string& name) = 0;
  virtual std::vector<RouteChange> route_history(const std::string& route) = 0;
  // Makes `release` the stable release of `route` (which must be the release's route).
  virtual Outcome promote(const std::string& route, const std::string& release, const std::string& actor,
                          const std::string& reason) = 0;
  // Switches `route` back to the stable release it had before the current one.
  virtual Outcome rollback(const std::string& route, const std::string& actor, const std::string& reason) = 0;

  // Route policies (audited).
  virtual Outcome set_route_policy(const RoutePolicy& p, const std::string& reason) = 0;
  virtual std::optional<RoutePolicy> get_route_policy(const std::string& route) = 0;

  // Eval runs. A passing run for a release sets the release's eval_pass_id (same transaction).
  virtual Outcome record_eval_run(const EvalRunRecord& r) = 0;
  virtual std::optional<EvalRunRecord> get_eval_run(const std::string& id) = 0;
  virtual std::vector<EvalRunRecord> list_eval_runs(const std::string& release) = 0;
};

// Rollouts and their evidence, operators' commands and events, and the controller's lease.
class RolloutStore {
 public:
  virtual ~RolloutStore() = default;

  // Rollouts. At most one active rollout per route (the store refuses a second).
  virtual Outcome create_rollout(const RolloutRecord& r, const std::string& reason) = 0;
  virtual std::optional<RolloutRecord> get_rollout(const std::string& id) = 0;
  virtual std::optional<RolloutRecord> active_rollout(const std::string& route) = 0;
  virtual std::vector<RolloutRecord> list_rollouts(const std::string& route, bool active_only) = 0;
  // Compare-and-set on r.version: writes state/status and bumps the version. Error
  // "conflict" when someone else wrote first. When `promote_candidate` is set the route's
  // stable release becomes the candidate in the same transaction. `audit` (optional) is
  // appended in the same transaction too.
  // `fence` (optional): refused with "fenced" unless its lease still has its token. `events`
  // (optional) are appended in the same transaction: a decision and its record stand or fall
  // together.
  virtual Outcome update_rollout(RolloutRecord& r, bool promote_candidate, const AuditEntry* audit,
                                 const Fence* fence = nullptr, const std::vector<RolloutEvent>* events = nullptr) = 0;
  // Commands from operators (CLI or admin API), applied by the controller in order.
  virtual Outcome add_rollout_command(const RolloutCommand& c) = 0;
  virtual std::vector<RolloutCommand> pending_rollout_commands(const std::string& rollout_id) = 0;
  // False (nothing written) when `fence` is given and no longer holds.
  virtual bool mark_rollout_command_applied(int64_t seq, const Fence* fence = nullptr) = 0;
  virtual void append_rollout_event(const RolloutEvent& e) = 0;
  virtual std::vector<RolloutEvent> rollout_events(const std::string& rollout_id, int64_t after_seq) = 0;
  // Each replica's own evidence of a rollout (cumulative JSON, replaced as it grows): written
  // by every replica, merged by the controller. Not a change the snapshot shows.
  virtual void put_rollout_evidence(const std::string& rollout_id, const std::string& replica, const std::string& json,
                                    int64_t now_ms) = 0;
  virtual std::vector<std::pair<std::string, std::string>> list_rollout_evidence(const std::string& rollout_id) = 0;

  // Leases. acquire_lease takes `name` for `holder` until now_ms + ttl_ms when nobody holds
  // it, it expired, or `holder` holds it already (a renewal keeps the token; a take-over
  // raises it). `steal_from`: a holder the caller knows is dead (a process of this host that
  // no longer exists), whose lease counts as expired. Returns the lease as it is after the
  // call. Holders' clocks must agree to well within the ttl. release_lease lets another
  // replica take over at once.
  virtual Lease acquire_lease(const std::string& name, const std::string& holder, int64_t ttl_ms, int64_t now_ms,
                              const std::string& steal_from = "") = 0;
  virtual void release_lease(const std::string& name, const std::string& holder) = 0;
};

// Tenants, their API keys, and what they and the routes spent.
class TenantStore {
 public:
  virtual ~TenantStore() = default;

  // Tenants and their keys (every change audited). put_tenant creates (`create`: refused if
  // it exists) or replaces a tenant's spec (refused if it does not exist).
  virtual Outcome put_tenant(const TenantRecord& t, bool create, const std::string& reason) = 0;
  virtual std::optional<TenantRecord> get_tenant(const std::string& name) = 0;
  virtual std::vector<TenantRecord> list_tenants() = 0;
  // Adds a key to an existing tenant.
  virtual Outcome create_api_key(const ApiKeyRecord& k, const std::string& reason) = 0;
  // Revokes a key now. Refused when it is unknown or already revoked.
  virtual Outcome revoke_api_key(const std::string& id, const std::string& actor, const std::string& reason) = 0;
  // Replaces key `id` by `next` (same tenant) in one transaction: the old key stays valid
  // until `old_expires_at` (now, or after a grace). Refused when `id` is revoked, expired
  // or already rotated, so concurrent rotations of one key leave exactly one successor.
  virtual Outcome rotate_api_key(const std::string& id, const ApiKeyRecord& next, int64_t old_expires_at,
                                 const std::string& reason) = 0;
  virtual std::optional<ApiKeyRecord> get_api_key(const std::string& id) = 0;
  // A tenant's keys ("" = every tenant's), revoked ones included, oldest first.
  virtual std::vector<ApiKeyRecord> list_api_keys(const std::string& tenant) = 0;
  // Adds spend to (tenant, period) rows; reads the rows of some periods.
  virtual void add_spend(const std::vector<SpendRecord>& deltas) = 0;
  virtual std::vector<SpendRecord> list_spend(const std::vector<std::string>& periods) = 0;
  // Adds to (day, route, release, tenant) rows; reads the rows of days in [from, to] (names
  // such as "2026-11-30", compared as text), ordered by day.
  virtual void add_route_spend(const std::vector<RouteSpend>& deltas) = 0;
  virtual std::vector<RouteSpend> list_route_spend(const std::string& from_day, const std::string& to_day) = 0;
};

// Feature flags (kill switches included), with their audit entries.
class FlagStore {
 public:
  virtual ~FlagStore() = default;

  // Feature flags, ordered by key.
  virtual std::vector<FlagRecord> list_flags() = 0;
  virtual std::optional<FlagRecord> get_flag(const std::string& key) = 0;
  // Writes flags in one transaction with its audit entries: all or nothing. An upsert's
  // `version` is the version its caller read (0: the flag must not exist yet); the stored
  // flag gets version + 1, its created_at kept, updated_at now. A version that no longer
  // matches, or a delete of a flag that does not exist, refuses the whole write with an
  // error starting "conflict:". Counts as a change (the gateway republishes its flags).
  virtual Outcome write_flags(const std::vector<FlagRecord>& upserts, const std::vector<std::string>& deletes,
                              const std::vector<AuditEntry>& audit) = 0;
};

// What happened: the audit log (append-only) and the incident timeline's own events.
class AuditLog {
 public:
  virtual ~AuditLog() = default;

  virtual void append_audit(const AuditEntry& e) = 0;
  virtual std::vector<AuditEntry> list_audit(size_t limit) = 0;
  // Audit entries with from_ms <= at < to_ms, oldest first, at most `limit`.
  virtual std::vector<AuditEntry> list_audit_between(int64_t from_ms, int64_t to_ms, size_t limit) = 0;

  // The incident timeline's events (one transaction per batch); read back oldest first
  // with from_ms <= at < to_ms, at most `limit`.
  virtual void append_events(const std::vector<EventRecord>& events) = 0;
  virtual std::vector<EventRecord> list_events(int64_t from_ms, int64_t to_ms, size_t limit) = 0;
};

class ResponseStore {
 public:
  virtual ~ResponseStore() = default;

  // Stored Responses API answers: written behind the data plane (saves and deletions in
  // one transaction, expired rows dropped), read back at start, newest first, up to
  // max_bytes of bodies.
  virtual void save_responses(const std::vector<StoredResponse>& saved,
                              const std::vector<std::pair<std::string, std::string>>& deleted, int64_t now_ms) = 0;
  virtual std::vector<StoredResponse> load_responses(int64_t now_ms, int64_t max_bytes) = 0;
};

// The whole store, and its change feed: what a replica polls to publish a new snapshot.
class Store : public ReleaseStore,
              public RolloutStore,
              public TenantStore,
              public FlagStore,
              public AuditLog,
              public ResponseStore {
 public:
  ~Store() override = default;

  // Changes whenever any connection (another process included) commits: the control plane
  // polls it to publish a new snapshot after a CLI change.
  virtual uint64_t change_counter() = 0;
  // Changes only when another connection (e.g. the CLI) commits: what a process that does
  // its own writes polls.
  virtual uint64_t external_change_counter() = 0;
  // False while a networked store is unreachable (the gateway keeps serving its last
  // snapshot and reports itself not ready for changes). Never blocks.
  virtual bool connected() { return true; }
  // Runs `fn` as one transaction: every write of this store that `fn` makes (on this thread)
  // joins it, and it commits only when `fn` returns ok and no write inside was refused;
  // otherwise none of them stands (sluice apply: all of a plan or nothing). Other callers of
  // this store object wait until it ends.
  virtual Outcome atomically(const std::function<Outcome()>& fn) = 0;
};

// Opens (creating if needed) a SQLite store in WAL mode and applies pending migrations.
std::unique_ptr<Store> open_sqlite(const std::string& path, std::string& error);
// Opens a PostgreSQL store (a postgres:// URL) and applies pending migrations; replicas
// starting together apply each one once.
std::unique_ptr<Store> open_postgres(const std::string& url, std::string& error);
// A postgres:// or postgresql:// URL opens PostgreSQL; anything else is a SQLite file path.
bool is_postgres_url(const std::string& where);
std::unique_ptr<Store> open_store(const std::string& where, std::string& error);
// Where the store lives: $SLUICE_STORE_URL when set, else `configured` (the config's `store`
// or a --store flag) when not empty, else DATA_DIR/sluice.db.
std::string store_location(const std::string& configured, const std::string& data_dir);
// The location with any password replaced by "***" (for logs and errors).
std::string redact_location(const std::string& where);

}  // namespace sluice::store
