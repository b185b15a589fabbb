#include "flags/value.hpp"
#include "flags/yaml_value.hpp"

#include <simdjson.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <regex>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace sluice::flags {

namespace {
const Array kNoArray;
const Object kNoObject;
constexpr int kMaxDepth = 64;
constexpr size_t kMaxKeyBytes = 256;

std::optional<Value> from_dom(simdjson::dom::element e, int depth, std::string& error) {
  if (depth > kMaxDepth) {
    error = "nested deeper than 64 levels";
    return std::nullopt;
  }
  using T = simdjson::dom::element_type;
  switch (e.type()) {
    case T::NULL_VALUE:
      return Value::null();
    case T::BOOL:
      return Value::boolean(bool(e));
    case T::INT64:
      return Value::number(static_cast<double>(int64_t(e)));
    case T::UINT64:
      return Value::number(static_cast<double>(uint64_t(e)));
    case T::DOUBLE:
      return Value::number(double(e));
    case T::STRING:
      return Value::string(std::string(std::string_view(e)));
    case T::ARRAY: {
      Array out;
      for (auto item : simdjson::dom::array(e)) {
        auto v = from_dom(item, depth + 1, error);
        if (!v) return std::nullopt;
        out.push_back(std::move(*v));
      }
      return Value::array(std::move(out));
    }
    case T::OBJECT: {
      Object out;
      for (auto field : simdjson::dom::object(e)) {
        auto v = from_dom(field.value, depth + 1, error);
        if (!v) return std::nullopt;
        std::string key(field.key);
        bool replaced = false;  // JSON.parse keeps the last of duplicate keys, in the first's place
        for (auto& [k, old] : out)
          if (k == key) {
            old = std::move(*v);
            replaced = true;
          }
        if (!replaced) out.emplace_back(std::move(key), std::move(*v));
      }
      return Value::object(std::move(out));
    }
  }
  return Value::null();
}

bool plain_number(const std::string& s, double& out) {
  static const std::regex dec("[-+]?[0-9]+");
  static const std::regex flt("[-+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][-+]?[0-9]+)?");
  if (!std::regex_match(s, dec) && !std::regex_match(s, flt)) return false;
  out = std::strtod(s.c_str(), nullptr);
  return true;
}

// The length of the well-formed UTF-8 sequence starting s (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), or 0.
size_t utf8_length(std::string_view s) {
  const auto b = [&](size_t i) { return i < s.size() ? static_cast<unsigned char>(s[i]) : 0u; };
  const unsigned c = b(0);
  if (c < 0x80) return 1;
  auto cont = [&](size_t i, unsigned lo = 0x80, unsigned hi = 0xBF) { return b(i) >= lo && b(i) <= hi; };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    const bool second = c == 0xE0 ? cont(1, 0xA0) : c == 0xED ? cont(1, 0x80, 0x9F) : cont(1);
    return second && cont(2) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const bool second = c == 0xF0 ? cont(1, 0x90) : c == 0xF4 ? cont(1, 0x80, 0x8F) : cont(1);
    return second && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

// A scalar's text. yaml-cpp decodes the escapes \N and \_ to the single bytes 0x85 and 0xA0
// (Latin-1, not UTF-8): they are written here as the characters they stand for, U+0085 and
// U+00A0. (The document was checked to be UTF-8, so no other byte can be malformed.)
std::string scalar(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  std::string out;
  bool repaired = false;
  for (size_t i = 0; i < s.size();) {
    const size_t len = utf8_length(std::string_view(s).substr(i));
    if (len == 0 && !repaired) {
      out = s.substr(0, i);
      repaired = true;
    }
    if (len == 0) {
      out += '\xC2';
      out += s[i++];
      continue;
    }
    if (repaired) out.append(s, i, len);
    i += len;
  }
  return repaired ? out : s;
}

std::optional<Value> from_yaml(const YAML::Node& n, int depth, std::string& error) {
  if (depth > kMaxDepth) {
    const auto m = n.Mark();
    error = std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) + ": nested deeper than 64 levels";
    return std::nullopt;
  }
  Value v;
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
    case YAML::NodeType::Scalar: {
      const std::string s = scalar(n);
      if (n.Tag() != "?") {
        v = Value::string(s);
        break;
      }
      double d = 0;
      if (s == "true" || s == "True" || s == "TRUE") v = Value::boolean(true);
      else if (s == "false" || s == "False" || s == "FALSE") v = Value::boolean(false);
      else if (s == "null" || s == "Null" || s == "NULL" || s == "~" || s.empty()) v = Value::null();
      else if (!plain_number(s, d)) v = Value::string(s);
      else if (std::isfinite(d)) v = Value::number(d);
      else {  // JSON has no infinity (it would export as null)
        const auto m = n.Mark();
        error = std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) + ": number out of range: " + s;
        return std::nullopt;
      }
      break;
    }
    case YAML::NodeType::Sequence: {
      Array out;
      for (const auto& item : n) {
        auto x = from_yaml(item, depth + 1, error);
        if (!x) return std::nullopt;
        out.push_back(std::move(*x));
      }
      v = Value::array(std::move(out));
      break;
    }
    case YAML::NodeType::Map: {
      Object out;
      for (const auto& kv : n) {
        if (!kv.first.IsScalar()) {
          auto m = kv.first.Mark();
          error = std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) + ": keys must be strings";
          return std::nullopt;
        }
        auto x = from_yaml(kv.second, depth + 1, error);
        if (!x) return std::nullopt;
        std::string key = scalar(kv.first);
        // yaml-cpp reads a key of at most 1024 characters as written; as JSON (export) a short
        // key without control characters stays under that.
        const bool control = std::any_of(key.begin(), key.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; });
        if (key.size() > kMaxKeyBytes || control) {
          auto m = kv.first.Mark();
          error = std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) + ": a key is at most " +
                  std::to_string(kMaxKeyBytes) + " bytes, without control characters";
          return std::nullopt;
        }
        for (const auto& [k, old] : out)
          if (k == key) {
            auto m = kv.first.Mark();
            error = std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) + ": duplicate key '" + key + "'";
            return std::nullopt;
          }
        out.emplace_back(std::move(key), std::move(*x));
      }
      v = Value::object(std::move(out));
      break;
    }
  }
  auto m = n.Mark();
  if (m.line >= 0) {
    v.line = static_cast<uint32_t>(m.line + 1);
    v.column = static_cast<uint32_t>(m.column + 1);
  }
  return v;
}

