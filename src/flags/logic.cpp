#include "flags/logic.hpp"

#include <cmath>
#include <limits>
#include <string_view>
#include <type_traits>
#include <unordered_map>

#include "core/strings.hpp"

namespace sluice::flags {

enum class Op : uint8_t {
  kLiteral,  // a value (also what a constant subtree folds into)
  kArray,    // an array written in the rule: its elements are evaluated
  kVar, kMissing, kMissingSome,
  kIf, kEq, kStrictEq, kNe, kStrictNe, kLt, kLe, kGt, kGe,
  kNot, kNotNot, kOr, kAnd, kCoalesce, kIn, kCat, kSubstr, kMerge,
  kAdd, kSub, kMul, kDiv, kMod, kMax, kMin,
  kMap, kFilter, kReduce, kAll, kSome, kNone,
  kFractional, kSemVer, kStartsWith, kEndsWith,
  kInvalid,  // what the engine rejects when it runs (a lazy operator without an argument list)
};

struct Node {
  Op op = Op::kLiteral;
  Value literal;
  std::vector<Node> args;
  bool listed = false;         // the operator's argument was written as a list
  bool array_literal = false;  // this node was written as a JSON array
  std::string name;            // the operator as written (reports)
  // var: its key when written as a string or number ("" and null: the whole context), split at dots.
  bool literal_key = false;
  std::vector<std::string> path;
};

namespace {

struct OpInfo {
  Op op;
  bool lazy;
};

const std::unordered_map<std::string_view, OpInfo>& ops() {
  static const std::unordered_map<std::string_view, OpInfo> m = {
      {"var", {Op::kVar, false}},          {"missing", {Op::kMissing, false}},
      {"missing_some", {Op::kMissingSome, false}},
      {"if", {Op::kIf, true}},             {"?:", {Op::kIf, true}},
      {"==", {Op::kEq, true}},             {"===", {Op::kStrictEq, true}},
      {"!=", {Op::kNe, true}},             {"!==", {Op::kStrictNe, true}},
      {"<", {Op::kLt, true}},              {"<=", {Op::kLe, true}},
      {">", {Op::kGt, true}},              {">=", {Op::kGe, true}},
      {"!", {Op::kNot, false}},            {"not", {Op::kNot, false}},
      {"!!", {Op::kNotNot, false}},        {"or", {Op::kOr, true}},
      {"and", {Op::kAnd, true}},           {"??", {Op::kCoalesce, true}},
      {"in", {Op::kIn, false}},            {"cat", {Op::kCat, false}},
      {"substr", {Op::kSubstr, false}},    {"merge", {Op::kMerge, false}},
      {"+", {Op::kAdd, false}},            {"-", {Op::kSub, false}},
      {"*", {Op::kMul, false}},            {"/", {Op::kDiv, false}},
      {"%", {Op::kMod, false}},            {"max", {Op::kMax, false}},
      {"min", {Op::kMin, false}},          {"map", {Op::kMap, true}},
      {"filter", {Op::kFilter, true}},     {"reduce", {Op::kReduce, true}},
      {"all", {Op::kAll, true}},           {"every", {Op::kAll, true}},
      {"some", {Op::kSome, true}},         {"none", {Op::kNone, true}},
      {"fractional", {Op::kFractional, false}}, {"sem_ver", {Op::kSemVer, false}},
      {"starts_with", {Op::kStartsWith, false}}, {"ends_with", {Op::kEndsWith, false}},
  };
  return m;
}

// json-logic-engine operators flagd accepts that sluice does not evaluate.
bool engine_only(std::string_view name) {
  for (std::string_view s : {"val", "exists", "get", "keys", "length", "preserve", "throw", "try", "pipe", "eachKey"})
    if (name == s) return true;
  return false;
}

bool is_iterator(Op op) {
  return op == Op::kMap || op == Op::kFilter || op == Op::kReduce || op == Op::kAll || op == Op::kSome ||
         op == Op::kNone;
}

bool is_arithmetic(Op op) { return op == Op::kAdd || op == Op::kSub || op == Op::kMul || op == Op::kDiv || op == Op::kMod; }

// Does the subtree give the same answer for every context? (The engine evaluates such
// subtrees when it compiles a rule, so one that always fails is refused at load.) As the
// engine's isDeterministic: an iterator's rule may read its element, and only an
// iterator's first two arguments count (reduce's initial value is folded with an empty
// context when they are constant).
bool deterministic(const Node& n, bool in_iterator) {
  switch (n.op) {
    case Op::kLiteral:
      return true;
    case Op::kVar:
      return in_iterator;
    case Op::kMissing:
      return n.listed && n.args.empty();
    case Op::kMissingSome:
    case Op::kFractional:
    case Op::kSemVer:
    case Op::kStartsWith:
    case Op::kEndsWith:
      return false;
    default:
      break;
  }
  if (is_iterator(n.op) && n.listed) {
    for (size_t i = 0; i < n.args.size() && i < 2; ++i)
      if (!deterministic(n.args[i], in_iterator || i == 1)) return false;
    return true;
  }
  for (const auto& a : n.args)
    if (!deterministic(a, in_iterator)) return false;
  return true;
}

// ------------------------------------------------------------------ JavaScript's view

// JavaScript's own truthiness (where [] and {} are true); JsonLogic's is truthy().
bool js_truthy(const Value& v) { return v.is_array() || v.is_object() || truthy(v); }

// ToPrimitive: arrays and objects as their strings.
Value to_primitive(const Value& v) { return v.is_array() || v.is_object() ? Value::string(js_string(v)) : v; }

// a < b (or a <= b): strings compare by UTF-16 code units, anything else as numbers.
bool js_less(const Value& a, const Value& b, bool or_equal) {
  const Value pa = to_primitive(a), pb = to_primitive(b);
  if (pa.is_string() && pb.is_string()) return or_equal ? !js_string_less(pb.s, pa.s) : js_string_less(pa.s, pb.s);
  const double x = js_number(pa), y = js_number(pb);
  return or_equal ? x <= y : x < y;  // NaN: false either way
}

bool apply_compare(Op op, const Value& a, const Value& b) {
  switch (op) {
    case Op::kEq:
      return js_loose_equal(a, b);
    case Op::kNe:
      return !js_loose_equal(a, b);
    case Op::kStrictEq:
      return js_strict_equal(a, b);
    case Op::kStrictNe:
      return !js_strict_equal(a, b);
    case Op::kLt:
      return js_less(a, b, false);
    case Op::kLe:
      return js_less(a, b, true);
    case Op::kGt:
      return js_less(b, a, false);
    case Op::kGe:
      return js_less(b, a, true);
    default:
      return false;
  }
}

// +precoerceNumber(v): objects (and a NaN already computed) throw; anything else is Number(v).
bool precoerce(const Value& v, double& out) {
  if (v.is_array() || v.is_object() || (v.is_number() && std::isnan(v.n))) return false;
  out = js_number(v);
  return true;
}

bool str_or_null(const Value& v) { return v.is_string() || v.is_null(); }

// The engine's compareCheck(item, prev): the operand a compiled comparison uses, or a throw.
bool compare_check(const Value& item, const Value& prev, bool strict, Value& out) {
  if (strict || (str_or_null(item) && str_or_null(prev))) {
    out = item;
    return true;
  }
  double d = 0;
  if (!precoerce(item, d) || (std::isnan(d) && !prev.is_null())) return false;
  if (!precoerce(prev, d) || std::isnan(d)) return false;
  if (prev.is_null() && !js_truthy(item)) out = Value::null();
  else if (item.is_null() && !js_truthy(prev)) out = Value::number(0);
  else out = item;
  return true;
}

// The interpreter's comparison of two operands (json-logic-engine's comparison idiom).
bool interpreted_compare(Op op, const Value& a, const Value& b, bool& result) {
  if (op == Op::kStrictEq || op == Op::kStrictNe || (str_or_null(a) && str_or_null(b))) {
    result = apply_compare(op, a, b);
    return true;
  }
  double x = 0, y = 0;
  if (!precoerce(a, x) || std::isnan(x)) return false;
  if (!precoerce(b, y) || (std::isnan(y) && !a.is_null())) return false;
  result = apply_compare(op, Value::number(x), Value::number(y));
  return true;
}

// ToIntegerOrInfinity.
double to_integer(double d) { return std::isnan(d) ? 0 : std::trunc(d); }

// String.prototype.substr(from, length) on UTF-16 code units.
std::u16string js_substr(const std::u16string& s, double from, std::optional<double> length) {
  const double size = static_cast<double>(s.size());
  from = to_integer(from);
  const double start = from < 0 ? std::max(size + from, 0.0) : std::min(from, size);
  const double count = length ? std::min(std::max(to_integer(*length), 0.0), size - start) : size - start;
  if (count <= 0) return {};
  return s.substr(static_cast<size_t>(start), static_cast<size_t>(count));
}

// ------------------------------------------------------------------ property access

// The engine's property walk: `a.b.c`, with `\.` for a literal dot.
std::vector<std::string> split_path(std::string_view s) {
  std::vector<std::string> parts;
  std::string cur;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\\') {
      if (i + 1 < s.size() && (s[i + 1] == '.' || s[i + 1] == '/')) {
        cur += s[++i];
      } else if (i + 1 < s.size() && s[i + 1] == '\\') {
        cur += '\\';
        ++i;
      } else {
        cur += '\\';
      }
    } else if (c == '.') {
      parts.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (parts.size() != s.size()) parts.push_back(std::move(cur));
  return parts;
}

bool array_index(std::string_view key, size_t& idx) {
  if (key.empty() || key.size() > 15 || (key.size() > 1 && key[0] == '0')) return false;
  idx = 0;
  for (char c : key) {
    if (c < '0' || c > '9') return false;
    idx = idx * 10 + static_cast<size_t>(c - '0');
  }
  return true;
}

// v[key] in JavaScript for what JSON holds: nullptr when undefined. A string's length and
// characters are made in `tmp`.
const Value* member(const Value& v, const std::string& key, std::optional<Value>& tmp) {
  size_t idx = 0;
  switch (v.kind) {
    case Value::Kind::kObject:
      return v.get(key);
    case Value::Kind::kArray:
      if (key == "length") {
        tmp = Value::number(static_cast<double>(v.arr().size()));
        return &*tmp;
      }
      return array_index(key, idx) && idx < v.arr().size() ? &v.arr()[idx] : nullptr;
    case Value::Kind::kString: {
      if (key != "length" && !array_index(key, idx)) return nullptr;
      const std::u16string u = to_utf16(v.s);
      if (key == "length") tmp = Value::number(static_cast<double>(u.size()));
      else if (idx < u.size()) tmp = Value::string(from_utf16(std::u16string_view(u).substr(idx, 1)));
      else return nullptr;
      return &*tmp;
    }
    default:
      return nullptr;
  }
}

enum class Walk : uint8_t {
  kOptional,  // context?.a?.b: a null or undefined step is undefined
  kMissing,   // the engine's `missing`: a falsy step (0, "", false, null) is missing too
};

// Walks `path` from `root`; false when undefined.
bool walk(const Value& root, const std::vector<std::string>& path, Walk how, Value& out) {
  const Value* cur = &root;
  std::optional<Value> tmp[2];  // alternating: a step's made value may be the next step's parent
  for (size_t i = 0; i < path.size(); ++i) {
    if (how == Walk::kMissing ? !js_truthy(*cur) : cur->is_null()) return false;
    cur = member(*cur, path[i], tmp[i & 1]);
    if (!cur) return false;
  }
  out = *cur;
  return true;
}

// The engine's `missing` over `keys`: the keys not found (a null leaf is found).
Array missing_keys(const Array& keys, const Value& ctx) {
  Array missing;
  Value ignored;
  for (const auto& k : keys)
    if (!walk(ctx, split_path(js_string(k)), Walk::kMissing, ignored)) missing.push_back(k);
  return missing;
}

// Values an accumulator may hold: the engine's default maxDepth of 0 refuses arrays or
// objects that hold arrays or objects.
bool shallow(const Value& v) {
  if (v.is_array()) {
    for (const auto& x : v.arr())
      if (x.is_array() || x.is_object()) return false;
  } else if (v.is_object()) {
    for (const auto& [k, x] : v.obj())
      if (x.is_array() || x.is_object()) return false;
  }
  return true;
}

// ------------------------------------------------------------------ evaluation

// Evaluates a compiled rule as flagd-core runs it: json-logic-engine's compiled code, or its
// interpreter where the engine uses that instead (constant folding when a rule is loaded,
// an `if` with fewer than three arguments, and everything under them). The two differ in
// small ways, each written where it applies.
//
// Not reproduced, as accidents of the engine's code generation rather than what a rule
// means: `or`, `and`, `missing`, `missing_some` and `all` are emitted unparenthesized, so as
// a direct operand of `cat` (or the last of `??`, or a var's default) JavaScript's operator
// precedence changes them (`{"cat": ["a", {"or": [x, y]}]}` is x); the interpreter's
// shortcuts for `reduce` with a sum or product and for `filter` with a constant rule; var's
// "../" scopes. sluice evaluates what such a rule says.
class Evaluator {
 public:
  explicit Evaluator(bool interpreted) : interp_(interpreted) {}
  bool eval(const Node& n, const Value& ctx, Value& out);

