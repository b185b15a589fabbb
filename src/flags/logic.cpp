#include "flags/logic.hpp"

#include <cmath>
#include <limits>
#include <string_view>
#include <unordered_map>

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
  bool listed = false;  // the operator's argument was written as a list
  std::string name;     // the operator as written (reports)
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

// Does the subtree give the same answer for every context? (The engine evaluates such
// subtrees when it compiles a rule, so one that always fails is refused at load.)
bool deterministic(const Node& n, bool in_iterator) {
  switch (n.op) {
    case Op::kLiteral:
      return true;
    case Op::kVar:
      if (!in_iterator) return false;
      break;
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
    for (size_t i = 0; i < n.args.size(); ++i)
      if (!deterministic(n.args[i], in_iterator || i == 1)) return false;
    return true;
  }
  for (const auto& a : n.args)
    if (!deterministic(a, in_iterator)) return false;
  return true;
}

class Evaluator {
 public:
  explicit Evaluator(bool folding) : folding_(folding) {}
  bool eval(const Node& n, const Value& ctx, Value& out);

 private:
  bool folding_;  // json-logic-engine folds constants with its interpreter, which differs a little
  bool args(const Node& n, const Value& ctx, Array& out);
  bool compare(const Node& n, const Value& ctx, Value& out);
  bool arithmetic(const Node& n, const Value& ctx, Value& out);
  bool iterate(const Node& n, const Value& ctx, Value& out);
  bool fractional(const Array& a, const Value& ctx, Value& out);
};

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

// v[key] in JavaScript; false when undefined.
bool property(const Value& v, const std::string& key, Value& out) {
  size_t idx = 0;
  switch (v.kind) {
    case Value::Kind::kObject:
      if (const Value* m = v.get(key)) {
        out = *m;
        return true;
      }
      return false;
    case Value::Kind::kArray:
      if (key == "length") {
        out = Value::number(static_cast<double>(v.arr().size()));
        return true;
      }
      if (array_index(key, idx) && idx < v.arr().size()) {
        out = v.arr()[idx];
        return true;
      }
      return false;
    case Value::Kind::kString: {
      std::u16string u = to_utf16(v.s);
      if (key == "length") {
        out = Value::number(static_cast<double>(u.size()));
        return true;
      }
      if (array_index(key, idx) && idx < u.size()) {
        out = Value::string(from_utf16(std::u16string_view(u).substr(idx, 1)));
        return true;
      }
      return false;
    }
    default:
      return false;
  }
}

// Walks `path` from `v`; false when a step is undefined (null steps are undefined too: `?.`).
bool walk(const Value& root, const std::vector<std::string>& path, Value& out) {
  Value cur = root;
  for (const auto& p : path) {
    if (cur.is_null()) return false;
    Value next;
    if (!property(cur, p, next)) return false;
    cur = std::move(next);
  }
  out = std::move(cur);
  return true;
}

// The engine's compareCheck: which operand a loose comparison uses, or an error.
bool compare_check(const Value& item, const Value& prev, bool strict, Value& out) {
  auto str_or_null = [](const Value& v) { return v.is_string() || v.is_null(); };
  if (strict || (str_or_null(item) && str_or_null(prev))) {
    out = item;
    return true;
  }
  auto bad = [](const Value& v) {  // precoerceNumber throws, or +v is NaN
    if ((v.is_array() || v.is_object())) return true;  // objects are truthy: thrown
    return std::isnan(js_number(v));
  };
  if ((item.is_array() || item.is_object())) return false;
  if (bad(item) && !prev.is_null()) return false;
  if (bad(prev)) return false;
  if (prev.is_null() && !truthy(item)) {
    out = Value::null();
    return true;
  }
  if (item.is_null() && !truthy(prev)) {
    out = Value::number(0);
    return true;
  }
  out = item;
  return true;
}