bool js_space(char32_t c) {
  switch (c) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0xA0: case 0x1680:
    case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000: case 0xFEFF:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

// The code point at s[i] (UTF-8), advancing i; malformed bytes read as themselves.
char32_t next_cp(std::string_view s, size_t& i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  if (i + static_cast<size_t>(len) > s.size()) len = 1;
  char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + static_cast<size_t>(k)]) & 0x3F);
  i += static_cast<size_t>(len);
  return cp;
}

}  // namespace

std::string_view js_trim(std::string_view s) {
  size_t b = 0;
  while (b < s.size()) {
    size_t j = b;
    if (!js_space(next_cp(s, j))) break;
    b = j;
  }
  size_t e = s.size();
  while (e > b) {
    size_t start = e - 1;
    while (start > b && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t j = start;
    if (!js_space(next_cp(s, j))) break;
    e = start;
  }
  return s.substr(b, e - b);
}

bool js_string_less(std::string_view a, std::string_view b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  if (i == a.size() || i == b.size()) return a.size() < b.size();
  // The first code points that differ decide; back up to where they start.
  while (i > 0 && (static_cast<unsigned char>(a[i]) & 0xC0) == 0x80) --i;
  size_t j = i;
  const char32_t x = next_cp(a, i), y = next_cp(b, j);
  // In UTF-16 a code point above U+FFFF is a surrogate pair starting 0xD800-0xDBFF, below U+E000.
  auto first_unit = [](char32_t c) { return c >= 0x10000 ? 0xD800 + ((c - 0x10000) >> 10) : c; };
  if (first_unit(x) != first_unit(y)) return first_unit(x) < first_unit(y);
  return x < y;
}

const Array& Value::arr() const { return a ? *a : kNoArray; }
const Object& Value::obj() const { return o ? *o : kNoObject; }

const Value* Value::get(std::string_view key) const {
  if (kind != Kind::kObject) return nullptr;
  for (const auto& [k, v] : *o)
    if (k == key) return &v;
  return nullptr;
}

std::string Value::where() const {
  return line ? std::to_string(line) + ":" + std::to_string(column) : std::string();
}

void append_json(std::string& out, const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNull:
      out += "null";
      break;
    case Value::Kind::kBool:
      out += v.b ? "true" : "false";
      break;
    case Value::Kind::kNumber:
      out += std::isfinite(v.n) ? js_number_text(v.n) : "null";
      break;
    case Value::Kind::kString:
      append_json_string(out, v.s);
      break;
    case Value::Kind::kArray: {
      out += '[';
      bool first = true;
      for (const auto& x : *v.a) {
        if (!first) out += ',';
        first = false;
        append_json(out, x);
      }
      out += ']';
      break;
    }
    case Value::Kind::kObject: {
      out += '{';
      bool first = true;
      for (const auto& [k, x] : *v.o) {
        if (!first) out += ',';
        first = false;
        append_json_string(out, k);
        out += ':';
        append_json(out, x);
      }
      out += '}';
      break;
    }
  }
}

