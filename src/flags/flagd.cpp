#include "flags/flagd.hpp"

#include <set>

#include "core/error.hpp"

namespace sluice::flags {

namespace {

std::string at(const Value& v) {
  std::string w = v.where();
  return w.empty() ? "" : w + ": ";
}

std::string_view type_of(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kBool:
      return "boolean";
    case Value::Kind::kNumber:
      return "number";
    case Value::Kind::kString:
      return "string";
    case Value::Kind::kArray:
    case Value::Kind::kObject:
      return "object";
    default:
      return "null";
  }
}

// Replaces every {"$ref": NAME} by $evaluators[NAME], recursively; a cycle is an error.
bool resolve_refs(const Value& in, const Value& evaluators, std::vector<std::string>& stack, Value& out,
                  std::string& error) {
  if (in.is_array()) {
    Array a;
    for (const auto& x : in.arr()) {
      Value r;
      if (!resolve_refs(x, evaluators, stack, r, error)) return false;
      a.push_back(std::move(r));
    }
    out = Value::array(std::move(a));
    out.line = in.line, out.column = in.column;
    return true;
  }
  if (!in.is_object()) {
    out = in;
    return true;
  }
  if (in.obj().size() == 1 && in.obj()[0].first == "$ref") {
    const Value& name = in.obj()[0].second;
    if (!name.is_string()) {
      error = at(name) + "$ref takes the name of an evaluator (a string)";
      return false;
    }
    const Value* target = evaluators.get(name.s);
    if (!target) {
      error = at(in) + "$ref to '" + name.s + "', which $evaluators does not define";
      return false;
    }
    for (const auto& s : stack)
      if (s == name.s) {
        std::string chain;
        for (const auto& c : stack) chain += c + " -> ";
        error = at(in) + "a cycle of $refs: " + chain + name.s;
        return false;
      }
    stack.push_back(name.s);
    bool ok = resolve_refs(*target, evaluators, stack, out, error);
    stack.pop_back();
    return ok;
  }
  Object o;
  for (const auto& [k, v] : in.obj()) {
    Value r;
    if (!resolve_refs(v, evaluators, stack, r, error)) return false;
    o.emplace_back(k, std::move(r));
  }
  out = Value::object(std::move(o));
  out.line = in.line, out.column = in.column;
  return true;
}

bool scalar_metadata(const Value& m, const std::string& where, std::string& error) {
  if (!m.is_object()) {
    error = at(m) + where + ": metadata is an object";
    return false;
  }
  for (const auto& [k, v] : m.obj())
    if (!v.is_string() && !v.is_number() && !v.is_bool()) {
      error = at(v) + where + ": metadata." + k + " must be a string, number or boolean";
      return false;
    }
  return true;
}

// JSON.parse(JSON.stringify(x)) for what evaluation returns: drops file positions.
Value plain(const Value& v) {
  Value out = v;
  out.line = out.column = 0;
  return out;
}

// The context a rule sees: the caller's, with flagd's own $flagd (flagKey, timestamp) in
// place of any the caller sent. Evaluating several flags for one context (a flag set,
// OFREP's bulk evaluation) copies the context once per thread and then only rewrites $flagd,
// when nothing from the previous evaluation still holds the copy.
Value rule_context(const Value& context, const std::string& flag_key, int64_t now_s) {
  thread_local std::shared_ptr<const Object> source;  // the caller's object the copy was made from
  thread_local std::shared_ptr<Object> copy, flagd;
  auto object = [](std::shared_ptr<Object> o) {
    Value v;
    v.kind = Value::Kind::kObject;
    v.o = std::move(o);
    return v;
  };
  const bool ours = copy && copy.use_count() == 1 && flagd.use_count() == 2;  // nothing else holds them
  if (!ours) flagd = std::make_shared<Object>(Object{{"flagKey", Value::string("")}, {"timestamp", Value::number(0)}});
  (*flagd)[0].second.s = flag_key;
  (*flagd)[1].second.n = static_cast<double>(now_s);
  if (!ours || !context.o || context.o != source) {
    copy = std::make_shared<Object>();
    copy->reserve(context.obj().size() + 1);
    for (const auto& m : context.obj())
      if (m.first != "$flagd") copy->push_back(m);
    copy->emplace_back("$flagd", object(flagd));
    source = context.o;
  }
  return object(copy);
}

}  // namespace

