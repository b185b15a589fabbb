#include "cli/apply_cmds.hpp"

#include <iostream>

#include "cli/common.hpp"
#include "gitops/documents.hpp"
#include "gitops/plan.hpp"

namespace sluice::cli {

namespace {

struct ApplyOptions {
  Common common;
  std::string dir, reason, wait = "60s";
  bool prune = false;
};

// The declared state and the plan against the store; false (errors printed) when any file or
// check fails.
bool plan(store::Store& s, const ApplyOptions& o, gitops::Plan& p) {
  std::vector<std::string> errors;
  gitops::Desired d = gitops::load_dir(o.dir, errors);
  if (errors.empty()) p = gitops::make_plan(s, d, o.prune, errors);
  for (const auto& e : errors) std::cerr << "error: " << e << "\n";
  if (!errors.empty()) std::cerr << "nothing was applied: " << errors.size() << " error(s) in " << o.dir << "\n";
  return errors.empty();
}

int run_diff(const ApplyOptions& o) {
  auto s = open(o.common);
  if (!s) return 1;
  gitops::Plan p;
  if (!plan(*s, o, p)) return 1;
  std::cout << gitops::render(p);
  return p.empty() ? 0 : 2;
}

int run_apply(const ApplyOptions& o) {
  const int64_t wait_ms = parse_duration_ms(o.wait);
  if (wait_ms < 0) return std::cerr << "error: --wait expects 0 or e.g. 30s, 2m\n", 1;
  auto s = open(o.common);
  if (!s) return 1;
  // Everything is read and checked before the lease is taken; the plan applied is the one
  // made while holding it (a concurrent apply may have changed the store meanwhile).
  gitops::Plan p;
  if (!plan(*s, o, p)) return 1;
  gitops::ApplyLease lease(*s, wait_ms);
  if (!lease.held()) {
    std::cerr << "error: another apply is running (lease '" << gitops::kApplyLease << "' held by " << lease.other()
              << "); nothing was applied\n";
    return 1;
  }
  if (!plan(*s, o, p)) return 1;
  std::cout << gitops::render(p);
  if (p.empty()) {
    std::cout << "Nothing to apply.\n";
    return 0;
  }
  const std::string rev = gitops::git_revision(o.dir);
  std::string reason = "sluice apply -f " + o.dir + (rev.empty() ? " (not in a git work tree)" : " at git " + rev);
  if (!o.reason.empty()) reason += ": " + o.reason;
  const std::string actor = o.common.actor.empty() ? default_actor() : o.common.actor;
  gitops::Applied a = gitops::apply_plan(*s, p, actor, reason);
  if (!a.ok()) {
    std::cerr << "error: " << a.error << "\n";
    std::cerr << "nothing was applied (one transaction): fix the cause and apply again\n";
    return 1;
  }
  std::cout << "Apply complete: " << p.creates << " created, " << p.changes_count << " changed, " << p.removes
            << " removed (reason: " << reason << ").\n";
  return 0;
}

void add_options(CLI::App* c, ApplyOptions& o) {
  c->add_option("-f,--filename", o.dir, "directory of YAML files (every *.yaml, *.yml under it)")->required();
  c->add_flag("--prune", o.prune,
              "also remove what the store has and the files do not (flags but kill switches, route policies, "
              "keys of tenants that declare keys)");
  // The store options of the other store commands; not --admin: apply and diff read and write
  // the store itself.
  c->add_option("--data-dir", o.common.data_dir, "state directory (default ./sluice-data)");
  c->add_option("--store", o.common.store,
                "the store: a postgres:// URL or a SQLite file (default $SLUICE_STORE_URL, then DATA_DIR/sluice.db)");
  c->add_option("--actor", o.common.actor, "who is acting, for the audit log (default cli:$USER@host)");
}

}  // namespace

std::function<int()> add_apply_commands(CLI::App& app) {
  auto runner = std::make_shared<std::function<int()>>();
  auto o = std::make_shared<ApplyOptions>();
  auto* diff = app.add_subcommand(
      "diff", "what apply would change: the declared state (-f DIR) against the store (exit 0: none, 2: changes, 1: error)");
  add_options(diff, *o);
  diff->callback([=] { *runner = [=] { return run_diff(*o); }; });
  auto* apply = app.add_subcommand("apply", "make the store hold the state declared in YAML files (-f DIR), audited");
  add_options(apply, *o);
  apply->add_option("--reason", o->reason, "why (audited, after the files' git commit)");
  apply->add_option("--wait", o->wait, "how long to wait for a concurrent apply to finish (default 60s)");
  apply->callback([=] { *runner = [=] { return run_apply(*o); }; });
  return [runner] { return *runner ? (*runner)() : -1; };
}

}  // namespace sluice::cli
