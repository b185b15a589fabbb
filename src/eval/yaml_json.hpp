// eval/yaml_json.hpp: YAML nodes as JSON text (assertion schemas, raw messages, object vars).
#pragma once
#include <optional>
#include <string>

namespace YAML {
class Node;
}

#include "core/strings.hpp"

namespace sluice::eval {

using sluice::js_number_text;

// Maps -> objects, sequences -> arrays; plain scalars that read as numbers, true/false or
// null keep their JSON type, everything else (and every quoted scalar) is a string.
std::string yaml_to_json(const YAML::Node& n);

// A scalar as promptfoo prints it: js-yaml reads a plain (unquoted) scalar as a number or a
// boolean where YAML's core schema says so, and JavaScript prints it back its own way
// (`1.50` -> "1.5", `1e3` -> "1000", `0x1F` -> "31", `007` -> "7", `True` -> "true"). Other
// scalars, and every quoted one, are their text. nullopt (and `why`) for what js-yaml reads
// as something sluice does not reproduce (a timestamp, digits with '_').
std::optional<std::string> yaml_scalar_text(const YAML::Node& n, std::string& why);


}  // namespace sluice::eval