std::string_view reason_name(Reason r) {
  switch (r) {
    case Reason::kStatic:
      return "STATIC";
    case Reason::kTargetingMatch:
      return "TARGETING_MATCH";
    case Reason::kDefault:
      return "DEFAULT";
    case Reason::kDisabled:
      return "DISABLED";
    case Reason::kError:
      return "ERROR";
  }
  return "UNKNOWN";
}

std::string_view error_name(ErrorCode e) {
  switch (e) {
    case ErrorCode::kNone:
      return "";
    case ErrorCode::kFlagNotFound:
      return "FLAG_NOT_FOUND";
    case ErrorCode::kParseError:
      return "PARSE_ERROR";
    case ErrorCode::kTypeMismatch:
      return "TYPE_MISMATCH";
    case ErrorCode::kGeneral:
      return "GENERAL";
    case ErrorCode::kInvalidContext:
      return "INVALID_CONTEXT";
  }
  return "GENERAL";
}

const Value* Flag::variant(std::string_view name) const {
  for (const auto& [k, v] : variants)
    if (k == name) return &v;
  return nullptr;
}

std::string Flag::json() const {
  std::string out = "{\"state\":";
  out += enabled ? "\"ENABLED\"" : "\"DISABLED\"";
  out += ",\"variants\":";
  append_json(out, Value::object(variants));
  out += ",\"defaultVariant\":";
  if (default_variant) append_json_string(out, *default_variant);
  else out += "null";
  if (!targeting.is_null()) {
    out += ",\"targeting\":";
    append_json(out, targeting);
  }
  if (!metadata.obj().empty()) {
    out += ",\"metadata\":";
    append_json(out, metadata);
  }
  return out + "}";
}

std::optional<Flag> make_flag(std::string key, const Value& def, std::string& error) {
  const std::string where = "flags." + key;
  if (key.empty() || key.size() > kMaxFlagKeyBytes) {
    error = at(def) + "a flag key is 1 to 256 bytes";
    return std::nullopt;
  }
  if (!def.is_object()) {
    error = at(def) + where + ": a flag is an object (state, variants, defaultVariant, targeting, metadata)";
    return std::nullopt;
  }
  Flag f;
  f.key = std::move(key);
  f.metadata = Value::object({});
  bool has_state = false, has_variants = false;
  for (const auto& [k, v] : def.obj()) {
    if (k == "state") {
      if (!v.is_string() || (v.s != "ENABLED" && v.s != "DISABLED")) {
        error = at(v) + where + ": state is \"ENABLED\" or \"DISABLED\"";
        return std::nullopt;
      }
      f.enabled = v.s == "ENABLED";
      has_state = true;
    } else if (k == "variants") {
      if (!v.is_object() || v.obj().empty()) {
        error = at(v) + where + ": variants is a non-empty object of name: value";
        return std::nullopt;
      }
      std::string_view kind;
      for (const auto& [name, value] : v.obj()) {
        std::string_view t = type_of(value);
        if (t == "null") {
          error = at(value) + where + ": variant '" + name + "' has no value";
          return std::nullopt;
        }
        if (!kind.empty() && t != kind) {
          error = at(value) + where + ": variant '" + name + "' is a " + std::string(t) + ", the others are " +
                  std::string(kind) + "s (a flag has one type)";
          return std::nullopt;
        }
        kind = t;
        f.variants.emplace_back(name, plain(value));
      }
      has_variants = true;
    } else if (k == "defaultVariant") {
      if (v.is_null()) continue;
      if (!v.is_string()) {
        error = at(v) + where + ": defaultVariant names a variant (a string) or is null";
        return std::nullopt;
      }
      if (!v.s.empty()) f.default_variant = v.s;
    } else if (k == "targeting") {
      if (!v.is_object()) {
        error = at(v) + where + ": targeting is a JsonLogic object";
        return std::nullopt;
      }
      if (!v.obj().empty()) {
        std::string why;
        f.logic = Logic::compile(v, why);
        if (!f.logic) {
          error = why + " (in " + where + ".targeting)";
          return std::nullopt;
        }
        f.targeting = plain(v);
      }
    } else if (k == "metadata") {
      if (!scalar_metadata(v, where, error)) return std::nullopt;
      f.metadata = plain(v);
    } else {
      error = at(v) + where + ": unknown key '" + k + "' (state, variants, defaultVariant, targeting, metadata)";
      return std::nullopt;
    }
  }
  if (!has_state) {
    error = at(def) + where + ": state is required (\"ENABLED\" or \"DISABLED\")";
    return std::nullopt;
  }
  if (!has_variants) {
    error = at(def) + where + ": variants are required";
    return std::nullopt;
  }
  if (f.default_variant && !f.variant(*f.default_variant)) {
    error = at(*def.get("defaultVariant")) + where + ": defaultVariant '" + *f.default_variant +
            "' is not one of its variants";
    return std::nullopt;
  }
  return f;
}

