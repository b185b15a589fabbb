// control/releases.hpp: the operations on releases and routes, as the admin API and the
// CLI both perform them. Results are JSON or text for humans; errors are values.
#pragma once
#include <string>
#include <vector>

#include "config/snapshot.hpp"
#include "store/store.hpp"

namespace sluice::control {

struct Result {
  std::string error;  // empty on success
  std::string text;   // what to print or return
  bool ok() const { return error.empty(); }
};

// Reads a manifest, stores the release (idempotent), returns its id in `text`.
Result create_release(store::Store& s, const std::string& manifest_path, const std::string& actor);
Result list_releases_text(store::Store& s, const std::string& route);
Result show_release_text(store::Store& s, const std::string& id);
Result diff_releases_text(store::Store& s, const std::string& a, const std::string& b);
std::string release_json(const store::ReleaseRecord& r);
std::string releases_json(store::Store& s, const std::string& route);
std::string routes_json(store::Store& s);
std::string audit_json(store::Store& s, size_t limit);
// Eval runs of a release (all when empty), newest last; with_summary adds each run's report.
std::string eval_runs_json(store::Store& s, const std::string& release, bool with_summary);
std::string eval_run_json(const store::EvalRunRecord& r, bool with_summary);

// One stored release, compiled (nullptr and `error` when missing or broken).
std::shared_ptr<const release::Compiled> compile_release(store::Store& s, const std::string& id, std::string& error);

// The routes that have a stable release, compiled for a snapshot. Routes whose release
// cannot be compiled are reported in `error` and left out.
std::vector<config::RouteBinding> route_bindings(store::Store& s, std::string& error);

}  // namespace sluice::control
