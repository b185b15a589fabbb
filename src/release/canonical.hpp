// release/canonical.hpp: a tiny JSON value with sorted object keys, so that one release
// always serializes to the same bytes on every machine (the input of its content hash).
#pragma once
#include <map>
#include <optional>
#include <string_view>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace YAML {
class Node;
}

namespace sluice::release {

struct Value;
using Object = std::map<std::string, Value>;  // sorted keys
using Array = std::vector<Value>;

struct Value {
  // null, bool, number (kept as its canonical text), string, array, object
  std::variant<std::monostate, bool, std::string /*number*/, std::string /*string*/, Array, Object> v;

  static Value null() { return {}; }
  static Value boolean(bool b) {
    Value x;
    x.v.emplace<1>(b);
    return x;
  }
  static Value number(std::string text) {
    Value x;
    x.v.emplace<2>(std::move(text));
    return x;
  }
  static Value string(std::string s) {
    Value x;
    x.v.emplace<3>(std::move(s));
    return x;
  }
  static Value array(Array a) {
    Value x;
    x.v.emplace<4>(std::move(a));
    return x;
  }
  static Value object(Object o) {
    Value x;
    x.v.emplace<5>(std::move(o));
    return x;
  }
  bool is_null() const { return v.index() == 0; }
  const Object* as_object() const { return v.index() == 5 ? &std::get<5>(v) : nullptr; }
  const Array* as_array() const { return v.index() == 4 ? &std::get<4>(v) : nullptr; }
  const std::string* as_string() const { return v.index() == 3 ? &std::get<3>(v) : nullptr; }
};

// Compact JSON, keys sorted, numbers as normalized text, strings escaped one way.
std::string to_json(const Value& v);
// Indented JSON for humans (show/diff); same ordering.
std::string to_pretty_json(const Value& v, int indent = 0);

// YAML -> Value. Unquoted scalars become null/bool/number when they parse as such; quoted
// scalars stay strings. Throws YAML::Exception on bad input (control plane only).
Value from_yaml(const YAML::Node& n);
// JSON text -> Value; nullopt if not JSON.
std::optional<Value> from_json(std::string_view json);

}  // namespace sluice::release
