#include "eval/yaml_json.hpp"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdlib>

#include "core/error.hpp"

namespace sluice::eval {

namespace {

bool json_number(const std::string& s) {
  if (s.empty()) return false;
  size_t i = 0;
  if (s[i] == '-') ++i;
  if (i >= s.size() || !(s[i] >= '0' && s[i] <= '9')) return false;
  if (s[i] == '0' && i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '9') return false;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (i >= s.size() || !(s[i] >= '0' && s[i] <= '9')) return false;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (i >= s.size() || !(s[i] >= '0' && s[i] <= '9')) return false;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  }
  return i == s.size();
}

void emit(const YAML::Node& n, std::string& out, int depth) {
  if (depth > 64) {
    out += "null";
    return;
  }
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      out += '{';
      bool first = true;
      for (auto it = n.begin(); it != n.end(); ++it) {
        if (!first) out += ',';
        first = false;
        append_json_string(out, it->first.Scalar());
        out += ':';
        emit(it->second, out, depth + 1);
      }
      out += '}';
      return;
    }
    case YAML::NodeType::Sequence: {
      out += '[';
      bool first = true;
      for (const auto& x : n) {
        if (!first) out += ',';
        first = false;
        emit(x, out, depth + 1);
      }
      out += ']';
      return;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      bool plain = n.Tag() != "!";
      if (plain && (s == "true" || s == "false" || s == "null")) {
        out += s;
      } else if (plain && (s == "~")) {
        out += "null";
      } else if (plain && json_number(s)) {
        out += s;
      } else {
        append_json_string(out, s);
      }
      return;
    }
    default:
      out += "null";
  }
}

}  // namespace

std::string yaml_to_json(const YAML::Node& n) {
  std::string out;
  emit(n, out, 0);
  return out;
}

}  // namespace sluice::eval
