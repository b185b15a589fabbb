// gitops/documents.hpp: the declared state read from a directory of YAML files. Each document
// is `kind:` (RoutePolicy, RouteRelease, Flag, Tenant), `name:` and `spec:`; a file may hold
// several (`---`). Everything is checked here that needs no store; errors are
// "file:line:column: what". Secrets never appear: a tenant's key is a reference (env:NAME,
// file:PATH) resolved at load and kept only as its hash.
#pragma once
#include <string>
#include <vector>

#include "flags/flagd.hpp"

namespace sluice::gitops {

struct DeclaredPolicy {
  std::string route, where;
  double require_approval_above = 0;
  std::string eval_suite;
  std::string evidence_environment;  // promotion between environments (environments.md)
  std::vector<std::string> evidence_suites;
};

struct DeclaredRelease {
  std::string route, where;
  std::string stable;  // as written: a release id (or unique prefix)
};

struct DeclaredFlag {
  std::string key, where;
  flags::Flag flag;
  std::string definition;  // canonical JSON (flags::Flag::json), what the store keeps
};

struct KeyRef {
  std::string ref, label, where;  // ref: "env:NAME" or "file:PATH"
  std::string sha256, prefix;     // of the secret it resolves to
};

struct DeclaredTenant {
  std::string name, where;
  std::string spec;  // canonical settings JSON (config::tenant_json)
  bool keys_declared = false;  // `keys:` present: the files own the tenant's keys (--prune revokes others)
  std::vector<KeyRef> keys;
};

struct Desired {
  std::string dir;
  std::vector<std::string> files;  // read, sorted
  std::vector<std::string> notes;  // files skipped, and why
  std::vector<DeclaredPolicy> policies;
  std::vector<DeclaredRelease> releases;
  std::vector<DeclaredFlag> flags;
  std::vector<DeclaredTenant> tenants;
};

// Reads every *.yaml and *.yml under `dir` (recursively, in sorted path order). `errors` gets
// one line per problem in any file; a caller applies nothing unless it is empty.
Desired load_dir(const std::string& dir, std::vector<std::string>& errors);
// One file's text (tests, and load_dir for each file); `base` resolves file: key references.
void load_text(const std::string& file, const std::string& text, const std::string& base, Desired& into,
               std::vector<std::string>& errors);

}  // namespace sluice::gitops
