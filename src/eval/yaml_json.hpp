// eval/yaml_json.hpp: YAML nodes as JSON text (assertion schemas, raw messages, object vars).
#pragma once
#include <string>

namespace YAML {
class Node;
}

namespace sluice::eval {

// Maps -> objects, sequences -> arrays; plain scalars that read as numbers, true/false or
// null keep their JSON type, everything else (and every quoted scalar) is a string.
std::string yaml_to_json(const YAML::Node& n);

}  // namespace sluice::eval