std::string to_json(const Value& v) {
  std::string out;
  append_json(out, v);
  return out;
}

std::optional<Value> parse_json(std::string_view text, std::string& error) {
  thread_local simdjson::dom::parser parser;
  simdjson::padded_string padded(text);
  simdjson::dom::element root;
  if (auto err = parser.parse(padded).get(root)) {
    error = std::string("malformed JSON: ") + simdjson::error_message(err);
    return std::nullopt;
  }
  return from_dom(root, 0, error);
}

std::optional<Value> from_yaml_node(const YAML::Node& n, std::string& error) { return from_yaml(n, 0, error); }

std::optional<Value> parse_document(std::string_view text, std::string& error) {
  // JSON and YAML are UTF-8; yaml-cpp takes some malformed bytes as they are, and a file
  // holding them would not read back after export.
  size_t line = 1, line_start = 0;
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      ++line;
      line_start = i + 1;
    }
    const size_t len = utf8_length(text.substr(i));
    if (len == 0) {
      error = std::to_string(line) + ":" + std::to_string(i - line_start + 1) + ": not UTF-8";
      return std::nullopt;
    }
    i += len;
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    error = std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) + ": " + e.msg;
    return std::nullopt;
  }
  return from_yaml(root, 0, error);
}

bool truthy(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNull:
      return false;
    case Value::Kind::kBool:
      return v.b;
    case Value::Kind::kNumber:
      return v.n != 0 && !std::isnan(v.n);
    case Value::Kind::kString:
      return !v.s.empty();
    case Value::Kind::kArray:
      return !v.arr().empty();
    case Value::Kind::kObject:
      return !v.obj().empty();
  }
  return false;
}

std::string js_string(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNull:
      return "null";
    case Value::Kind::kBool:
      return v.b ? "true" : "false";
    case Value::Kind::kNumber:
      return js_number_text(v.n);
    case Value::Kind::kString:
      return v.s;
    case Value::Kind::kArray: {
      std::string out;
      bool first = true;
      for (const auto& x : v.arr()) {
        if (!first) out += ',';
        first = false;
        if (!x.is_null()) out += js_string(x);
      }
      return out;
    }
    case Value::Kind::kObject:
      return "[object Object]";
  }
  return "";
}