bool js_less(const Value& a, const Value& b, bool or_equal) {
  if (a.is_string() && b.is_string()) return or_equal ? a.s <= b.s : a.s < b.s;
  double x = js_number(a), y = js_number(b);
  if (std::isnan(x) || std::isnan(y)) return false;
  return or_equal ? x <= y : x < y;
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

// ToIntegerOrInfinity.
double to_integer(const Value& v) {
  double d = js_number(v);
  if (std::isnan(d)) return 0;
  return std::trunc(d);
}

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

bool Evaluator::compare(const Node& n, const Value& ctx, Value& out) {
  if (!n.listed || n.args.size() < 2) return false;
  const bool strict = n.op == Op::kStrictEq || n.op == Op::kStrictNe;
  Value prev;
  if (!eval(n.args[0], ctx, prev)) return false;
  for (size_t i = 1; i < n.args.size(); ++i) {
    Value item, checked;
    if (!eval(n.args[i], ctx, item)) return false;
    if (!compare_check(item, prev, strict, checked)) return false;
    if (!apply_compare(n.op, prev, checked)) {
      out = Value::boolean(false);
      return true;
    }
    prev = std::move(checked);
  }
  out = Value::boolean(true);
  return true;
}

bool Evaluator::arithmetic(const Node& n, const Value& ctx, Value& out) {
  Array a;
  if (!args(n, ctx, a)) return false;
  std::vector<double> x;
  x.reserve(a.size());
  for (const auto& v : a) {
    if ((v.is_array() || v.is_object())) return false;  // precoerceNumber throws on objects
    x.push_back(js_number(v));
  }
  double r = 0;
  switch (n.op) {
    case Op::kAdd:
      for (double d : x) r += d;
      break;
    case Op::kMul:
      r = 1;
      for (double d : x) r *= d;
      break;
    case Op::kSub:
      if (x.empty()) return false;
      r = x.size() == 1 ? -x[0] : x[0];
      for (size_t i = 1; i < x.size(); ++i) r -= x[i];
      break;
    case Op::kDiv:
      if (x.empty()) return false;
      if (x.size() == 1) x.insert(x.begin(), 1.0);
      r = x[0];
      for (size_t i = 1; i < x.size(); ++i) {
        if (x[i] == 0 || std::isnan(x[i])) return false;
        r /= x[i];
      }
      break;
    case Op::kMod:
      if (x.size() < 2) return false;
      r = x[0];
      for (size_t i = 1; i < x.size(); ++i) r = std::fmod(r, x[i]);
      break;
    case Op::kMax:
    case Op::kMin: {
      if (a.empty()) return false;
      for (const auto& v : a)
        if (!v.is_number()) return false;
      r = a[0].n;
      for (const auto& v : a) r = n.op == Op::kMax ? std::max(r, v.n) : std::min(r, v.n);
      out = Value::number(r);
      return true;
    }
    default:
      return false;
  }
  if (std::isnan(r)) return false;
  out = Value::number(r);
  return true;
}

// Values an accumulator may hold: the engine's default maxDepth of 0 refuses arrays or
// objects that hold arrays or objects.
bool shallow(const Value& v) {
  if (v.is_array()) {
    for (const auto& x : v.arr())
      if ((x.is_array() || x.is_object())) return false;
  } else if (v.is_object()) {
    for (const auto& [k, x] : v.obj())
      if ((x.is_array() || x.is_object())) return false;
  }
  return true;
}

bool Evaluator::iterate(const Node& n, const Value& ctx, Value& out) {
  if (!n.listed || n.args.empty()) return false;
  Value sel;
  if (!eval(n.args[0], ctx, sel)) return false;
  if (!truthy(sel) && !sel.is_array() && !sel.is_object()) sel = Value::array({});
  if (!sel.is_array()) return false;  // "abc".map is not a function
  const Array& items = sel.arr();
  static const Node kUndefined;
  const Node& mapper = n.args.size() > 1 ? n.args[1] : kUndefined;
  if (n.op == Op::kReduce) {
    Value acc;
    size_t start = 0;
    if (n.args.size() > 2) {
      if (!eval(n.args[2], ctx, acc) || !shallow(acc)) return false;
    } else {
      if (items.empty()) return false;  // reduce of an empty array with no initial value
      acc = items[0];
      start = 1;
    }
    for (size_t i = start; i < items.size(); ++i) {
      Value scope = Value::object({{"accumulator", acc}, {"current", items[i]}});
      Value next;
      if (!eval(mapper, scope, next) || !shallow(next)) return false;
      acc = std::move(next);
    }
    out = std::move(acc);
    return true;
  }
  if (n.op == Op::kAll && items.empty()) {
    out = Value::boolean(false);
    return true;
  }
  Array mapped;
  for (const auto& item : items) {
    Value r;
    if (!eval(mapper, item, r)) return false;
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
      case Op::kSome:
      case Op::kNone:
        if (truthy(r)) {
          out = Value::boolean(n.op == Op::kSome);
          return true;
        }
        break;
      default:
        return false;
    }
  }
  if (n.op == Op::kMap || n.op == Op::kFilter) out = Value::array(std::move(mapped));
  else out = Value::boolean(n.op != Op::kSome);
  return true;
}

