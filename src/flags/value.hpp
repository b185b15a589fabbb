// flags/value.hpp: the JSON values flags work on (variants, metadata, evaluation contexts,
// JsonLogic literals), with the line and column they came from when read from a file, and
// the JavaScript conversions JsonLogic needs (flagd-core runs JsonLogic in JavaScript: its
// truthiness, ToNumber and ToString decide what a rule means).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::flags {

struct Value;
using Array = std::vector<Value>;
using Object = std::vector<std::pair<std::string, Value>>;  // in document order

struct Value {
  enum class Kind : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  bool b = false;
  double n = 0;
  std::string s;
  // Arrays and objects are shared: a context value is read by many rules without copies.
  std::shared_ptr<const Array> a;
  std::shared_ptr<const Object> o;
  uint32_t line = 0, column = 0;  // 1-based place in the source file (0: not from a file)

  static Value null() { return {}; }
  static Value boolean(bool v) {
    Value x;
    x.kind = Kind::kBool;
    x.b = v;
    return x;
  }
  static Value number(double v) {
    Value x;
    x.kind = Kind::kNumber;
    x.n = v;
    return x;
  }
  static Value string(std::string v) {
    Value x;
    x.kind = Kind::kString;
    x.s = std::move(v);
    return x;
  }
  static Value array(Array v) {
    Value x;
    x.kind = Kind::kArray;
    x.a = std::make_shared<const Array>(std::move(v));
    return x;
  }
  static Value object(Object v) {
    Value x;
    x.kind = Kind::kObject;
    x.o = std::make_shared<const Object>(std::move(v));
    return x;
  }

  bool is_null() const { return kind == Kind::kNull; }
  bool is_bool() const { return kind == Kind::kBool; }
  bool is_number() const { return kind == Kind::kNumber; }
  bool is_string() const { return kind == Kind::kString; }
  bool is_array() const { return kind == Kind::kArray; }
  bool is_object() const { return kind == Kind::kObject; }
  const Array& arr() const;
  const Object& obj() const;
  // An object's member, or nullptr.
  const Value* get(std::string_view key) const;
  std::string where() const;  // "line:column" ("" when unknown)
};

// Compact JSON (object members in their order).
std::string to_json(const Value& v);
void append_json(std::string& out, const Value& v);
// Parses JSON text (bounded: depth 64); nullopt and `error` on malformed input.
std::optional<Value> parse_json(std::string_view text, std::string& error);
// Parses a flag file, JSON or YAML, keeping each value's line and column. Plain YAML
// scalars that read as numbers, booleans or null keep that type; quoted ones are strings.
std::optional<Value> parse_document(std::string_view text, std::string& error);

// JavaScript's view of a value.
bool truthy(const Value& v);              // JsonLogic's: [] and {} are false too
std::string js_string(const Value& v);    // String(v): arrays joined by ',', objects "[object Object]"
double js_number(const Value& v);         // Number(v) for primitives; NaN for arrays and objects
double js_string_to_number(std::string_view s);  // StringToNumber: trims, hex/octal/binary, Infinity
std::string_view js_trim(std::string_view s);     // String.prototype.trim
// a < b for strings as JavaScript compares them: by UTF-16 code units (not code points).
bool js_string_less(std::string_view a, std::string_view b);
bool js_loose_equal(const Value& a, const Value& b);   // a == b (primitives; objects by identity)
bool js_strict_equal(const Value& a, const Value& b);  // a === b
bool same_value_zero(const Value& a, const Value& b);  // Array.prototype.includes
// UTF-16 code units (JavaScript's string length and indexes).
std::u16string to_utf16(std::string_view s);
std::string from_utf16(std::u16string_view s);

}  // namespace sluice::flags
