#include "release/canonical.hpp"

#include <simdjson.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <cstdio>

#include "core/error.hpp"

namespace sluice::release {

namespace {

// Canonical number text: integers as integers, other finite numbers in shortest round-trip form.
std::optional<std::string> canonical_number(std::string_view s) {
  if (s.empty()) return std::nullopt;
  int64_t i = 0;
  auto [pi, ei] = std::from_chars(s.data(), s.data() + s.size(), i);
  if (ei == std::errc() && pi == s.data() + s.size()) return std::to_string(i);
  double d = 0;
  auto [pd, ed] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ed != std::errc() || pd != s.data() + s.size() || !std::isfinite(d)) return std::nullopt;
  if (d == std::floor(d) && std::fabs(d) < 1e15) return std::to_string(static_cast<int64_t>(d));
  char buf[64];
  auto [pe, ee] = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, pe);
}

void write(std::string& out, const Value& v, int indent, bool pretty) {
  auto nl = [&](int level) {
    if (!pretty) return;
    out.push_back('\n');
    out.append(static_cast<size_t>(level) * 2, ' ');
  };
  switch (v.v.index()) {
    case 0: out += "null"; break;
    case 1: out += std::get<1>(v.v) ? "true" : "false"; break;
    case 2: out += std::get<2>(v.v); break;
    case 3: append_json_string(out, std::get<3>(v.v)); break;
    case 4: {
      const Array& a = std::get<4>(v.v);
      out.push_back('[');
      for (size_t i = 0; i < a.size(); ++i) {
        if (i) out.push_back(',');
        nl(indent + 1);
        write(out, a[i], indent + 1, pretty);
      }
      if (!a.empty()) nl(indent);
      out.push_back(']');
      break;
    }
    case 5: {
      const Object& o = std::get<5>(v.v);
      out.push_back('{');
      bool first = true;
      for (const auto& [k, x] : o) {
        if (!first) out.push_back(',');
        first = false;
        nl(indent + 1);
        append_json_string(out, k);
        out += pretty ? ": " : ":";
        write(out, x, indent + 1, pretty);
      }
      if (!o.empty()) nl(indent);
      out.push_back('}');
      break;
    }
  }
}

Value from_dom(simdjson::dom::element e) {
  switch (e.type()) {
    case simdjson::dom::element_type::ARRAY: {
      Array a;
      for (auto x : e.get_array()) a.push_back(from_dom(x));
      return Value::array(std::move(a));
    }
    case simdjson::dom::element_type::OBJECT: {
      Object o;
      for (auto [k, x] : e.get_object()) o[std::string(k)] = from_dom(x);
      return Value::object(std::move(o));
    }
    case simdjson::dom::element_type::STRING: return Value::string(std::string(e.get_string().value()));
    case simdjson::dom::element_type::BOOL: return Value::boolean(e.get_bool().value());
    case simdjson::dom::element_type::NULL_VALUE: return Value::null();
    default: {
      std::string text = simdjson::minify(e);
      return Value::number(canonical_number(text).value_or(text));
    }
  }
}

}  // namespace

std::string to_json(const Value& v) {
  std::string out;
  write(out, v, 0, false);
  return out;
}

std::string to_pretty_json(const Value& v, int indent) {
  std::string out;
  write(out, v, indent, true);
  return out;
}

Value from_yaml(const YAML::Node& n) {
  if (!n || n.IsNull()) return Value::null();
  if (n.IsSequence()) {
    Array a;
    for (const auto& x : n) a.push_back(from_yaml(x));
    return Value::array(std::move(a));
  }
  if (n.IsMap()) {
    Object o;
    for (auto it = n.begin(); it != n.end(); ++it) o[it->first.Scalar()] = from_yaml(it->second);
    return Value::object(std::move(o));
  }
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return Value::string(s);  // quoted: always a string
  if (s == "true" || s == "True") return Value::boolean(true);
  if (s == "false" || s == "False") return Value::boolean(false);
  if (s == "null" || s == "~") return Value::null();
  if (auto num = canonical_number(s)) return Value::number(*num);
  return Value::string(s);
}

std::optional<Value> from_json(std::string_view json) {
  simdjson::dom::parser p;
  simdjson::dom::element e;
  if (p.parse(json.data(), json.size(), true).get(e)) return std::nullopt;
  return from_dom(e);
}

}  // namespace sluice::release