// JavaScript's own truthiness (where [] and {} are true).
bool js_truthy(const Value& v) { return v.is_array() || v.is_object() || truthy(v); }

bool Evaluator::fractional(const Array& a, const Value& ctx, Value& out) {
  out = Value::null();
  if (a.empty()) return true;
  const Value* flagd = ctx.get("$flagd");
  if (!flagd || !js_truthy(*flagd)) return true;
  std::string bucket_by;
  size_t first = 0;
  if (a[0].is_string()) {
    bucket_by = a[0].s;
    first = 1;
  } else {
    const Value* key = ctx.get("targetingKey");
    if (!key || !js_truthy(*key)) return true;
    Value flag_key;
    if (!property(*flagd, "flagKey", flag_key)) flag_key = Value::string("undefined");
    bucket_by = js_string(flag_key) + js_string(*key);
  }
  struct Bucket {
    Value variant;
    uint64_t weight;
  };
  std::vector<Bucket> buckets;
  double total = 0;
  for (size_t i = first; i < a.size(); ++i) {
    const Value& e = a[i];
    if (!e.is_array() || e.arr().empty() || e.arr().size() > 2) return true;
    const Value& v = e.arr()[0];
    if (!v.is_string() && !v.is_number() && !v.is_bool() && !v.is_null()) return true;
    double w = 1;
    if (e.arr().size() == 2) {
      const Value& raw = e.arr()[1];
      if (!raw.is_number() || !std::isfinite(raw.n) || std::trunc(raw.n) != raw.n) return true;
      w = std::max(0.0, raw.n);
    }
    total += w;
    buckets.push_back({v, w > 4294967296.0 ? uint64_t(1) << 32 : static_cast<uint64_t>(w)});
  }
  if (total > 2147483647.0) return true;
  const uint64_t bucket = (static_cast<uint64_t>(flagd_murmur3(bucket_by)) * static_cast<uint64_t>(total)) >> 32;
  uint64_t sum = 0;
  for (const auto& b : buckets) {
    sum += b.weight;
    if (sum > bucket) {
      out = b.variant;
      return true;
    }
  }
  return true;
}

