// gitops/plan.hpp: what `sluice diff` shows and `sluice apply` then does. One planning
// function compares the declared state with the store; apply executes exactly that plan.
// Creates and changes always; removals only with `prune`, and only of what the files fully
// own: flags (kill switches excepted), route policies (reset to the defaults), and the keys
// of a tenant that declares `keys:`. Stable releases and tenants cannot be removed (the store
// has no such removal); with `prune` they are listed as drift in the notes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gitops/documents.hpp"
#include "store/store.hpp"

namespace sluice::gitops {

enum class Op { kCreate, kChange, kRemove };

struct Field {
  std::string name, before, after;  // compact JSON values ("" = absent)
};

struct Change {
  Op op = Op::kCreate;
  std::string kind, name, where;  // where: file:line:column of the document ("" for a removal)
  std::vector<Field> fields;
  // What apply writes.
  store::RoutePolicy policy;                // RoutePolicy
  std::string release;                      // RouteRelease: the full release id
  std::string definition;                   // Flag: canonical JSON ("" on removal)
  int64_t flag_version = 0;                 // Flag: the version read (a concurrent write conflicts)
  std::string previous;                     // Flag: the stored definition (for the audit entry)
  std::string tenant_spec;                  // Tenant: "" when only its keys change
  std::vector<KeyRef> new_keys;             // Tenant
  std::vector<std::string> revoke_key_ids;  // Tenant, with prune
};

struct Plan {
  std::vector<Change> changes;     // in apply order: Tenant, RoutePolicy, Flag, RouteRelease; by name
  std::vector<std::string> notes;  // skipped files, drift that cannot be removed
  size_t creates = 0, changes_count = 0, removes = 0;
  bool empty() const { return changes.empty(); }
};

// The plan from the store's current state to `d`. Checks that need the store (a stable
// release exists and belongs to its route, a release flag names releases of its route) add
// "file:line:column: what" to `errors`; a plan with errors must not be applied.
Plan make_plan(store::Store& s, const Desired& d, bool prune, std::vector<std::string>& errors);

// The plan as text, kubectl diff / terraform plan style, ending with the summary line.
std::string render(const Plan& p);
// "Plan: N to create, M to change, K to remove."
std::string summary(const Plan& p);

struct Applied {
  std::string error;                // empty: every change was applied
  std::vector<std::string> done;    // "kind/name", in order (empty when the apply failed)
  bool ok() const { return error.empty(); }
};
// Writes the plan in its order, each change audited with `actor` and `reason`, all in one
// store transaction (Store::atomically): a refused write stops it and nothing of the plan
// stands (`done` is then empty).
Applied apply_plan(store::Store& s, const Plan& p, const std::string& actor, const std::string& reason);

// Serializes applies (any store, PostgreSQL included) through the store lease "apply".
class ApplyLease {
 public:
  // Waits up to `wait_ms` for the lease; held() says whether it was taken. The lease of an
  // apply of this host whose process has died is taken over at once.
  ApplyLease(store::Store& s, int64_t wait_ms, int64_t ttl_ms = 120000);
  ~ApplyLease();
  ApplyLease(const ApplyLease&) = delete;
  ApplyLease& operator=(const ApplyLease&) = delete;
  bool held() const { return held_; }
  const std::string& other() const { return other_; }  // who holds it when held() is false
 private:
  store::Store& s_;
  std::string mine_, other_;
  bool held_ = false;
};
inline constexpr const char* kApplyLease = "apply";

// "COMMIT" or "COMMIT-dirty" (uncommitted changes under `dir`) when `dir` is in a git work
// tree, else "".
std::string git_revision(const std::string& dir);

}  // namespace sluice::gitops
