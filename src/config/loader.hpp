// config/loader.hpp: YAML -> Config with every error located (file:line:column), and the
// checks that make a config safe to serve. Exceptions stay inside; callers get values.
#pragma once
#include <string>
#include <vector>

#include "config/config.hpp"

namespace sluice::config {

struct LoadResult {
  Config config;
  std::vector<std::string> errors;    // "file:line:col: message"
  std::vector<std::string> warnings;  // same shape; do not block serving
  std::vector<std::string> route_locations;  // file:line:col per route (for later checks)
  std::vector<std::string> pool_locations;   // file:line:col per pool
  std::vector<std::string> fallback_locations;  // file:line:col per fallback
  std::vector<std::string> long_context_locations;  // file:line:col per long_context entry
  bool ok() const { return errors.empty(); }
};

// Parse and type-check only; call validate() once command-line overrides are applied.
LoadResult load_file(const std::string& path);
LoadResult load_string(const std::string& yaml, const std::string& source_name);

// Semantic checks shared by file and flag configs: unique names, known references,
// parsable URLs and addresses, secrets resolvable. Appends to result.errors/warnings.
void validate(LoadResult& result);

// Adds an upstream given as NAME=URL on the command line. Returns an error message or "".
std::string add_flag_upstream(Config& cfg, const std::string& spec);

}  // namespace sluice::config