bool Evaluator::eval(const Node& n, const Value& ctx, Value& out) {
  switch (n.op) {
    case Op::kLiteral:
      out = n.literal;
      return true;
    case Op::kInvalid:
      return false;
    case Op::kArray: {
      Array a;
      if (!args(n, ctx, a)) return false;
      out = Value::array(std::move(a));
      return true;
    }
    case Op::kVar: {
      Array a;
      if (!args(n, ctx, a)) return false;
      Value key = a.empty() ? Value::null() : a[0];
      if (key.is_null() || (key.is_string() && key.s.empty())) {
        out = ctx;
        return true;
      }
      Value found;
      if (walk(ctx, split_path(js_string(key)), found) && !found.is_null()) {
        out = std::move(found);
        return true;
      }
      out = a.size() > 1 ? a[1] : Value::null();
      return true;
    }
    case Op::kMissing:
    case Op::kMissingSome: {
      Array a;
      if (!args(n, ctx, a)) return false;
      const Array* keys = &a;
      double need = 0;
      Array options;
      if (n.op == Op::kMissingSome) {
        if (a.size() < 2 || !a[1].is_array()) return false;
        need = js_number(a[0]);
        options = a[1].arr();
        keys = &options;
      }
      Array missing;
      for (const auto& k : *keys) {
        Value found;
        if (!walk(ctx, split_path(js_string(k)), found)) {
          // walk treats a null step as undefined; a present null leaf is found.
          missing.push_back(k);
        }
      }
      if (n.op == Op::kMissingSome && !(static_cast<double>(keys->size() - missing.size()) < need)) missing.clear();
      out = Value::array(std::move(missing));
      return true;
    }
    case Op::kIf: {
      if (!n.listed) return false;
      const auto& a = n.args;
      if (a.empty()) {
        out = Value::null();
        return true;
      }
      if (a.size() == 1) return eval(a[0], ctx, out);
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
    case Op::kNotNot: {
      Value v;
      if (n.listed) {
        if (!n.args.empty() && !eval(n.args[0], ctx, v)) return false;
      } else if (!eval(n.args[0], ctx, v)) {
        return false;
      }
      out = Value::boolean(truthy(v) == (n.op == Op::kNotNot));
      return true;
    }
    case Op::kOr:
    case Op::kAnd: {
      if (!n.listed) return false;
      out = Value::null();
      for (const auto& a : n.args) {
        if (!eval(a, ctx, out)) return false;
        if (truthy(out) == (n.op == Op::kOr)) return true;
      }
      return true;
    }
    case Op::kCoalesce: {
      if (!n.listed) {
        Value v;
        if (!eval(n.args[0], ctx, v) || !v.is_array()) return false;
        out = Value::null();
        for (const auto& x : v.arr())
          if (!x.is_null()) {
            out = x;
            break;
          }
        return true;
      }
      out = Value::null();
      for (const auto& a : n.args) {
        if (!eval(a, ctx, out)) return false;
        if (!out.is_null()) return true;
      }
      return true;
    }
    case Op::kIn: {
      Array a;
      if (!args(n, ctx, a)) return false;
      Value item = a.empty() ? Value::null() : a[0];
      Value hay = a.size() > 1 ? a[1] : Value::null();
      if (!truthy(hay) && !hay.is_array() && !hay.is_object()) {
        out = Value::boolean(false);
        return true;
      }
      if (hay.is_string()) {
        out = Value::boolean(hay.s.find(js_string(item)) != std::string::npos);
        return true;
      }
      if (!hay.is_array()) return false;  // (5).includes is not a function
      bool found = false;
      for (const auto& x : hay.arr())
        if (same_value_zero(x, item)) found = true;
      out = Value::boolean(found);
      return true;
    }
    case Op::kCat: {
      if (!n.listed) {
        Value v;
        if (!eval(n.args[0], ctx, v)) return false;
        if (v.is_string()) {
          out = v;
        } else if (v.is_array()) {
          std::string s;
          for (const auto& x : v.arr())
            if (!x.is_null()) s += js_string(x);
          out = Value::string(std::move(s));
        } else {
          if (v.is_null()) return false;  // null.toString()
          out = Value::string(js_string(v));
        }
        return true;
      }
      std::string s;
      for (const auto& a : n.args) {
        Value v;
        if (!eval(a, ctx, v)) return false;
        if (v.is_null() && folding_) continue;  // the interpreter skips null; compiled code writes "null"
        s += js_string(v);
      }
      out = Value::string(std::move(s));
      return true;
    }
    case Op::kSubstr: {
      Array a;
      if (!args(n, ctx, a)) return false;
      if (a.empty() || !a[0].is_string()) return false;
      std::u16string s = to_utf16(a[0].s);
      const double size = static_cast<double>(s.size());
      auto substr = [&](const std::u16string& str, double from, std::optional<double> len) {
        double sz = static_cast<double>(str.size());
        double start = from < 0 ? std::max(sz + from, 0.0) : std::min(from, sz);
        double count = len ? std::min(std::max(*len, 0.0), sz - start) : sz - start;
        return str.substr(static_cast<size_t>(start), static_cast<size_t>(count));
      };
      double from = a.size() > 1 ? to_integer(a[1]) : 0;
      std::optional<double> end;
      bool end_negative = false;
      if (a.size() > 2) {
        end = to_integer(a[2]);
        end_negative = !a[2].is_null() && js_number(a[2]) < 0;
      }
      (void)size;
      std::u16string r;
      if (end_negative) {
        std::u16string rest = substr(s, from, std::nullopt);
        r = substr(rest, 0, static_cast<double>(rest.size()) + *end);
      } else {
        r = substr(s, from, end);
      }
      out = Value::string(from_utf16(r));
      return true;
    }
    case Op::kMerge: {
      Array a;
      if (!args(n, ctx, a)) return false;
      Array r;
      for (auto& x : a) {
        if (x.is_array()) r.insert(r.end(), x.arr().begin(), x.arr().end());
        else r.push_back(std::move(x));
      }
      out = Value::array(std::move(r));
      return true;
    }
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
    case Op::kFractional: {
      Array a;
      if (!args(n, ctx, a)) return false;
      return fractional(a, ctx, out);
    }
    case Op::kSemVer: {
      Array a;
      if (!args(n, ctx, a)) return false;
      out = Value::null();
      if (a.size() != 3) return true;
      auto v1 = parse_semver(js_string(a[0]));
      auto v2 = parse_semver(js_string(a[2]));
      if (!v1 || !v2) return true;
      const std::string op = js_string(a[1]);
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
    case Op::kStartsWith:
    case Op::kEndsWith: {
      Array a;
      if (!args(n, ctx, a)) return false;
      out = Value::null();
      if (a.size() != 2 || !a[0].is_string() || !a[1].is_string()) return true;
      const std::string& s = a[0].s;
      const std::string& p = a[1].s;
      bool r = n.op == Op::kStartsWith ? s.compare(0, p.size(), p) == 0 && s.size() >= p.size()
                                        : s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
      out = Value::boolean(r);
      return true;
    }
  }
  return false;
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

bool build(const Value& rule, Node& out, std::string& error, int depth) {
  if (depth > 64) {
    error = at(rule) + "rule nested deeper than 64 levels";
    return false;
  }
  if (rule.is_array()) {
    out.op = Op::kArray;
    out.listed = true;
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
      if (it->second.lazy && out.op != Op::kCoalesce) out.op = Op::kInvalid;  // the engine needs a list here
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
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
  if (s.size() > 256) return std::nullopt;
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
  // imurmurhash takes each UTF-16 code unit's low byte...; for code units above 0xFF it mixes
  // the high byte in as well. Reproduced exactly, including its skipping of a negative tail.
  std::u16string key = to_utf16(text);
  const uint32_t c1 = 0xcc9e2d51, c2 = 0x1b873593;
  uint32_t h1 = 0;
  const size_t len = key.size();
  size_t i = 0;
  const size_t rem = len & 3;
  const size_t body = len - rem;
  while (i < body) {
    uint32_t k1 = (key[i] & 0xffffu) ^ ((key[i + 1] & 0xffffu) << 8) ^ ((key[i + 2] & 0xffffu) << 16);
    uint32_t top = key[i + 3];
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
      k1 ^= (key[i + 2] & 0xffffu) << 16;
      [[fallthrough]];
    case 2:
      k1 ^= (key[i + 1] & 0xffffu) << 8;
      [[fallthrough]];
    case 1:
      k1 ^= (key[i] & 0xffffu);
  }
  if (static_cast<int32_t>(k1) > 0) {  // `if (k1 > 0)` on a signed 32-bit value
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
  auto num = [](std::string_view x, uint64_t& out) {
    out = 0;
    for (char c : x) out = out * 10 + static_cast<uint64_t>(c - '0');
    return out <= 9007199254740991ULL;
  };
  SemVer v;
  if (!num(a, v.major) || (dot != std::string::npos && !num(b, v.minor))) return std::nullopt;
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
