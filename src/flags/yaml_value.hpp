// flags/yaml_value.hpp: a parsed YAML node as a Value (the conversion parse_document uses:
// plain scalars typed as YAML's core schema reads them, quoted ones strings), each value
// keeping its line and column. For callers that read YAML themselves (gitops/).
#pragma once
#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>

#include "flags/value.hpp"

namespace sluice::flags {

// nullopt and `error` ("line:column: what") when a key is not a string, too long, or the
// node is nested too deep.
std::optional<Value> from_yaml_node(const YAML::Node& n, std::string& error);

}  // namespace sluice::flags