std::optional<FlagFile> parse_flag_file(std::string_view text, std::string& error) {
  if (text.size() > kMaxFlagFileBytes) {
    error = "the flag file is " + std::to_string(text.size()) + " bytes; at most " +
            std::to_string(kMaxFlagFileBytes) + " are read";
    return std::nullopt;
  }
  auto doc = parse_document(text, error);
  if (!doc) return std::nullopt;
  if (!doc->is_object()) {
    error = at(*doc) + "a flag file is an object with \"flags\"";
    return std::nullopt;
  }
  FlagFile file;
  file.metadata = Value::object({});
  const Value* flags = doc->get("flags");
  if (!flags || !flags->is_object()) {
    error = at(*doc) + "a flag file has \"flags\": an object of flag key: definition";
    return std::nullopt;
  }
  Value evaluators = Value::object({});
  for (const auto& [k, v] : doc->obj()) {
    if (k == "$evaluators") {
      if (!v.is_object()) {
        error = at(v) + "$evaluators is an object of name: rule";
        return std::nullopt;
      }
      evaluators = v;
    } else if (k == "metadata") {
      if (!scalar_metadata(v, "the flag set", error)) return std::nullopt;
      file.metadata = plain(v);
    } else if (k != "flags" && k != "$schema") {
      error = at(v) + "unknown key '" + k + "' (flags, $evaluators, metadata, $schema)";
      return std::nullopt;
    }
  }
  std::set<std::string> seen;
  for (const auto& [key, def] : flags->obj()) {
    std::vector<std::string> stack;
    Value resolved;
    if (!resolve_refs(def, evaluators, stack, resolved, error)) return std::nullopt;
    auto f = make_flag(key, resolved, error);
    if (!f) return std::nullopt;
    file.flags.push_back(std::move(*f));
  }
  return file;
}

std::optional<Flag> parse_flag(std::string_view key, std::string_view definition, std::string& error) {
  auto doc = parse_document(definition, error);
  if (!doc) return std::nullopt;
  std::vector<std::string> stack;
  Value resolved;
  if (!resolve_refs(*doc, Value::object({}), stack, resolved, error)) return std::nullopt;
  return make_flag(std::string(key), resolved, error);
}

Evaluation evaluate(const Flag& flag, const Value& context, int64_t now_s) {
  Evaluation e;
  e.flag = &flag;
  if (!flag.enabled) {
    e.reason = Reason::kDisabled;
    return e;
  }
  std::optional<std::string> variant;
  if (!flag.logic) {
    variant = flag.default_variant;
    e.reason = Reason::kStatic;
  } else {
    Value result;
    if (!flag.logic->evaluate(rule_context(context, flag.key, now_s), result)) {
      e.reason = Reason::kError;
      e.error = ErrorCode::kGeneral;
      e.message = "Error evaluating targeting rule for flag '" + flag.key + "'";
      return e;
    }
    if (result.is_null()) {
      variant = flag.default_variant;
      e.reason = Reason::kDefault;
    } else {
      variant = js_string(result);
      e.reason = Reason::kTargetingMatch;
    }
  }
  if (!variant) {
    e.reason = Reason::kDefault;  // no default variant: the caller's default applies
    return e;
  }
  const Value* value = flag.variant(*variant);
  if (!value) {
    e.reason = Reason::kError;
    e.error = ErrorCode::kGeneral;
    e.message = "Variant '" + *variant + "' not found in flag with key '" + flag.key + "'";
    return e;
  }
  e.has_value = true;
  e.value = *value;
  e.variant = std::move(*variant);
  return e;
}

std::string flag_file_json(const std::vector<const Flag*>& flags, const Value& metadata) {
  std::string out = "{\"$schema\":\"https://flagd.dev/schema/v0/flags.json\"";
  if (!metadata.obj().empty()) {
    out += ",\"metadata\":";
    append_json(out, metadata);
  }
  out += ",\"flags\":{";
  bool first = true;
  for (const Flag* f : flags) {
    if (!first) out += ',';
    first = false;
    append_json_string(out, f->key);
    out += ':';
    out += f->json();
  }
  return out + "}}";
}

}  // namespace sluice::flags
