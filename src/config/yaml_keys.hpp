// config/yaml_keys.hpp: unknown keys in a YAML mapping, named with the keys that are allowed
// (the gateway config and eval suites report them the same way).
#pragma once
#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <string>

namespace sluice::config {

// Calls report(key_node, message) for every key of `n` that is not in `keys`.
template <class Report>
void for_each_unknown_key(const YAML::Node& n, std::initializer_list<const char*> keys, const char* what,
                          Report&& report) {
  for (auto it = n.begin(); it != n.end(); ++it) {
    std::string k = it->first.Scalar();
    bool known = false;
    for (const char* a : keys) known = known || k == a;
    if (known) continue;
    std::string list;
    for (const char* a : keys) list += std::string(list.empty() ? "" : ", ") + a;
    report(it->first, "unknown key '" + k + "' in " + what + " (expected one of: " + list + ")");
  }
}

}  // namespace sluice::config