double js_string_to_number(std::string_view raw) {
  std::string_view s = js_trim(raw);
  if (s.empty()) return 0;
  const double nan = std::nan("");
  if (s.size() > 2 && s[0] == '0') {
    int base = (s[1] == 'x' || s[1] == 'X') ? 16 : (s[1] == 'o' || s[1] == 'O') ? 8 : (s[1] == 'b' || s[1] == 'B') ? 2 : 0;
    if (base) {
      double v = 0;
      for (char c : s.substr(2)) {
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : 99;
        if (d >= base) return nan;
        v = v * base + d;
      }
      return v;
    }
  }
  size_t i = 0;
  bool neg = false;
  if (s[0] == '+' || s[0] == '-') {
    neg = s[0] == '-';
    i = 1;
  }
  if (s.substr(i) == "Infinity") return neg ? -INFINITY : INFINITY;
  // DecimalDigits [. DecimalDigits?] [e[+-]DecimalDigits] | . DecimalDigits [exp]
  size_t j = i, digits = 0;
  while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j, ++digits;
  if (j < s.size() && s[j] == '.') {
    ++j;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j, ++digits;
  }
  if (digits == 0) return nan;
  if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
    ++j;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    size_t exp = 0;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j, ++exp;
    if (exp == 0) return nan;
  }
  if (j != s.size()) return nan;
  std::string copy(s);
  return std::strtod(copy.c_str(), nullptr);
}

double js_number(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNull:
      return 0;
    case Value::Kind::kBool:
      return v.b ? 1 : 0;
    case Value::Kind::kNumber:
      return v.n;
    case Value::Kind::kString:
      return js_string_to_number(v.s);
    case Value::Kind::kArray:
      return js_string_to_number(js_string(v));
    case Value::Kind::kObject:
      return std::nan("");
  }
  return 0;
}

bool js_strict_equal(const Value& a, const Value& b) {
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Value::Kind::kNull:
      return true;
    case Value::Kind::kBool:
      return a.b == b.b;
    case Value::Kind::kNumber:
      return a.n == b.n;
    case Value::Kind::kString:
      return a.s == b.s;
    case Value::Kind::kArray:
      return a.a == b.a;
    case Value::Kind::kObject:
      return a.o == b.o;
  }
  return false;
}

bool js_loose_equal(const Value& a, const Value& b) {
  if (a.kind == b.kind) return js_strict_equal(a, b);
  if (a.is_null() || b.is_null()) return false;
  const bool a_obj = a.is_array() || a.is_object(), b_obj = b.is_array() || b.is_object();
  if (a_obj && b_obj) return false;
  if (a_obj) return js_loose_equal(Value::string(js_string(a)), b);
  if (b_obj) return js_loose_equal(a, Value::string(js_string(b)));
  if (a.is_string() && b.is_string()) return a.s == b.s;
  return js_number(a) == js_number(b);  // number/string/boolean pairs compare as numbers
}

bool same_value_zero(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number() && std::isnan(a.n) && std::isnan(b.n)) return true;
  return js_strict_equal(a, b);
}

std::u16string to_utf16(std::string_view s) {
  std::u16string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    char32_t cp = next_cp(s, i);
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out.push_back(static_cast<char16_t>(0xD800 + (cp >> 10)));
      out.push_back(static_cast<char16_t>(0xDC00 + (cp & 0x3FF)));
    } else {
      out.push_back(static_cast<char16_t>(cp));
    }
  }
  return out;
}

std::string from_utf16(std::u16string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char32_t cp = s[i];
    if (cp >= 0xD800 && cp < 0xDC00 && i + 1 < s.size() && s[i + 1] >= 0xDC00 && s[i + 1] < 0xE000) {
      cp = 0x10000 + ((cp - 0xD800) << 10) + (s[i + 1] - 0xDC00);
      ++i;
    }
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  return out;
}

}  // namespace sluice::flags
