#include "eval/yaml_json.hpp"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <regex>

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

std::optional<std::string> yaml_scalar_text(const YAML::Node& n, std::string& why) {
  const std::string& s = n.Scalar();
  if (n.Tag() != "?") return s;  // quoted (or explicitly tagged): a string
  // js-yaml's core schema (with its extras: '_' in numbers, timestamps).
  static const std::regex boolean("true|True|TRUE|false|False|FALSE");
  static const std::regex dec("[-+]?[0-9]+");
  static const std::regex radix("[-+]?0([xob])([0-9a-fA-F]+)");
  static const std::regex flt("[-+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][-+]?[0-9]+)?");
  static const std::regex inf("[-+]?\\.(inf|Inf|INF)");
  static const std::regex nan("\\.(nan|NaN|NAN)");
  static const std::regex underscored(
      "[-+]?(0b[01_]+|0x[0-9a-fA-F_]+|0o[0-7_]+|[0-9][0-9_]*(\\.[0-9_]*)?([eE][-+]?[0-9]+)?|\\.[0-9_]+([eE][-+]?[0-9]+)?)");
  static const std::regex stamp(
      "[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt]|[ \\t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(\\.[0-9]*)?"
      "([ \\t]*(Z|[-+][0-9]{1,2}(:[0-9]{2})?))?");
  std::smatch m;
  if (std::regex_match(s, boolean)) return s[0] == 't' || s[0] == 'T' ? "true" : "false";
  if (std::regex_match(s, dec) || std::regex_match(s, flt)) return js_number_text(std::strtod(s.c_str(), nullptr));
  if (std::regex_match(s, m, radix)) {
    int base = m[1] == "x" ? 16 : m[1] == "o" ? 8 : 2;
    std::string body = m[2];
    bool ok = body.find_first_not_of(base == 16 ? "0123456789abcdefABCDEF" : base == 8 ? "01234567" : "01") ==
              std::string::npos;
    if (ok) {
      double v = static_cast<double>(std::strtoull(body.c_str(), nullptr, base));
      return js_number_text(s[0] == '-' ? -v : v);
    }
  }
  if (std::regex_match(s, inf)) return s[0] == '-' ? "-Infinity" : "Infinity";
  if (std::regex_match(s, nan)) return "NaN";
  if (s.find('_') != std::string::npos && std::regex_match(s, underscored)) {
    why = "'" + s + "' is a number with '_' to promptfoo (js-yaml): quote it, or write the number";
    return std::nullopt;
  }
  if (std::regex_match(s, stamp)) {
    why = "'" + s + "' is a date to promptfoo (js-yaml), printed as a JavaScript Date: quote it";
    return std::nullopt;
  }
  return s;
}

std::string yaml_to_json(const YAML::Node& n) {
  std::string out;
  emit(n, out, 0);
  return out;
}

}  // namespace sluice::eval