 private:
  bool interp_;
  bool in_mapper_ = false;  // evaluating an iterator's rule for one element
  // The compiled code's one scratch variable, `prev`, per compiled function (the rule, and
  // each iterator's rule). Comparisons read it back after evaluating their right operand,
  // which may have overwritten it: `{"==": [1, {"var": "x"}]}` checks x against x.
  Value prev_;

  bool args(const Node& n, const Value& ctx, Array& out);
  bool unary_arg(const Node& n, const Value& ctx, Value& out);
  bool list(const Node& n, const Value& ctx, Value& out);
  bool var(const Node& n, const Value& ctx, Value& out);
  bool missing(const Node& n, const Value& ctx, Value& out);
  bool branch(const Node& n, const Value& ctx, Value& out);
  bool logical(const Node& n, const Value& ctx, Value& out);
  bool coalesce(const Node& n, const Value& ctx, Value& out);
  bool includes(const Node& n, const Value& ctx, Value& out);
  bool substr(const Node& n, const Value& ctx, Value& out);
  bool flagd_op(const Node& n, const Value& ctx, Value& out);
  bool var_interpreted(const Node& n, const Value& ctx, Value& out);
  bool missing_some(const Node& n, const Value& ctx, Value& out);
  bool compare(const Node& n, const Value& ctx, Value& out);
  bool compare_interpreted(const Node& n, const Value& ctx, Value& out);
  bool logical_not(const Node& n, const Value& ctx, Value& out);
  bool cat(const Node& n, const Value& ctx, Value& out);
  bool arithmetic(const Node& n, const Value& ctx, Value& out);
  bool arithmetic_reduce(const Node& n, const Value& ctx, Value& out);
  bool iterate(const Node& n, const Value& ctx, Value& out);
  bool map_element(const Node* mapper, const Value& element, Value& out);
  bool arg_refs(const Node& n, const Value& ctx, std::vector<const Value*>& refs, Array& made);
  bool fractional(const std::vector<const Value*>& a, const Value& ctx, Value& out);
};

bool Evaluator::args(const Node& n, const Value& ctx, Array& out) {
  out.clear();
  if (n.listed) {
    out.reserve(n.args.size());
    for (const auto& a : n.args) {
      Value v;
      if (!eval(a, ctx, v)) return false;
      out.push_back(std::move(v));
    }
    return true;
  }
  Value v;
  if (n.args.empty() || !eval(n.args[0], ctx, v)) return false;
  if (v.is_array()) out = v.arr();  // coerceArray
  else out.push_back(std::move(v));
  return true;
}

// What the interpreter passes an operator that takes one value (`!`, `!!`, `+`, `-`, `cat`):
// the argument itself when it is one rule, else the list of argument values.
bool Evaluator::unary_arg(const Node& n, const Value& ctx, Value& out) {
  if (!n.listed || (n.args.size() == 1 && !n.args[0].array_literal)) return eval(n.args[0], ctx, out);
  Array a;
  if (!args(n, ctx, a)) return false;
  out = Value::array(std::move(a));
  return true;
}

bool Evaluator::var(const Node& n, const Value& ctx, Value& out) {
  if (interp_) return var_interpreted(n, ctx, out);
  if (n.literal_key) {
    if (n.path.empty()) {
      out = ctx;
      return true;
    }
    // (context?.a?.b ?? default), the default evaluated only when needed; prev = the result.
    if (!walk(ctx, n.path, Walk::kOptional, out) || out.is_null()) {
      if (n.args.size() < 2) out = Value::null();
      else if (!eval(n.args[1], ctx, out)) return false;
    }
    prev_ = out;
    return true;
  }
  // A computed key: the engine calls its var method, where a null leaf stays null.
  Array a;
  if (!args(n, ctx, a)) return false;
  if (n.listed && a.size() == 1 && a[0].is_array()) a = Array(a[0].arr());
  const Value key = a.empty() ? Value::null() : a[0];
  const Value dflt = a.size() > 1 ? a[1] : Value::null();
  if (key.is_null() || (key.is_string() && key.s.empty())) {
    out = ctx;
    return true;
  }
  if (!walk(ctx, split_path(js_string(key)), Walk::kOptional, out)) out = dflt;
  return true;
}

bool Evaluator::var_interpreted(const Node& n, const Value& ctx, Value& out) {
  const bool one_key = n.literal_key && n.args.size() == 1;
  if (one_key && !js_truthy(n.args[0].literal)) {  // "", null, 0: the context
    out = ctx;
    return true;
  }
  if (one_key && (n.path.size() == 2 || n.path.size() == 3)) {
    // data && data.a && data.a.b: a falsy step is the answer.
    const Value* cur = &ctx;
    std::optional<Value> tmp[3];
    for (size_t i = 0; i < n.path.size() && js_truthy(*cur); ++i) {
      cur = member(*cur, n.path[i], tmp[i]);
      if (!cur) {
        out = Value::null();
        return true;
      }
    }
    out = *cur;
    return true;
  }
  Array a;
  if (!args(n, ctx, a)) return false;
  if (n.listed && a.size() == 1 && a[0].is_array() && !n.args[0].array_literal) a = Array(a[0].arr());
  const Value key = a.empty() ? Value::null() : a[0];
  if (key.is_null() || (key.is_string() && key.s.empty())) {
    out = ctx;
    return true;
  }
  if (!walk(ctx, split_path(js_string(key)), Walk::kOptional, out)) out = a.size() > 1 ? a[1] : Value::null();
  return true;
}

bool Evaluator::missing_some(const Node& n, const Value& ctx, Value& out) {
  if (!interp_ && n.listed && n.args.size() >= 2 && n.args[1].array_literal && n.args[1].op == Op::kLiteral) {
    // Compiled: `OPTIONS.length - (prev = missing(OPTIONS)).length < NEED ? prev : []`,
    // NEED evaluated after prev is set.
    const Array& options = n.args[1].literal.arr();
    prev_ = Value::array(missing_keys(options, ctx));
    const double found = static_cast<double>(options.size() - prev_.arr().size());
    Value need;
    if (!eval(n.args[0], ctx, need)) return false;
    out = js_less(Value::number(found), need, false) ? prev_ : Value::array({});
    return true;
  }
  Array a;
  if (!args(n, ctx, a)) return false;
  if (a.size() < 2 || !a[1].is_array()) return false;
  Array missing = missing_keys(a[1].arr(), ctx);
  const double found = static_cast<double>(a[1].arr().size() - missing.size());
  out = js_less(a[0], Value::number(found), true) ? Value::array({}) : Value::array(std::move(missing));
  return true;
}

bool Evaluator::compare(const Node& n, const Value& ctx, Value& out) {
  if (!n.listed || n.args.size() < 2) return false;
  if (interp_) return compare_interpreted(n, ctx, out);
  // ((prev = A) op compareCheck(B, prev)), and with more operands
  // (((prev = A) op (prev = compareCheck(B, prev))) && prev op (prev = compareCheck(C, prev))).
  const bool strict = n.op == Op::kStrictEq || n.op == Op::kStrictNe;
  Value left;
  if (!eval(n.args[0], ctx, left)) return false;
  prev_ = left;
  for (size_t i = 1; i < n.args.size(); ++i) {
    Value item, checked;
    if (!eval(n.args[i], ctx, item) || !compare_check(item, prev_, strict, checked)) return false;
    if (n.args.size() > 2) prev_ = checked;
    if (!apply_compare(n.op, left, checked)) {
      out = Value::boolean(false);
      return true;
    }
    left = std::move(checked);
  }
  out = Value::boolean(true);
  return true;
}

bool Evaluator::compare_interpreted(const Node& n, const Value& ctx, Value& out) {
  Value prev;
  if (!eval(n.args[0], ctx, prev)) return false;
  bool r = true;
  for (size_t i = 1; i < n.args.size() && r; ++i) {
    Value cur;
    if (!eval(n.args[i], ctx, cur)) return false;
    if (n.args.size() <= 3) {
      if (!interpreted_compare(n.op, prev, cur, r)) return false;
    } else {
      // The comparator's own loop (four or more operands): after a string or strict
      // comparison it still checks the operands as numbers.
      const bool strict = n.op == Op::kStrictEq || n.op == Op::kStrictNe;
      if ((strict || (str_or_null(cur) && str_or_null(prev))) && !apply_compare(n.op, prev, cur)) {
        r = false;
        break;
      }
      double x = 0, y = 0;
      if (!precoerce(cur, y) || (std::isnan(y) && !prev.is_null())) return false;
      if (i == 1 && (!precoerce(prev, x) || std::isnan(x))) return false;
      r = apply_compare(n.op, Value::number(js_number(prev)), Value::number(y));
    }
    prev = std::move(cur);
  }
  out = Value::boolean(r);
  return true;
}

bool Evaluator::logical_not(const Node& n, const Value& ctx, Value& out) {
  Value v;
  if (interp_) {
    if (!unary_arg(n, ctx, v)) return false;
    if (v.is_array()) v = v.arr().empty() ? Value::null() : Value(v.arr()[0]);  // the method reads value[0]
  } else if (!n.args.empty() && !eval(n.args[0], ctx, v)) {  // compiled: !engine.truthy(data[0])
    return false;
  }
  out = Value::boolean(truthy(v) == (n.op == Op::kNotNot));
  return true;
}

// cat's method: a string as is, an array's elements joined with nulls skipped, anything
// else as its string (null.toString() throws).
bool cat_value(const Value& v, Value& out) {
  if (v.is_string()) {
    out = v;
  } else if (v.is_array()) {
    std::string s;
    for (const auto& x : v.arr())
      if (!x.is_null()) s += js_string(x);
    out = Value::string(std::move(s));
  } else if (v.is_null()) {
    return false;
  } else {
    out = Value::string(js_string(v));
  }
  return true;
}

bool Evaluator::cat(const Node& n, const Value& ctx, Value& out) {
  if (interp_ || !n.listed) {
    Value v;
    return unary_arg(n, ctx, v) && cat_value(v, out);
  }
  std::string s;  // compiled: ('' + a + b ...), null as "null"
  for (const auto& a : n.args) {
    Value v;
    if (!eval(a, ctx, v)) return false;
    s += js_string(v);
  }
  out = Value::string(std::move(s));
  return true;
}

// The engine's arithmetic methods (the interpreter): `+` and `-` are given one value or the
// list of values, the others always a list.
bool arithmetic_method(Op op, const Value& data, double& r) {
  const bool list = data.is_array();
  if ((op == Op::kAdd || op == Op::kSub) && !list) {
    if (!js_truthy(data)) {
      r = 0;
      return true;
    }
    if (data.is_object()) return false;
    r = op == Op::kSub ? -js_number(data) : js_number(data);
    return !std::isnan(r);
  }
  const Array& a = data.arr();
  auto object = [](const Value& v) { return v.is_array() || v.is_object(); };
  switch (op) {
    case Op::kAdd:
    case Op::kMul:
      r = op == Op::kAdd ? 0 : 1;
      for (const auto& x : a) {
        if (object(x)) return false;
        r = op == Op::kAdd ? r + js_number(x) : r * js_number(x);
      }
      return !std::isnan(r);
    case Op::kSub:
      if (a.empty() || object(a[0])) return false;
      if (a.size() == 1) {
        r = -js_number(a[0]);  // returned even when NaN
        return true;
      }
      r = js_number(a[0]);
      for (size_t i = 1; i < a.size(); ++i) {
        if (object(a[i])) return false;
        r -= js_number(a[i]);
      }
      return !std::isnan(r);
    case Op::kDiv:
      if (a.empty() || object(a[0])) return false;
      r = js_number(a[0]);
      if (a.size() == 1) {
        if (r == 0 || std::isnan(r)) return false;
        r = 1 / r;
        return true;
      }
      for (size_t i = 1; i < a.size(); ++i) {
        if (object(a[i]) || !js_truthy(a[i])) return false;
        r /= js_number(a[i]);
      }
      return !std::isnan(r) && r != INFINITY;
    case Op::kMod:
      if (a.size() < 2 || object(a[0])) return false;
      r = js_number(a[0]);
      for (size_t i = 1; i < a.size(); ++i) {
        if (object(a[i])) return false;
        r = std::fmod(r, js_number(a[i]));
      }
      return !std::isnan(r);
    default:
      return false;
  }
}

bool Evaluator::arithmetic(const Node& n, const Value& ctx, Value& out) {
  double r = 0;
  if (n.op == Op::kMax || n.op == Op::kMin) {
    Array a;
    if (!args(n, ctx, a) || a.empty()) return false;
    r = a[0].n;
    for (const auto& v : a) {
      if (!v.is_number()) return false;
      if (n.op == Op::kMax ? v.n > r : v.n < r) r = v.n;
    }
  } else if (interp_) {
    Value data;
    if (n.op == Op::kAdd || n.op == Op::kSub) {
      if (!unary_arg(n, ctx, data)) return false;
    } else {
      Array a;
      if (!args(n, ctx, a)) return false;
      data = Value::array(std::move(a));
    }
    if (!arithmetic_method(n.op, data, r)) return false;
  } else if (!n.listed) {
    return arithmetic_reduce(n, ctx, out);
  } else {
    // Compiled: precoerceNumber(+precoerceNumber(a) OP +precoerceNumber(b) ...); a divisor
    // of 0 or NaN throws; the operand counts and literal operands were checked when compiled.
    std::vector<double> x;
    x.reserve(n.args.size() + 1);
    if (n.op == Op::kDiv && n.args.size() == 1) x.push_back(1);
    for (const auto& a : n.args) {
      Value v;
      double d = 0;
      if (!eval(a, ctx, v) || !precoerce(v, d)) return false;
      x.push_back(d);
    }
    r = n.op == Op::kMul ? 1 : 0;
    for (size_t i = 0; i < x.size(); ++i) {
      switch (n.op) {
        case Op::kAdd:
          r += x[i];
          break;
        case Op::kMul:
          r *= x[i];
          break;
        case Op::kSub:
          r = x.size() == 1 ? -x[i] : i == 0 ? x[i] : r - x[i];
          break;
        case Op::kDiv:
          if (i > 0 && (x[i] == 0 || std::isnan(x[i]))) return false;
          r = i == 0 ? x[i] : r / x[i];
          break;
        default:  // %
          r = i == 0 ? x[i] : std::fmod(r, x[i]);
          break;
      }
    }
    if (std::isnan(r)) return false;
  }
  out = Value::number(r);
  return true;
}

// Compiled arithmetic over one rule's value (`{"+": {"var": "xs"}}`): the engine reduces the
// array in JavaScript, where a NaN made by the last step is returned rather than thrown.
bool Evaluator::arithmetic_reduce(const Node& n, const Value& ctx, Value& out) {
  Value v;
  if (!eval(n.args[0], ctx, v)) return false;
  if (n.op == Op::kAdd || n.op == Op::kSub || n.op == Op::kDiv) prev_ = v;
  double r = 0, d = 0;
  if (!v.is_array()) {
    // +/-: precoerceNumber(+v), which throws on NaN; * / %: v.reduce is not a function.
    if ((n.op != Op::kAdd && n.op != Op::kSub) || !precoerce(v, d) || std::isnan(d)) return false;
    out = Value::number(n.op == Op::kSub ? -d : d);
    return true;
  }
  const Array& a = v.arr();
  // The reduce step (a, b) => (+precoerceNumber(a)) OP (+precoerceNumber(b)) (`+` does not
  // check its accumulator): a NaN accumulator throws, one made by the last step is returned.
  auto step = [&](double acc, const Value& b, bool check_acc, double& next) {
    double y = 0;
    if ((check_acc && std::isnan(acc)) || !precoerce(b, y)) return false;
    switch (n.op) {
      case Op::kAdd:
        next = acc + y;
        break;
      case Op::kSub:
        next = acc - y;
        break;
      case Op::kMul:
        next = acc * y;
        break;
      case Op::kDiv:
        if (!js_truthy(b)) return false;  // b || NaN
        next = acc / y;
        break;
      default:
        next = std::fmod(acc, y);
        break;
    }
    return true;
  };
  size_t start = 0;
  switch (n.op) {
    case Op::kAdd:
      r = 0;
      break;
    case Op::kMul:
      r = 1;
      break;
    case Op::kSub:
    case Op::kDiv:
      if (a.empty()) return false;  // assertSize(prev, 1)
      if (a.size() == 1) {
        if (n.op == Op::kSub) {
          if (!precoerce(a[0], d)) return false;
          r = -d;
        } else {
          if (!js_truthy(a[0]) || !precoerce(a[0], d)) return false;  // 1 / precoerceNumber(a[0] || NaN)
          r = 1 / d;
        }
        out = Value::number(r);
        return true;
      }
      [[fallthrough]];
    default:  // reduce without an initial value: the first element is the accumulator
      if (a.size() < (n.op == Op::kMod ? 2u : 1u) || !precoerce(a[0], r)) return false;
      start = 1;
      break;
  }
  for (size_t i = start; i < a.size(); ++i)
    if (!step(r, a[i], n.op != Op::kAdd && i > start, r)) return false;
  out = Value::number(r);
  return true;
}

bool Evaluator::map_element(const Node* mapper, const Value& element, Value& out) {
  if (!mapper) {
    out = Value::null();
    return true;
  }
  // The iterator's rule is a function of its own, with its own prev.
  Value saved = std::move(prev_);
  const bool was_in_mapper = in_mapper_;
  prev_ = Value::null();
  in_mapper_ = true;
  const bool ok = eval(*mapper, element, out);
  in_mapper_ = was_in_mapper;
  prev_ = std::move(saved);
  return ok;
}

bool Evaluator::iterate(const Node& n, const Value& ctx, Value& out) {
  if (!n.listed || n.args.empty()) return false;
  Value sel;
  if (!eval(n.args[0], ctx, sel)) return false;
  const Node* mapper = n.args.size() > 1 ? &n.args[1] : nullptr;
  if (n.op == Op::kReduce) {
    const bool initial = n.args.size() > 2;
    Value acc;
    if (initial && (!eval(n.args[2], ctx, acc) || !shallow(acc))) return false;
    if (!js_truthy(sel)) sel = Value::array({});
    if (!sel.is_array()) return false;  // "abc".reduce is not a function
    const Array& items = sel.arr();
    size_t i = 0;
    if (!initial) {
      if (items.empty()) return false;  // reduce of an empty array with no initial value
      acc = items[i++];
    }
    for (; i < items.size(); ++i) {
      Value next;
      if (!map_element(mapper, Value::object({{"accumulator", std::move(acc)}, {"current", items[i]}}), next) ||
          !shallow(next))
        return false;
      acc = std::move(next);
    }
    out = std::move(acc);
    return true;
  }
  // all of an empty array is false; compiled, that is checked before (sel || []), so all of
  // null is true.
  if (n.op == Op::kAll && !interp_) prev_ = sel;
  if (!js_truthy(sel) && interp_) sel = Value::array({});
  if (n.op == Op::kAll && sel.is_array() && sel.arr().empty()) {
    out = Value::boolean(false);
    return true;
  }
  if (!js_truthy(sel)) sel = Value::array({});
  Array chars;  // the interpreter's elements of a string or object
  const Array* items = &sel.arr();
  if (!sel.is_array()) {
    // (sel || []).map is not a function; the interpreter's some/all/none loop
    // `for (i = 0; i < sel.length; i++)` instead: a string's characters, an object's
    // members "0", "1", ... up to its own `length` member, nothing for other values.
    if (!interp_ || n.op == Op::kMap || n.op == Op::kFilter) return false;
    if (sel.is_string()) {
      for (char16_t c : to_utf16(sel.s)) chars.push_back(Value::string(from_utf16(std::u16string_view(&c, 1))));
    } else if (const Value* length = sel.get("length")) {
      const double count = std::ceil(js_number(*length));
      if (count > 65536) return false;  // JavaScript would loop (almost) for ever
      for (double i = 0; i < count; ++i) {
        const Value* x = sel.get(js_number_text(i));
        chars.push_back(x ? *x : Value::null());
      }
    }
    items = &chars;
  }
  Array mapped;
  for (const auto& item : *items) {
    Value r;
    if (!map_element(mapper, item, r)) return false;
    switch (n.op) {
      case Op::kMap:
        mapped.push_back(std::move(r));
        break;
      case Op::kFilter:
        if (truthy(r)) mapped.push_back(item);
        break;
      case Op::kAll:
        if (!truthy(r)) {
          out = Value::boolean(false);
          return true;
        }
        break;
      default:  // some, none
        if (truthy(r)) {
          out = Value::boolean(n.op == Op::kSome);
          return true;
        }
        break;
    }
  }
  if (n.op == Op::kMap || n.op == Op::kFilter) out = Value::array(std::move(mapped));
  else out = Value::boolean(n.op != Op::kSome);
  return true;
}

// Like args(), referring to literal arguments rather than copying them; `made` holds the others.
bool Evaluator::arg_refs(const Node& n, const Value& ctx, std::vector<const Value*>& refs, Array& made) {
  size_t computed = n.listed ? 0 : 1;
  for (const auto& a : n.args) computed += a.op != Op::kLiteral;
  made.reserve(computed);  // no reallocation: refs point into it
  refs.reserve(n.args.size());
  if (n.listed) {
    for (const auto& a : n.args) {
      if (a.op == Op::kLiteral) {
        refs.push_back(&a.literal);
        continue;
      }
      made.emplace_back();
      if (!eval(a, ctx, made.back())) return false;
      refs.push_back(&made.back());
    }
    return true;
  }
  made.emplace_back();
  if (n.args.empty() || !eval(n.args[0], ctx, made.back())) return false;
  if (!made.back().is_array()) refs.push_back(&made.back());
  else
    for (const auto& x : made.back().arr()) refs.push_back(&x);
  return true;
}

bool Evaluator::fractional(const std::vector<const Value*>& a, const Value& ctx, Value& out) {
  out = Value::null();
  if (a.empty()) return true;
  const Value* flagd = ctx.get("$flagd");
  if (!flagd || !js_truthy(*flagd)) return true;
  std::string joined;
  std::string_view bucket_by;
  size_t first = 0;
  if (a[0]->is_string()) {
    bucket_by = a[0]->s;
    first = 1;
  } else {
    const Value* key = ctx.get("targetingKey");
    if (!key || !js_truthy(*key)) return true;
    const Value* flag_key = flagd->get("flagKey");
    joined = (flag_key ? js_string(*flag_key) : "undefined") + js_string(*key);
    bucket_by = joined;
  }
  // A bucket is [variant] or [variant, integer weight]; negative weights (rollout arithmetic)
  // count as 0. Anything else makes the whole rule null.
  std::vector<double> weights;
  weights.reserve(a.size() - first);
  double total = 0;
  for (size_t i = first; i < a.size(); ++i) {
    if (!a[i]->is_array()) return true;
    const Array& b = a[i]->arr();
    if (b.empty() || b.size() > 2) return true;
    if (!b[0].is_string() && !b[0].is_number() && !b[0].is_bool() && !b[0].is_null()) return true;
    double w = 1;
    if (b.size() == 2) {
      if (!b[1].is_number() || !std::isfinite(b[1].n) || std::trunc(b[1].n) != b[1].n) return true;
      w = std::max(0.0, b[1].n);
    }
    weights.push_back(w);
    total += w;
  }
  if (total > 2147483647.0) return true;
  const uint64_t bucket = (static_cast<uint64_t>(flagd_murmur3(bucket_by)) * static_cast<uint64_t>(total)) >> 32;
  double sum = 0;  // exact: every partial sum is at most the total
  for (size_t i = 0; i < weights.size(); ++i) {
    sum += weights[i];
    if (sum > static_cast<double>(bucket)) {
      out = a[first + i]->arr()[0];
      return true;
    }
  }
  return true;
}

// String.prototype.substr as the engine's substr calls it: a negative length counts from
// the end (`result.length + end`, which concatenates when `end` is a string).
bool substr_method(const Array& a, Value& out) {
  if (a.empty() || !a[0].is_string()) return false;
  const std::u16string s = to_utf16(a[0].s);
  const double from = a.size() > 1 ? js_number(a[1]) : 0;
  std::u16string r;
  if (a.size() > 2 && js_less(a[2], Value::number(0), false)) {
    const std::u16string rest = js_substr(s, from, std::nullopt);
    const Value& end = a[2];
    const double n = static_cast<double>(rest.size());
    r = js_substr(rest, 0, end.is_number() ? n + end.n : js_string_to_number(js_number_text(n) + js_string(end)));
  } else {
    r = js_substr(s, from, a.size() > 2 ? std::optional<double>(js_number(a[2])) : std::nullopt);
  }
  out = Value::string(from_utf16(r));
  return true;
}

bool Evaluator::eval(const Node& n, const Value& ctx, Value& out) {
  switch (n.op) {
    case Op::kLiteral:
      out = n.literal;
      return true;
    case Op::kInvalid:
      return false;
    case Op::kArray:
    case Op::kMerge:
      return list(n, ctx, out);
    case Op::kVar:
      return var(n, ctx, out);
    case Op::kMissing:
      return missing(n, ctx, out);
    case Op::kMissingSome:
      return missing_some(n, ctx, out);
    case Op::kIf:
      return branch(n, ctx, out);
    case Op::kEq:
    case Op::kStrictEq:
    case Op::kNe:
    case Op::kStrictNe:
    case Op::kLt:
    case Op::kLe:
    case Op::kGt:
    case Op::kGe:
      return compare(n, ctx, out);
    case Op::kNot:
    case Op::kNotNot:
      return logical_not(n, ctx, out);
    case Op::kOr:
    case Op::kAnd:
      return logical(n, ctx, out);
    case Op::kCoalesce:
      return coalesce(n, ctx, out);
    case Op::kIn:
      return includes(n, ctx, out);
    case Op::kCat:
      return cat(n, ctx, out);
    case Op::kSubstr:
      return substr(n, ctx, out);
    case Op::kAdd:
    case Op::kSub:
    case Op::kMul:
    case Op::kDiv:
    case Op::kMod:
    case Op::kMax:
    case Op::kMin:
      return arithmetic(n, ctx, out);
    case Op::kMap:
    case Op::kFilter:
    case Op::kReduce:
    case Op::kAll:
    case Op::kSome:
    case Op::kNone:
      return iterate(n, ctx, out);
    case Op::kFractional:
    case Op::kSemVer:
    case Op::kStartsWith:
    case Op::kEndsWith:
      return flagd_op(n, ctx, out);
  }
  return false;
}

// An array written in the rule, or merge's arguments with arrays flattened one level.
bool Evaluator::list(const Node& n, const Value& ctx, Value& out) {
  Array a;
  if (!args(n, ctx, a)) return false;
  if (n.op == Op::kMerge) {
    Array r;
    for (auto& x : a) {
      if (x.is_array()) r.insert(r.end(), x.arr().begin(), x.arr().end());
      else r.push_back(std::move(x));
    }
    a = std::move(r);
  }
  out = Value::array(std::move(a));
  return true;
}

bool Evaluator::missing(const Node& n, const Value& ctx, Value& out) {
  Array a;
  if (!args(n, ctx, a)) return false;
  out = Value::array(missing_keys(a, ctx));
  return true;
}

bool Evaluator::branch(const Node& n, const Value& ctx, Value& out) {
  if (!n.listed) return false;
  if (!interp_ && n.args.size() < 3) {
    // The engine compiles only an `if` of three or more arguments; a shorter one runs in its
    // interpreter, and so does everything under it.
    interp_ = true;
    const bool ok = branch(n, ctx, out);
    interp_ = false;
    return ok;
  }
  const auto& a = n.args;
  size_t i = 0;
  for (; i + 1 < a.size(); i += 2) {
    Value test;
    if (!eval(a[i], ctx, test)) return false;
    if (truthy(test)) return eval(a[i + 1], ctx, out);
  }
  if (i < a.size()) return eval(a[i], ctx, out);
  out = Value::null();
  return true;
}

bool Evaluator::logical(const Node& n, const Value& ctx, Value& out) {
  // Compiled: engine.truthy(prev = a) ? prev : engine.truthy(prev = b) ? prev : prev
  if (!n.listed) return false;
  out = Value::null();
  for (const auto& a : n.args) {
    if (!eval(a, ctx, out)) return false;
    if (!interp_) prev_ = out;
    if (truthy(out) == (n.op == Op::kOr)) return true;
  }
  return true;
}

bool Evaluator::coalesce(const Node& n, const Value& ctx, Value& out) {
  out = Value::null();
  if (!n.listed) {
    // Compiled: (value).reduce((a, b) => a ?? b, null); the interpreter wants a list.
    Value v;
    if (interp_ || !eval(n.args[0], ctx, v) || !v.is_array()) return false;
    for (const auto& x : v.arr())
      if (!x.is_null()) {
        out = x;
        break;
      }
    return true;
  }
  for (const auto& a : n.args) {
    if (!eval(a, ctx, out)) return false;
    if (!out.is_null()) return true;
  }
  return true;
}

bool Evaluator::includes(const Node& n, const Value& ctx, Value& out) {
  // (haystack || []).includes(item); the compiled code evaluates the haystack first.
  Value item, hay;
  if (!interp_ && n.listed) {
    if ((n.args.size() > 1 && !eval(n.args[1], ctx, hay)) || (!n.args.empty() && !eval(n.args[0], ctx, item)))
      return false;
  } else {
    Array a;
    if (!args(n, ctx, a)) return false;
    if (!a.empty()) item = std::move(a[0]);
    if (a.size() > 1) hay = std::move(a[1]);
  }
  if (!js_truthy(hay)) {
    out = Value::boolean(false);
  } else if (hay.is_string()) {
    out = Value::boolean(hay.s.find(js_string(item)) != std::string::npos);
  } else if (hay.is_array()) {
    bool found = false;
    for (const auto& x : hay.arr()) found = found || same_value_zero(x, item);
    out = Value::boolean(found);
  } else {
    return false;  // (5).includes is not a function
  }
  return true;
}

bool Evaluator::substr(const Node& n, const Value& ctx, Value& out) {
  Array a;
  return args(n, ctx, a) && substr_method(a, out);
}

bool Evaluator::flagd_op(const Node& n, const Value& ctx, Value& out) {
  // flagd's own operators read flagd's logger from the rule's context, which an iterator's
  // rule (run on an element) does not have: there they always throw.
  std::vector<const Value*> a;
  Array made;
  if (in_mapper_ || !arg_refs(n, ctx, a, made)) return false;
  out = Value::null();
  if (n.op == Op::kFractional) return fractional(a, ctx, out);
  if (n.op == Op::kSemVer) {
    if (a.size() != 3) return true;
    auto v1 = parse_semver(js_string(*a[0]));
    auto v2 = parse_semver(js_string(*a[2]));
    if (!v1 || !v2) return true;
    const std::string op = js_string(*a[1]);
    const int c = compare_semver(*v1, *v2);
    if (op == "=") out = Value::boolean(c == 0);
    else if (op == "!=") out = Value::boolean(c != 0);
    else if (op == "<") out = Value::boolean(c < 0);
    else if (op == "<=") out = Value::boolean(c <= 0);
    else if (op == ">=") out = Value::boolean(c >= 0);
    else if (op == ">") out = Value::boolean(c > 0);
    else if (op == "^") out = Value::boolean(v1->major == v2->major);
    else if (op == "~") out = Value::boolean(v1->major == v2->major && v1->minor == v2->minor);
    return true;
  }
  if (a.size() != 2 || !a[0]->is_string() || !a[1]->is_string()) return true;
  const std::string& s = a[0]->s;
  const std::string& p = a[1]->s;
  out = Value::boolean(s.size() >= p.size() && (n.op == Op::kStartsWith ? s.compare(0, p.size(), p) == 0
                                                                        : s.compare(s.size() - p.size(), p.size(), p) == 0));
  return true;
}

std::string at(const Value& v) {
  std::string w = v.where();
  return w.empty() ? "" : w + ": ";
}

bool build(const Value& rule, Node& out, std::string& error, int depth);

bool build_list(const Value& list, Node& out, std::string& error, int depth) {
  for (const auto& item : list.arr()) {
    Node child;
    if (!build(item, child, error, depth + 1)) return false;
    out.args.push_back(std::move(child));
  }
  return true;
}

// A var's key as the engine compiles it: a string or number (not "../" scope) is a path read
// with optional chaining; null or "" is the whole context; anything else is computed.
void var_key(const Value& arg, Node& out) {
  if (arg.is_object()) return;
  const Value* key = nullptr;
  if (arg.is_array()) {
    if (arg.arr().size() > 2) return;
    if (!arg.arr().empty()) key = &arg.arr()[0];
  } else {
    key = &arg;
  }
  if (!key || key->is_null() || (key->is_string() && key->s.empty())) {
    out.literal_key = true;
  } else if (key->is_number() || (key->is_string() && key->s.find("../") == std::string::npos)) {
    out.literal_key = true;
    out.path = split_path(js_string(*key));
  }
}

// What the engine's compiler refuses in a list of arithmetic operands (its numberCoercion):
// an array, a string that is not a number, a divisor that is the constant 0, too few operands.
bool check_arithmetic(const Node& n, std::string& why) {
  const size_t count = n.args.size();
  if ((n.op == Op::kSub || n.op == Op::kDiv) && count == 0) {
    why = "needs at least one operand";
    return false;
  }
  if (n.op == Op::kMod && count < 2) {
    why = "needs at least two operands";
    return false;
  }
  for (size_t i = 0; i < count; ++i) {
    const Node& a = n.args[i];
    if (a.array_literal) {
      why = "an operand is an array";
      return false;
    }
    if (a.op != Op::kLiteral) continue;
    const Value& v = a.literal;
    if (v.is_string() && std::isnan(js_string_to_number(v.s))) {
      why = "operand '" + v.s + "' is not a number";
      return false;
    }
    const bool divisor = n.op == Op::kDiv && (i > 0 || count == 1);
    if (divisor && ((v.is_number() && v.n == 0) || (v.is_string() && js_string_to_number(v.s) == 0))) {
      why = "divides by 0";
      return false;
    }
  }
  return true;
}

bool build(const Value& rule, Node& out, std::string& error, int depth) {
  if (depth > 64) {
    error = at(rule) + "rule nested deeper than 64 levels";
    return false;
  }
  if (rule.is_array()) {
    out.op = Op::kArray;
    out.listed = true;
    out.array_literal = true;
    if (!build_list(rule, out, error, depth)) return false;
  } else if (!rule.is_object() || rule.obj().empty()) {
    out.op = Op::kLiteral;
    out.literal = rule;
    return true;
  } else {
    if (rule.obj().size() > 1) {
      error = at(rule) + "a rule object has exactly one operator, this one has " + std::to_string(rule.obj().size()) +
              " keys (" + rule.obj()[0].first + ", " + rule.obj()[1].first + ")";
      return false;
    }
    const auto& [name, arg] = rule.obj()[0];
    auto it = ops().find(name);
    if (it == ops().end()) {
      if (name == "$ref")
        error = at(rule) + "$ref to '" + js_string(arg) + "', which $evaluators does not define";
      else if (engine_only(name))
        error = at(rule) + "operator '" + name + "' is not supported by sluice (use the JsonLogic and flagd operators)";
      else
        error = at(rule) + "unknown operator '" + name + "'";
      return false;
    }
    out.op = it->second.op;
    out.name = name;
    if (arg.is_array()) {
      out.listed = true;
      if (!build_list(arg, out, error, depth)) return false;
    } else if (!it->second.lazy && !arg.is_object()) {
      out.listed = true;  // a non-lazy operator's single value is a one-element list
      Node lit;
      lit.literal = arg;
      out.args.push_back(std::move(lit));
    } else {
      Node child;
      if (!build(arg, child, error, depth + 1)) return false;
      out.args.push_back(std::move(child));
      if (is_iterator(out.op)) {  // the engine's compiler throws
        error = at(rule) + "'" + name + "' takes a list: [array, rule" + (out.op == Op::kReduce ? ", initial]" : "]");
        return false;
      }
      if (it->second.lazy && out.op != Op::kCoalesce) out.op = Op::kInvalid;  // the engine needs a list here
    }
    if (out.op == Op::kVar) var_key(arg, out);
    std::string why;
    if (is_arithmetic(out.op) && out.listed && !check_arithmetic(out, why)) {
      error = at(rule) + "'" + name + "' " + why;
      return false;
    }
  }
  // Fold what no context can change, as the engine does when it compiles: a constant rule
  // that fails is refused now rather than failing every evaluation.
  if (deterministic(out, false)) {
    Value v;
    Evaluator folder(true);
    if (!folder.eval(out, Value::object({}), v)) {
      error = at(rule) + "this rule fails for every context ('" + (out.name.empty() ? "[...]" : out.name) +
              "' with these arguments)";
      return false;
    }
    Node lit;
    lit.literal = std::move(v);
    lit.array_literal = out.array_literal;
    out = std::move(lit);
  }
  return true;
}

bool uses_op(const Node& n, std::string_view op) {
  if (n.name == op) return true;
  for (const auto& a : n.args)
    if (uses_op(a, op)) return true;
  return false;
}

inline uint32_t rotl(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

// MurmurHash3 as imurmurhash computes it over a string's UTF-16 code units: each unit's low
// byte, with the high byte of units above 0xFF mixed in as well, and a tail whose top bit is
// set skipped (its `if (k1 > 0)` on a signed value). `key` is a string of code units.
template <typename Units>
uint32_t murmur3_units(const Units& key) {
  const uint32_t c1 = 0xcc9e2d51, c2 = 0x1b873593;
  auto unit = [&](size_t i) { return static_cast<uint32_t>(static_cast<std::make_unsigned_t<typename Units::value_type>>(key[i])); };
  uint32_t h1 = 0;
  const size_t len = key.size();
  size_t i = 0;
  const size_t rem = len & 3;
  const size_t body = len - rem;
  while (i < body) {
    uint32_t k1 = unit(i) ^ (unit(i + 1) << 8) ^ (unit(i + 2) << 16);
    const uint32_t top = unit(i + 3);
    k1 ^= ((top & 0xffu) << 24) ^ ((top & 0xff00u) >> 8);
    i += 4;
    k1 *= c1;
    k1 = rotl(k1, 15);
    k1 *= c2;
    h1 ^= k1;
    h1 = rotl(h1, 13);
    h1 = h1 * 5 + 0xe6546b64;
  }
  uint32_t k1 = 0;
  switch (rem) {
    case 3:
      k1 ^= unit(i + 2) << 16;
      [[fallthrough]];
    case 2:
      k1 ^= unit(i + 1) << 8;
      [[fallthrough]];
    case 1:
      k1 ^= unit(i);
  }
  if (static_cast<int32_t>(k1) > 0) {
    k1 *= c1;
    k1 = rotl(k1, 15);
    k1 *= c2;
    h1 ^= k1;
  }
  h1 ^= static_cast<uint32_t>(len);
  h1 ^= h1 >> 16;
  h1 *= 0x85ebca6b;
  h1 ^= h1 >> 13;
  h1 *= 0xc2b2ae35;
  h1 ^= h1 >> 16;
  return h1;
}

bool numeric_id(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// node-semver's NUMERICIDENTIFIER: 0 or no leading zero; at most MAX_SAFE_INTEGER.
bool parse_numeric(std::string_view s, uint64_t& out) {
  if (s.empty() || (s.size() > 1 && s[0] == '0') || s.size() > 16) return false;
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + static_cast<uint64_t>(c - '0');
  }
  return out <= 9007199254740991ULL;
}

bool ident_char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

// node-semver's strict parse (after trimming, with an optional leading "v").
std::optional<SemVer> strict_semver(std::string_view s) {
  size_t units = 0;  // UTF-16 length, checked before trimming
  for (char c : s) units += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 + ((static_cast<unsigned char>(c) & 0xF8) == 0xF0) : 0;
  if (units > 256) return std::nullopt;
  s = js_trim(s);
  if (!s.empty() && s[0] == 'v') s.remove_prefix(1);
  size_t plus = s.find('+');
  if (plus != std::string_view::npos) {
    std::string_view build = s.substr(plus + 1);
    size_t start = 0;
    while (true) {
      size_t dot = build.find('.', start);
      std::string_view id = build.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
      if (id.empty()) return std::nullopt;
      for (char c : id)
        if (!ident_char(c)) return std::nullopt;
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
    s = s.substr(0, plus);
  }
  std::string_view pre;
  size_t dash = s.find('-');
  if (dash != std::string_view::npos) {
    pre = s.substr(dash + 1);
    s = s.substr(0, dash);
    if (pre.empty()) return std::nullopt;
  }
  SemVer v;
  size_t d1 = s.find('.');
  if (d1 == std::string_view::npos) return std::nullopt;
  size_t d2 = s.find('.', d1 + 1);
  if (d2 == std::string_view::npos || s.find('.', d2 + 1) != std::string_view::npos) return std::nullopt;
  if (!parse_numeric(s.substr(0, d1), v.major) || !parse_numeric(s.substr(d1 + 1, d2 - d1 - 1), v.minor) ||
      !parse_numeric(s.substr(d2 + 1), v.patch))
    return std::nullopt;
  if (dash != std::string_view::npos) {
    size_t start = 0;
    while (true) {
      size_t dot = pre.find('.', start);
      std::string_view id = pre.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
      if (id.empty()) return std::nullopt;
      for (char c : id)
        if (!ident_char(c)) return std::nullopt;
      bool digits = numeric_id(std::string(id));
      uint64_t ignored = 0;
      if (digits && !parse_numeric(id, ignored)) {
        if (id.size() > 1 && id[0] == '0') return std::nullopt;  // numeric identifiers have no leading zero
      }
      v.pre.emplace_back(id);
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
  }
  return v;
}

int cmp_ident(const std::string& a, const std::string& b) {
  const bool an = numeric_id(a), bn = numeric_id(b);
  if (an && bn) {
    double x = std::strtod(a.c_str(), nullptr), y = std::strtod(b.c_str(), nullptr);
    return x == y ? 0 : x < y ? -1 : 1;
  }
  if (an) return -1;
  if (bn) return 1;
  return a == b ? 0 : a < b ? -1 : 1;
}

}  // namespace

std::optional<Logic> Logic::compile(const Value& rule, std::string& error) {
  auto root = std::make_shared<Node>();
  if (!build(rule, *root, error, 0)) return std::nullopt;
  Logic l;
  l.root_ = std::move(root);
  return l;
}

bool Logic::evaluate(const Value& context, Value& out) const {
  Evaluator e(false);
  return e.eval(*root_, context, out);
}

bool Logic::uses(std::string_view op) const { return root_ && uses_op(*root_, op); }

uint32_t flagd_murmur3(std::string_view text) {
  for (char c : text)
    if (static_cast<unsigned char>(c) >= 0x80) return murmur3_units(to_utf16(text));
  return murmur3_units(text);  // ASCII: the bytes are the code units
}

std::optional<SemVer> parse_semver(const std::string& raw) {
  std::string s = raw;
  if (!s.empty() && (s[0] == 'v' || s[0] == 'V')) s.erase(0, 1);
  if (auto v = strict_semver(s)) return v;
  // "1" and "1.2" are coerced to 1.0.0 and 1.2.0 (at most 16 digits each, as node-semver).
  size_t dot = s.find('.');
  std::string_view a = std::string_view(s).substr(0, dot);
  std::string_view b = dot == std::string::npos ? std::string_view() : std::string_view(s).substr(dot + 1);
  auto digits = [](std::string_view x) {
    if (x.empty()) return false;
    for (char c : x)
      if (c < '0' || c > '9') return false;
    return true;
  };
  if (!digits(a) || (dot != std::string::npos && !digits(b))) return std::nullopt;
  // The coerced "A.B.0" is parsed strictly again: a leading zero makes it invalid.
  // node-semver's coerce reads runs of at most 16 digits: a longer run is skipped.
  if (a.size() > 16) {
    if (b.empty() || b.size() > 16) return std::nullopt;
    a = b;
    b = {};
    dot = std::string::npos;
  } else if (b.size() > 16) {
    b = {};
    dot = std::string::npos;
  }
  SemVer v;
  if (!parse_numeric(a, v.major) || (dot != std::string::npos && !parse_numeric(b, v.minor))) return std::nullopt;
  return v;
}

int compare_semver(const SemVer& a, const SemVer& b) {
  if (a.major != b.major) return a.major < b.major ? -1 : 1;
  if (a.minor != b.minor) return a.minor < b.minor ? -1 : 1;
  if (a.patch != b.patch) return a.patch < b.patch ? -1 : 1;
  if (!a.pre.empty() && b.pre.empty()) return -1;
  if (a.pre.empty() && !b.pre.empty()) return 1;
  for (size_t i = 0;; ++i) {
    if (i >= a.pre.size() && i >= b.pre.size()) return 0;
    if (i >= b.pre.size()) return 1;
    if (i >= a.pre.size()) return -1;
    if (a.pre[i] == b.pre[i]) continue;
    return cmp_ident(a.pre[i], b.pre[i]);
  }
}

}  // namespace sluice::flags
