// store/store.hpp: what sluice persists, behind one interface with one conformance suite
// (tests/store/). The control plane writes here and publishes snapshots; the data plane
// never touches it. Every mutating call is one transaction that includes its audit entry.
#pragma once
#include <cstdint>
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

// Result of a mutation: error empty on success.
struct Outcome {
  std::string error;
  std::string before, after;
  bool ok() const { return error.empty(); }
};

class Store {
 public:
  virtual ~Store() = default;

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

  virtual void append_audit(const AuditEntry& e) = 0;
  virtual std::vector<AuditEntry> list_audit(size_t limit) = 0;

  // Changes whenever any connection (another process included) commits: the control plane
  // polls it to publish a new snapshot after a CLI change.
  virtual uint64_t change_counter() = 0;
};

// Opens (creating if needed) a SQLite store in WAL mode and applies pending migrations.
std::unique_ptr<Store> open_sqlite(const std::string& path, std::string& error);

}  // namespace sluice::store
