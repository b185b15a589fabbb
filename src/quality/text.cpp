#include "quality/text.hpp"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/strings.hpp"

namespace sluice::quality {

namespace {

using simdjson::SUCCESS;
using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

// ---------------------------------------------------------------------------------------------
// Text

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

enum class ByteClass { kKeep, kSpace, kDrop };

// Classifies the character starting at s[i]; `len` is how many bytes it spans (a byte we do not
// recognise spans one byte and is kept as is, so multi-byte characters pass through unchanged).
ByteClass classify(std::string_view s, size_t i, size_t& len) {
  auto c = static_cast<unsigned char>(s[i]);
  len = 1;
  if (c < 0x80) {
    if (c == ' ' || (c >= '\t' && c <= '\r')) return ByteClass::kSpace;
    if (c < 0x20 || c == 0x7F) return ByteClass::kSpace;
    if (!is_alnum(static_cast<char>(c))) return ByteClass::kDrop;  // ASCII punctuation
    return ByteClass::kKeep;
  }
  auto at = [&](size_t k) { return k < s.size() ? static_cast<unsigned char>(s[k]) : 0; };
  if (c == 0xC2) {
    unsigned char d = at(i + 1);
    len = 2;
    if (d == 0xA0) return ByteClass::kSpace;  // no-break space
    // ¡ « · » ¿
    if (d == 0xA1 || d == 0xAB || d == 0xB7 || d == 0xBB || d == 0xBF) return ByteClass::kDrop;
    len = 1;
  } else if (c == 0xE2 && at(i + 1) == 0x80) {
    unsigned char d = at(i + 2);
    len = 3;
    if ((d >= 0x80 && d <= 0x8A) || d == 0xAF) return ByteClass::kSpace;  // U+2000..200A, U+202F
    if (d == 0x8B) return ByteClass::kDrop;                              // zero-width space
    if (d >= 0x90 && d <= 0xA2) return ByteClass::kDrop;  // dashes, quotes, daggers, bullet
    if (d == 0xA6) return ByteClass::kDrop;               // ellipsis
    len = 1;
  }
  return ByteClass::kKeep;
}

std::vector<std::string_view> tokens_of(std::string_view normalized) {
  std::vector<std::string_view> out;
  for (auto t : split(normalized, ' ')) {
    if (!t.empty()) out.push_back(t);
  }
  return out;
}

double jaccard(std::string_view na, std::string_view nb) {
  auto ta = tokens_of(na), tb = tokens_of(nb);
  std::unordered_set<std::string_view> a(ta.begin(), ta.end()), b(tb.begin(), tb.end());
  if (a.empty() && b.empty()) return 1.0;
  size_t common = 0;
  for (auto t : a) common += b.count(t);
  return static_cast<double>(common) / static_cast<double>(a.size() + b.size() - common);
}

// ---------------------------------------------------------------------------------------------
// Numbers

bool minus_before(std::string_view s, size_t j) {
  // '-' (or U+2212) directly before j, itself not preceded by a letter or digit ("3-4" is two
  // numbers; "x = -3" is negative).
  size_t sign_start;
  if (j >= 1 && s[j - 1] == '-') {
    sign_start = j - 1;
  } else if (j >= 3 && s.substr(j - 3, 3) == "\xE2\x88\x92") {
    sign_start = j - 3;
  } else {
    return false;
  }
  return sign_start == 0 || !is_alnum(s[sign_start - 1]);
}

// Scans numbers left to right; stops after the first one when `first_only`.
std::optional<double> scan_numbers(std::string_view s, bool first_only) {
  std::optional<double> last;
  std::string buf;
  size_t i = 0;
  while (i < s.size()) {
    bool starts_int = is_digit(s[i]);
    bool starts_frac = s[i] == '.' && i + 1 < s.size() && is_digit(s[i + 1]) &&
                       (i == 0 || !is_digit(s[i - 1]));
    if (!starts_int && !starts_frac) {
      ++i;
      continue;
    }
    // The sign sits before an optional currency sign: "-$5" and "$-5" are both -5.
    size_t j = i;
    if (j >= 1 && s[j - 1] == '$') --j;
    const bool negative = minus_before(s, j);

    buf.assign("0");
    size_t k = i;
    size_t int_digits = 0;
    while (k < s.size() && is_digit(s[k])) {
      buf.push_back(s[k++]);
      ++int_digits;
    }
    // Thousands separators: "1,234,567" (groups of exactly three digits after a 1-3 digit head).
    if (int_digits >= 1 && int_digits <= 3) {
      while (k + 3 < s.size() && s[k] == ',' && is_digit(s[k + 1]) && is_digit(s[k + 2]) &&
             is_digit(s[k + 3]) && (k + 4 >= s.size() || !is_digit(s[k + 4]))) {
        buf.append(s.substr(k + 1, 3));
        k += 4;
      }
    }
    if (k + 1 < s.size() && s[k] == '.' && is_digit(s[k + 1])) {
      buf.push_back('.');
      ++k;
      while (k < s.size() && is_digit(s[k])) buf.push_back(s[k++]);
    }
    double v = 0;
    auto [p, ec] = std::from_chars(buf.data(), buf.data() + buf.size(), v);
    if (ec == std::errc() && p == buf.data() + buf.size() && std::isfinite(v)) {
      last = negative ? -v : v;
      if (first_only) return last;
    }
    i = k;
  }
  return last;
}

bool numbers_close(double a, double b) {
  return std::fabs(a - b) <= 1e-9 * std::max({1.0, std::fabs(a), std::fabs(b)});
}

// ---------------------------------------------------------------------------------------------
// JSON

std::string_view strip_fence(std::string_view s) {
  s = trim(s);
  if (!s.starts_with("```")) return s;
  size_t nl = s.find('\n');
  if (nl == std::string_view::npos) return s;
  std::string_view tag = trim(s.substr(3, nl - 3));
  if (!tag.empty() && !iequals(tag, "json")) return s;
  std::string_view body = trim(s.substr(nl + 1));
  if (!body.ends_with("```")) return s;
  body.remove_suffix(3);
  return body;
}

// Parses with the size and depth limits; simdjson copies `text` into its padded buffer.
simdjson::error_code parse_limited(simdjson::dom::parser& parser, std::string_view text,
                                   element& out) {
  if (text.size() > kMaxJsonBytes) return simdjson::CAPACITY;
  if (auto err = parser.allocate(std::max<size_t>(text.size(), 64), kMaxJsonDepth)) return err;
  return parser.parse(text.data(), text.size(), true).get(out);
}

std::string parse_problem(simdjson::error_code err, std::string_view text) {
  if (err == simdjson::CAPACITY && text.size() > kMaxJsonBytes) {
    return "exceeds the 1 MiB limit (" + std::to_string(text.size()) + " bytes)";
  }
  if (err == simdjson::DEPTH_ERROR) {
    return "nests deeper than " + std::to_string(kMaxJsonDepth) + " levels";
  }
  return std::string("is not valid JSON: ") + simdjson::error_message(err);
}

bool is_number(element_type t) {
  return t == element_type::INT64 || t == element_type::UINT64 || t == element_type::DOUBLE;
}

bool numbers_equal(element a, element b) {
  element_type ta = a.type(), tb = b.type();
  if (ta != element_type::DOUBLE && tb != element_type::DOUBLE) {  // both integers: exact
    int64_t ia = 0, ib = 0;
    uint64_t ua = 0, ub = 0;
    if (ta == element_type::INT64 && tb == element_type::INT64) {
      return !a.get_int64().get(ia) && !b.get_int64().get(ib) && ia == ib;
    }
    if (ta == element_type::UINT64 && tb == element_type::UINT64) {
      return !a.get_uint64().get(ua) && !b.get_uint64().get(ub) && ua == ub;
    }
    // One signed, one unsigned: simdjson uses UINT64 only above INT64_MAX, so they differ.
    return false;
  }
  double da = 0, db = 0;
  return !a.get_double().get(da) && !b.get_double().get(db) && da == db;
}

using Members = std::vector<std::pair<std::string_view, element>>;

Members sorted_members(object o) {
  Members m;
  m.reserve(o.size());
  for (auto kv : o) m.emplace_back(kv.key, kv.value);
  std::stable_sort(m.begin(), m.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  return m;
}

// Depth is bounded by the parser's kMaxJsonDepth.
bool json_values_equal(element a, element b) {
  element_type ta = a.type(), tb = b.type();
  if (is_number(ta) && is_number(tb)) return numbers_equal(a, b);
  if (ta != tb) return false;
  switch (ta) {
    case element_type::NULL_VALUE:
      return true;
    case element_type::BOOL: {
      bool x = false, y = false;
      return !a.get_bool().get(x) && !b.get_bool().get(y) && x == y;
    }
    case element_type::STRING: {
      std::string_view x, y;
      return !a.get_string().get(x) && !b.get_string().get(y) && x == y;
    }
    case element_type::ARRAY: {
      array x, y;
      if (a.get_array().get(x) || b.get_array().get(y)) return false;
      auto ix = x.begin(), iy = y.begin();
      for (; ix != x.end() && iy != y.end(); ++ix, ++iy) {
        if (!json_values_equal(*ix, *iy)) return false;
      }
      return ix == x.end() && iy == y.end();
    }
    case element_type::OBJECT: {
      object x, y;
      if (a.get_object().get(x) || b.get_object().get(y)) return false;
      if (x.size() != y.size()) return false;
      Members mx = sorted_members(x), my = sorted_members(y);
      if (mx.size() != my.size()) return false;
      for (size_t i = 0; i < mx.size(); ++i) {
        if (mx[i].first != my[i].first || !json_values_equal(mx[i].second, my[i].second)) {
          return false;
        }
      }
      return true;
    }
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------------------------
// JSON Schema

std::string_view type_name(element v) {
  switch (v.type()) {
    case element_type::ARRAY: return "array";
    case element_type::OBJECT: return "object";
    case element_type::INT64:
    case element_type::UINT64: return "integer";
    case element_type::DOUBLE: return "number";
    case element_type::STRING: return "string";
    case element_type::BOOL: return "boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "unknown";
}

void append_pointer_token(std::string& ptr, std::string_view token) {
  ptr.push_back('/');
  for (char c : token) {
    if (c == '~') {
      ptr += "~0";
    } else if (c == '/') {
      ptr += "~1";
    } else {
      ptr.push_back(c);
    }
  }
}

size_t code_points(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

std::string in_quotes(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string number_text(double d) {
  char buf[32];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, d);
  return ec == std::errc() ? std::string(buf, p) : std::string("?");
}

class Validator {
 public:
  explicit Validator(element root) : root_(root) {}

  bool validate(element schema, element v, std::string& ptr, size_t depth);

  std::string error;
  std::string pointer;

 private:
  // Nesting of schema applications ($ref, anyOf, items, ...); bounds $ref cycles.
  static constexpr size_t kMaxEvalDepth = 4 * kMaxJsonDepth;
  // Work budget (validate calls and property lookups); bounds combinatorial schemas.
  static constexpr size_t kMaxSteps = size_t{1} << 24;

  element root_;
  size_t steps_ = 0;
  // Set by a broken schema or an exhausted budget: the whole check fails with this error,
  // anyOf/oneOf do not try the next branch.
  bool aborted_ = false;

  bool fail(const std::string& ptr, std::string message) {
    pointer = ptr;
    error = "at " + in_quotes(ptr) + ": " + message;
    return false;
  }
  bool abort(const std::string& ptr, std::string message) {
    aborted_ = true;
    return fail(ptr, std::move(message));
  }
  bool bad_schema(const std::string& ptr, std::string_view keyword, std::string_view why) {
    return abort(ptr, "invalid schema: \"" + std::string(keyword) + "\" " + std::string(why));
  }
  // A non-negative integer keyword value (2 and 2.0 both count).
  static bool get_count(element e, uint64_t& out) {
    if (!e.get_uint64().get(out)) return true;
    double d = 0;
    if (!e.get_double().get(d) && d >= 0 && std::trunc(d) == d && d < 1.8e19) {
      out = static_cast<uint64_t>(d);
      return true;
    }
    return false;
  }
  static bool type_matches(std::string_view t, element v, bool& known);
  bool check_type(element t, element v, const std::string& ptr);
  bool check_number(object s, element v, const std::string& ptr);
  bool check_string(object s, element v, const std::string& ptr);
  // minLength/maxLength, minItems/maxItems: `size` against the two bounds.
  bool check_size(object s, const std::string& ptr, size_t size, std::string_view kind,
                  std::string_view unit, const char* min_keyword, const char* max_keyword);
  bool check_array(object s, element v, std::string& ptr, size_t depth);
  bool check_object(object s, element v, std::string& ptr, size_t depth);
  bool check_combinators(object s, element v, std::string& ptr, size_t depth);
};

bool Validator::type_matches(std::string_view t, element v, bool& known) {
  known = true;
  element_type vt = v.type();
  if (t == "null") return vt == element_type::NULL_VALUE;
  if (t == "boolean") return vt == element_type::BOOL;
  if (t == "string") return vt == element_type::STRING;
  if (t == "object") return vt == element_type::OBJECT;
  if (t == "array") return vt == element_type::ARRAY;
  if (t == "number") return is_number(vt);
  if (t == "integer") {
    if (vt == element_type::INT64 || vt == element_type::UINT64) return true;
    double d = 0;
    return vt == element_type::DOUBLE && !v.get_double().get(d) && std::trunc(d) == d;
  }
  known = false;
  return false;
}

bool Validator::check_type(element t, element v, const std::string& ptr) {
  std::string_view one;
  array many;
  bool known = false;
  if (!t.get_string().get(one)) {
    if (type_matches(one, v, known)) return true;
    if (!known) return bad_schema(ptr, "type", "names an unknown type " + in_quotes(one));
    return fail(ptr, "expected " + std::string(one) + ", got " + std::string(type_name(v)));
  }
  if (t.get_array().get(many)) return bad_schema(ptr, "type", "must be a string or an array");
  std::string names;
  for (element e : many) {
    if (e.get_string().get(one)) return bad_schema(ptr, "type", "must list strings");
    if (type_matches(one, v, known)) return true;
    if (!known) return bad_schema(ptr, "type", "names an unknown type " + in_quotes(one));
    names += names.empty() ? "" : " or ";
    names += one;
  }
  return fail(ptr, "expected " + names + ", got " + std::string(type_name(v)));
}

bool Validator::check_number(object s, element v, const std::string& ptr) {
  double x = 0;
  if (!is_number(v.type()) || v.get_double().get(x)) return true;
  struct Bound {
    const char* keyword;
    bool lower;
    bool exclusive;
  };
  static constexpr Bound kBounds[] = {{"minimum", true, false},
                                      {"maximum", false, false},
                                      {"exclusiveMinimum", true, true},
                                      {"exclusiveMaximum", false, true}};
  for (const auto& b : kBounds) {
    element e;
    if (s[b.keyword].get(e)) continue;
    bool flag = false;
    if (b.exclusive && !e.get_bool().get(flag)) continue;  // draft-4 boolean form, read below
    double limit = 0;
    if (e.get_double().get(limit)) return bad_schema(ptr, b.keyword, "must be a number");
    bool exclusive = b.exclusive;
    if (!b.exclusive) {  // draft 4: "exclusiveMinimum": true turns "minimum" exclusive
      element ex;
      if (!s[b.lower ? "exclusiveMinimum" : "exclusiveMaximum"].get(ex)) {
        bool f = false;
        if (!ex.get_bool().get(f)) exclusive = f;
      }
    }
    bool ok = b.lower ? (exclusive ? x > limit : x >= limit) : (exclusive ? x < limit : x <= limit);
    if (!ok) {
      return fail(ptr, number_text(x) + " is " + (b.lower ? "less than " : "greater than ") +
                           (exclusive ? "or equal to " : "") + b.keyword + " " +
                           number_text(limit));
    }
  }
  return true;
}

bool Validator::check_string(object s, element v, const std::string& ptr) {
  std::string_view str;
  if (v.get_string().get(str)) return true;
  return check_size(s, ptr, code_points(str), "string", "characters", "minLength", "maxLength");
}

bool Validator::check_size(object s, const std::string& ptr, size_t size, std::string_view kind,
                           std::string_view unit, const char* min_keyword,
                           const char* max_keyword) {
  for (const char* keyword : {min_keyword, max_keyword}) {
    element e;
    if (s[keyword].get(e)) continue;
    uint64_t n = 0;
    if (!get_count(e, n)) return bad_schema(ptr, keyword, "must be a non-negative integer");
    const bool lower = keyword == min_keyword;
    if (lower ? size < n : size > n) {
      return fail(ptr, std::string(kind) + " of " + std::to_string(size) + " " + std::string(unit) +
                           (lower ? " is shorter than " : " is longer than ") + keyword + " " +
                           std::to_string(n));
    }
  }
  return true;
}

bool Validator::check_array(object s, element v, std::string& ptr, size_t depth) {
  array a;
  if (v.get_array().get(a)) return true;
  if (!check_size(s, ptr, a.size(), "array", "items", "minItems", "maxItems")) return false;
  element e;
  // Positional schemas ("prefixItems", or the old array form of "items"), then one schema for
  // the remaining items.
  array prefix;
  bool has_prefix = false;
  element rest;
  bool has_rest = false;
  if (!s["prefixItems"].get(e)) {
    if (e.get_array().get(prefix)) return bad_schema(ptr, "prefixItems", "must be an array");
    has_prefix = true;
  }
  if (!s["items"].get(e)) {
    if (!has_prefix && !e.get_array().get(prefix)) {
      has_prefix = true;
    } else if (e.type() == element_type::OBJECT || e.type() == element_type::BOOL) {
      rest = e;
      has_rest = true;
    } else {
      return bad_schema(ptr, "items", "must be a schema");
    }
  }
  if (!has_prefix && !has_rest) return true;
  std::vector<element> positional;
  if (has_prefix) {
    for (element p : prefix) positional.push_back(p);
  }
  size_t index = 0;
  for (element item : a) {
    element sub;
    if (index < positional.size()) {
      sub = positional[index];
    } else if (has_rest) {
      sub = rest;
    } else {
      break;
    }
    size_t mark = ptr.size();
    append_pointer_token(ptr, std::to_string(index));
    bool ok = validate(sub, item, ptr, depth + 1);
    ptr.resize(mark);
    if (!ok) return false;
    ++index;
  }
  return true;
}

bool Validator::check_object(object s, element v, std::string& ptr, size_t depth) {
  object o;
  if (v.get_object().get(o)) return true;
  element e;
  if (!s["required"].get(e)) {
    array req;
    if (e.get_array().get(req)) return bad_schema(ptr, "required", "must be an array");
    for (element r : req) {
      std::string_view name;
      if (r.get_string().get(name)) return bad_schema(ptr, "required", "must list strings");
      steps_ += o.size();
      if (o[name].error() != SUCCESS) {
        return fail(ptr, "missing required property " + in_quotes(name));
      }
    }
  }
  object props;
  bool has_props = false;
  if (!s["properties"].get(e)) {
    if (e.get_object().get(props)) return bad_schema(ptr, "properties", "must be an object");
    has_props = true;
  }
  element additional;
  bool has_additional = !s["additionalProperties"].get(additional);
  if (has_additional && additional.type() != element_type::OBJECT &&
      additional.type() != element_type::BOOL) {
    return bad_schema(ptr, "additionalProperties", "must be a schema");
  }
  if (!has_props && !has_additional) return true;
  for (auto kv : o) {
    element sub;
    bool declared = false;
    if (has_props) {
      steps_ += props.size();
      declared = !props[kv.key].get(sub);
    }
    if (!declared) {
      if (!has_additional) continue;
      bool allowed = true;
      if (!additional.get_bool().get(allowed) && !allowed) {
        size_t mark = ptr.size();
        append_pointer_token(ptr, kv.key);
        fail(ptr, "additional property " + in_quotes(kv.key) + " is not allowed");
        ptr.resize(mark);
        return false;
      }
      sub = additional;
    }
    size_t mark = ptr.size();
    append_pointer_token(ptr, kv.key);
    bool ok = validate(sub, kv.value, ptr, depth + 1);
    ptr.resize(mark);
    if (!ok) return false;
  }
  return true;
}

bool Validator::check_combinators(object s, element v, std::string& ptr, size_t depth) {
  element e;
  array list;
  if (!s["allOf"].get(e)) {
    if (e.get_array().get(list)) return bad_schema(ptr, "allOf", "must be an array");
    for (element sub : list) {
      if (!validate(sub, v, ptr, depth + 1)) return false;
    }
  }
  for (std::string_view keyword : {"anyOf", "oneOf"}) {
    if (s[keyword].get(e)) continue;
    if (e.get_array().get(list)) return bad_schema(ptr, keyword, "must be an array");
    // anyOf stops at the first match; oneOf at the second.
    const size_t enough = keyword == "anyOf" ? 1 : 2;
    size_t matched = 0;
    std::string first_error;
    for (element sub : list) {
      if (validate(sub, v, ptr, depth + 1)) {
        if (++matched == enough) break;
      } else {
        if (aborted_) return false;
        if (first_error.empty()) first_error = error;
      }
    }
    if (matched == 0) {
      return fail(ptr, "matches none of the " + std::to_string(list.size()) + " schemas in " +
                           std::string(keyword) +
                           (first_error.empty() ? "" : " (first: " + first_error + ")"));
    }
    if (matched > 1 && keyword == "oneOf") {
      return fail(ptr, "matches more than one schema in oneOf");
    }
    error.clear();
    pointer.clear();
  }
  return true;
}

bool Validator::validate(element schema, element v, std::string& ptr, size_t depth) {
  steps_ += 8;
  if (steps_ > kMaxSteps) return abort(ptr, "schema evaluation exceeded its work budget");
  if (depth > kMaxEvalDepth) return abort(ptr, "schema nesting (through $ref) is too deep");
  bool b = false;
  if (!schema.get_bool().get(b)) return b || fail(ptr, "the schema false admits no value");
  object s;
  if (schema.get_object().get(s)) return abort(ptr, "invalid schema: not an object or boolean");

  element e;
  if (!s["$ref"].get(e)) {
    std::string_view ref;
    if (e.get_string().get(ref)) return bad_schema(ptr, "$ref", "must be a string");
    if (!ref.starts_with("#")) {
      return bad_schema(ptr, "$ref", "must be local (\"#/...\"), got " + in_quotes(ref));
    }
    element target;
    if (root_.at_pointer(ref.substr(1)).get(target)) {
      return bad_schema(ptr, "$ref", "does not resolve: " + in_quotes(ref));
    }
    if (!validate(target, v, ptr, depth + 1)) return false;
  }
  if (!s["type"].get(e) && !check_type(e, v, ptr)) return false;
  if (!s["const"].get(e) && !json_values_equal(e, v)) {
    return fail(ptr, "value differs from const");
  }
  if (!s["enum"].get(e)) {
    array options;
    if (e.get_array().get(options)) return bad_schema(ptr, "enum", "must be an array");
    bool found = false;
    for (element option : options) {
      if (json_values_equal(option, v)) {
        found = true;
        break;
      }
    }
    if (!found) return fail(ptr, "value is not one of the enum values");
  }
  return check_number(s, v, ptr) && check_string(s, v, ptr) && check_array(s, v, ptr, depth) &&
         check_object(s, v, ptr, depth) && check_combinators(s, v, ptr, depth);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::string normalize_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool pending_space = false;
  for (size_t i = 0; i < s.size();) {
    size_t len = 1;
    ByteClass cls = classify(s, i, len);
    if (cls == ByteClass::kSpace) {
      pending_space = true;
    } else if (cls == ByteClass::kKeep) {
      if (pending_space && !out.empty()) out.push_back(' ');
      pending_space = false;
      auto c = static_cast<unsigned char>(s[i]);
      if (c >= 'A' && c <= 'Z') {
        out.push_back(static_cast<char>(c - 'A' + 'a'));
      } else if (c == 0xC3 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
                 static_cast<unsigned char>(s[i + 1]) <= 0x9E &&
                 static_cast<unsigned char>(s[i + 1]) != 0x97) {  // Latin-1 capitals, not ×
        out.push_back(static_cast<char>(c));
        out.push_back(static_cast<char>(static_cast<unsigned char>(s[i + 1]) + 0x20));
        len = 2;
      } else {
        out.push_back(static_cast<char>(c));
      }
    }
    i += len;
  }
  return out;
}

double token_set_similarity(std::string_view a, std::string_view b) {
  return jaccard(normalize_text(a), normalize_text(b));
}

std::optional<bool> json_equal(std::string_view a, std::string_view b) {
  simdjson::dom::parser pa, pb;
  element ea, eb;
  if (parse_limited(pa, strip_fence(a), ea) || parse_limited(pb, strip_fence(b), eb)) {
    return std::nullopt;
  }
  return json_values_equal(ea, eb);
}

std::optional<double> final_number(std::string_view text) {
  if (size_t hashes = text.rfind("####"); hashes != std::string_view::npos) {
    if (auto v = scan_numbers(text.substr(hashes + 4), true)) return v;
  }
  return scan_numbers(text, false);
}

Agreement compare(std::string_view a, std::string_view b) {
  Agreement g;
  g.exact = a == b;
  std::string na = normalize_text(a), nb = normalize_text(b);
  g.normalized = na == nb;
  g.token_set = jaccard(na, nb);
  g.json = json_equal(a, b);
  auto fa = final_number(a), fb = final_number(b);
  if (fa && fb) g.number = numbers_close(*fa, *fb);
  return g;
}

SchemaCheck check_json(std::string_view text, std::string_view schema) {
  SchemaCheck r;
  simdjson::dom::parser doc_parser;
  element doc;
  if (auto err = parse_limited(doc_parser, text, doc)) {
    r.error = "JSON " + parse_problem(err, text);
    return r;
  }
  if (schema.empty()) {
    r.valid = true;
    return r;
  }
  simdjson::dom::parser schema_parser;
  element root;
  if (auto err = parse_limited(schema_parser, schema, root)) {
    r.error = "schema " + parse_problem(err, schema);
    return r;
  }
  Validator v(root);
  std::string ptr;
  if (!v.validate(root, doc, ptr, 0)) {
    r.error = std::move(v.error);
    r.pointer = std::move(v.pointer);
    return r;
  }
  r.valid = true;
  return r;
}

}  // namespace sluice::quality
