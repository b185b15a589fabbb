#include "eval/suite.hpp"

#include <simdjson.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <stdexcept>

#include "config/yaml_keys.hpp"
#include "core/crypto.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "core/strings.hpp"
#include "eval/js_text.hpp"
#include "eval/yaml_json.hpp"
#include "guard/pii.hpp"
#include "quality/text.hpp"

namespace sluice::eval {

namespace {

namespace fs = std::filesystem;

// Errors inside the loader are thrown (configuration time only) and caught in load_suite.
struct SuiteError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The JSON value `text` holds: nullopt when it is not JSON, else whether it is an array.
std::optional<bool> json_array(std::string_view text) {
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  if (parser.parse(text.data(), text.size()).get(e)) return std::nullopt;
  return e.is_array();
}

const std::set<std::string>& known_types() {
  static const std::set<std::string> t = {
      "equals",       "contains",      "icontains",    "regex",         "starts-with", "contains-any",
      "contains-all", "icontains-any", "icontains-all", "is-json",      "contains-json", "latency",
      "cost",         "llm-rubric",    "refusal",      "is-refusal",    "equals-number", "pii"};
  return t;
}

using Row = std::vector<std::pair<std::string, std::string>>;  // column -> value

class Loader {
 public:
  Loader(std::string path, Suite& s) : path_(std::move(path)), s_(s) {
    dir_ = fs::path(path_).parent_path();
  }

  std::string at(const YAML::Node& n, const std::string& file = "") const {
    const std::string& f = file.empty() ? path_ : file;
    auto m = n.Mark();
    if (m.is_null() || m.line < 0) return f;
    return f + ":" + std::to_string(m.line + 1);
  }
  [[noreturn]] void fail(const YAML::Node& n, const std::string& msg, const std::string& file = "") const {
    throw SuiteError(at(n, file) + ": " + msg);
  }

  std::string resolve(const std::string& p) const {
    std::string q = starts_with(p, "file://") ? p.substr(7) : p;
    fs::path fp(q);
    if (fp.is_relative()) fp = dir_ / fp;
    return fp.lexically_normal().string();
  }

  std::string read_bounded(const std::string& file, size_t limit, const YAML::Node& where) const {
    std::string err;
    auto content = read_file_limited(file, limit, err);
    if (!content) fail(where, file + ": " + err);
    return std::move(*content);
  }

  std::string scalar(const YAML::Node& n, const char* what, const std::string& file = "") const {
    if (!n.IsScalar()) fail(n, std::string(what) + " must be a string", file);
    return n.Scalar();
  }
  double number(const YAML::Node& n, const char* what, const std::string& file = "") const {
    if (!n.IsScalar()) fail(n, std::string(what) + " must be a number", file);
    std::string v(trim(n.Scalar()));
    bool pct = !v.empty() && v.back() == '%';
    if (pct) v.pop_back();
    char* end = nullptr;
    double x = std::strtod(v.c_str(), &end);
    if (v.empty() || end != v.c_str() + v.size() || !std::isfinite(x))
      fail(n, std::string(what) + " must be a number (or a percentage like \"2%\")", file);
    return pct ? x / 100 : x;
  }

  void check_keys(const YAML::Node& n, std::initializer_list<const char*> keys, const char* what,
                  const std::string& file = "") const {
    config::for_each_unknown_key(n, keys, what,
                                 [&](const YAML::Node& at, const std::string& msg) { fail(at, msg, file); });
  }

  // ---- {{variables}}

  // Renders `text` with `vars` through render_vars (the substitution the suite prompt uses),
  // which is what promptfoo's Nunjucks does for plain variables. What Nunjucks would evaluate
  // and sluice cannot ({% tags %}, {# comments #}, filters, expressions) and a variable the
  // case lacks (Nunjucks renders it empty) are refused: sluice would otherwise send or check
  // something other than promptfoo does. Errors read "WHERE: WHAT uses ...TAIL".
  static std::string render_checked(std::string_view text, const Row& vars, const std::string& where,
                                    const std::string& what, const std::string& tail = "") {
    if (text.find("{%") != std::string_view::npos || text.find("{#") != std::string_view::npos)
      throw SuiteError(where + ": " + what + " uses Nunjucks tags ({% ... %} or {# ... #}): sluice substitutes " +
                       "{{variables}} only" + tail);
    std::string missing;
    std::string out = render_vars(text, vars, &missing);
    if (!missing.empty()) {
      static const std::regex plain("[A-Za-z_$][A-Za-z0-9_$.:-]*");
      throw SuiteError(where + ": " + what + " uses '{{" + missing + "}}' but " +
                       (std::regex_match(missing, plain)
                            ? std::string("the case has no such var")
                            : std::string("sluice substitutes {{variables}} only (no Nunjucks filters or expressions)")) +
                       tail);
    }
    return out;
  }

  // A scalar var or value as promptfoo sees it (`1.50` is the number 1.5 to it).
  std::string js_text(const YAML::Node& v, const std::string& file) const {
    std::string why;
    auto text = yaml_scalar_text(v, why);
    if (!text) fail(v, why, file);
    return *text;
  }

  static bool templated(std::string_view v) {
    return v.find("{{") != std::string_view::npos || v.find("{%") != std::string_view::npos ||
           v.find("{#") != std::string_view::npos;
  }

  // promptfoo renders a var's own {{...}} with the other vars before the prompt; sluice
  // substitutes a var's value as it is.
  static std::string template_var(const std::string& name) {
    return "var '" + name + "' holds a template ({{...}}, {% %} or {# #}): promptfoo renders it with the other " +
           "vars, sluice does not (write the value out)";
  }

  // ---- assertions

  // Parses one assertion as written. Its string values may hold {{vars}}: they are rendered
  // per case, and the checks that depend on the value run then (render_assertion).
  Assertion assertion(const YAML::Node& n, const std::string& file) const {
    Assertion a;
    a.origin = at(n, file);
    if (!n.IsMap()) fail(n, "an assertion must be a mapping with a 'type'", file);
    check_keys(n, {"type", "value", "threshold", "weight", "provider", "metric", "transform", "description"},
               "an assertion", file);
    if (n["transform"]) fail(n["transform"], "'transform' (JavaScript) is not supported by sluice", file);
    if (!n["type"]) fail(n, "an assertion needs a 'type'", file);
    std::string type = scalar(n["type"], "'type'", file);
    if (starts_with(type, "not-")) {
      a.negate = true;
      type = type.substr(4);
    }
    if (!known_types().count(type)) {
      std::string list;
      for (const auto& t : known_types()) list += (list.empty() ? "" : ", ") + t;
      fail(n["type"], "unsupported assertion type '" + type + "' (sluice supports: " + list + ", each also with 'not-')",
           file);
    }
    a.type = type;
    // promptfoo loads a file:// value (or runs it, for .js/.py/.rb) and calls a package:
    // value: sluice takes values as written only.
    auto plain = [&](const YAML::Node& v) {
      scalar(v, "each listed value", file);
      std::string s = js_text(v, file);
      if (starts_with(s, "file://") || starts_with(s, "package:"))
        fail(v, "a 'file://' or 'package:' assertion value (a file or code promptfoo loads) is not supported by "
                "sluice: write the value inline", file);
      return s;
    };
    YAML::Node v = n["value"];
    if (v) {
      if (v.IsScalar()) {
        a.value = plain(v);
      } else if (v.IsSequence()) {
        for (const auto& item : v) a.values.push_back(plain(item));
      } else if (v.IsMap()) {
        a.json_value = yaml_to_json(v);  // promptfoo renders no vars into an object value
      }
    }
    if (n["threshold"]) a.threshold = number(n["threshold"], "'threshold'", file);
    if (n["weight"]) {
      a.weight = number(n["weight"], "'weight'", file);
      if (a.weight < 0) fail(n["weight"], "'weight' must be >= 0", file);
    }
    if (n["provider"]) {
      if (!n["provider"].IsScalar())
        fail(n["provider"], "'provider' must name a sluice route or release (the judge served through sluice)", file);
      a.judge = judge_route(n["provider"].Scalar());
    }

    // Per-type checks, so a broken suite fails before anything is sent.
    if (type == "equals" || type == "contains" || type == "icontains" || type == "regex" || type == "starts-with" ||
        type == "llm-rubric" || type == "equals-number") {
      if (a.value.empty() && a.values.empty() && a.json_value.empty())
        fail(n, "assertion '" + type + "' needs a 'value'", file);
      if (type == "equals" && !a.values.empty())
        fail(n["value"], "assertion 'equals' takes a string or an object", file);
      if (type != "equals" && (!a.values.empty() || !a.json_value.empty()))
        fail(n["value"], "assertion '" + type + "' takes a single string value", file);
    }
    if (is_contains_list(type) && a.value.empty() && a.values.empty())
      fail(n, "assertion '" + type + "' needs a list of values", file);
    if (type == "latency" || type == "cost") {
      if (!a.threshold) fail(n, "assertion '" + type + "' needs a 'threshold' (" +
                                   (type == "latency" ? "milliseconds" : "dollars per call") + ")", file);
    }
    if (type == "llm-rubric" && a.threshold && (*a.threshold < 0 || *a.threshold > 1))
      fail(n["threshold"], "llm-rubric threshold must be between 0 and 1", file);
    // A value without {{vars}} is checked now, with the line of the value.
    if (!templated(a.value)) {
      try {
        check_value(a);
      } catch (const SuiteError& e) {
        fail(v ? v : n, e.what(), file);
      }
    }
    return a;
  }

  // A grader named as promptfoo names its OpenAI provider ("openai:chat:judge", pointed at
  // sluice) is sluice's route "judge".
  static std::string judge_route(std::string p) {
    for (const char* prefix : {"openai:chat:", "openai:"})
      if (starts_with(p, prefix) && p.size() > std::strlen(prefix)) return p.substr(std::strlen(prefix));
    return p;
  }

  static bool is_contains_list(const std::string& type) {
    return type == "contains-any" || type == "contains-all" || type == "icontains-any" || type == "icontains-all";
  }

  // The checks that depend on a string value (after rendering). Throws the bare message.
  static void check_value(Assertion& a) {
    const std::string& type = a.type;
    if (is_contains_list(type) && a.values.empty()) {
      // promptfoo also accepts a comma-separated string ("a, \"b, c\"": quotes keep commas).
      std::string err;
      a.values = comma_values(a.value, err);
      if (!err.empty()) throw SuiteError("assertion '" + type + "': " + err);
      a.value.clear();
      if (a.values.empty()) throw SuiteError("assertion '" + type + "' needs a list of values");
    }
    if ((type == "contains" || type == "icontains" || type == "starts-with" || type == "regex" ||
         type == "llm-rubric" || type == "equals-number") && a.value.empty())
      throw SuiteError("assertion '" + type + "' has an empty value");
    if (type == "regex") {
      if (a.value.size() > 4096) throw SuiteError("regex longer than 4096 bytes");
      try {
        std::wregex re(js_widen(a.value), std::regex::ECMAScript);  // as assertions.cpp matches it
      } catch (const std::regex_error& e) {
        throw SuiteError("invalid regex: " + std::string(e.what()));
      }
    }
    if ((type == "is-json" || type == "contains-json") && !a.value.empty()) {  // a schema given as a JSON string
      auto chk = quality::check_json(a.value);
      if (!chk.valid) throw SuiteError("the JSON schema is not JSON: " + chk.error);
      a.json_value = a.value;
      a.value.clear();
    }
    if ((type == "is-json" || type == "contains-json") && !a.json_value.empty()) check_schema_keywords(a.json_value);
    if (type == "equals-number" && !quality::final_number(a.value))
      throw SuiteError("equals-number: no number in the value '" + a.value + "'");
    if (type == "pii") {  // the kinds to look for, as labels (none: every kind)
      std::vector<std::string> kinds = a.values;
      if (!a.value.empty()) {
        std::string err;
        kinds = comma_values(a.value, err);
        if (!err.empty()) throw SuiteError("assertion 'pii': " + err);
      }
      a.value.clear();
      a.values.clear();
      for (const auto& k : kinds) {
        guard::PiiKind kind;
        if (!guard::parse_pii_kind(trim(k), kind))
          throw SuiteError("assertion 'pii': unknown kind '" + k +
                           "' (email, phone, card, iban, national_id, ip, secret)");
        a.values.emplace_back(guard::pii_label(kind));
      }
    }
  }

  // A JSON Schema may only use the keywords quality::check_json checks (promptfoo's ajv checks
  // every keyword: one sluice skipped would pass what promptfoo fails) and annotations.
  static void check_schema_keywords(const std::string& schema) {
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    if (parser.parse(schema).get(root)) return;  // not JSON: reported by check_json
    static const std::set<std::string_view> checked = {
        "type", "properties", "required", "additionalProperties", "items", "prefixItems", "enum", "const",
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems",
        "maxItems", "anyOf", "oneOf", "allOf", "$ref", "$defs", "definitions",
        // annotations: no effect on validity
        "$schema", "$id", "$comment", "title", "description", "default", "examples", "deprecated", "readOnly",
        "writeOnly"};
    std::function<void(simdjson::dom::element, const std::string&, int)> walk = [&](simdjson::dom::element s,
                                                                                   const std::string& where, int depth) {
      simdjson::dom::object obj;
      if (depth > 64 || s.get_object().get(obj)) return;  // true/false schemas, or not a schema
      for (auto field : obj) {
        std::string_view k = field.key;
        if (!checked.count(k))
          throw SuiteError("the JSON schema uses '" + std::string(k) + "' at " + (where.empty() ? "/" : where) +
                           ", which sluice does not check (promptfoo does): remove it or check it another way");
        std::string at = where + "/" + std::string(k);
        simdjson::dom::array arr;
        simdjson::dom::object sub;
        if (k == "properties" || k == "$defs" || k == "definitions") {
          if (!field.value.get_object().get(sub))
            for (auto p : sub) walk(p.value, at + "/" + std::string(p.key), depth + 1);
        } else if (k == "items" || k == "additionalProperties") {
          if (!field.value.get_array().get(arr)) {
            size_t i = 0;
            for (auto e : arr) walk(e, at + "/" + std::to_string(i++), depth + 1);
          } else {
            walk(field.value, at, depth + 1);
          }
        } else if (k == "prefixItems" || k == "anyOf" || k == "oneOf" || k == "allOf") {
          if (!field.value.get_array().get(arr)) {
            size_t i = 0;
            for (auto e : arr) walk(e, at + "/" + std::to_string(i++), depth + 1);
          }
        }
      }
    };
    walk(root, "", 0);
  }

  // promptfoo's split of a contains-any/-all string: commas separate, whitespace around a
  // value is dropped, a "quoted value" keeps its commas (\" and "" escape a quote).
  static std::vector<std::string> comma_values(std::string_view v, std::string& err) {
    std::vector<std::string> out;
    auto space = [](char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v'; };
    size_t i = 0;
    while (i < v.size()) {
      while (i < v.size() && (space(v[i]) || v[i] == ',')) ++i;
      if (i >= v.size()) break;
      std::string field;
      if (v[i] == '"') {
        bool closed = false;
        for (++i; i < v.size();) {
          if (v[i] == '\\' && i + 1 < v.size() && (v[i + 1] == '"' || v[i + 1] == '\\')) {
            field += v[i + 1], i += 2;
          } else if (v[i] == '"' && i + 1 < v.size() && v[i + 1] == '"') {
            field += '"', i += 2;
          } else if (v[i] == '"') {
            ++i, closed = true;
            break;
          } else {
            field += v[i++];
          }
        }
        if (!closed) return err = "unterminated quoted value", out;
        while (i < v.size() && space(v[i])) ++i;
        if (i < v.size() && v[i] != ',') return err = "expected a comma after a quoted value", out;
      } else {
        size_t start = i;
        while (i < v.size() && v[i] != ',') ++i;
        field = std::string(trim(v.substr(start, i - start)));
      }
      out.push_back(std::move(field));
    }
    return out;
  }

  std::vector<Assertion> assertions(const YAML::Node& n, const std::string& file) const {
    std::vector<Assertion> out;
    if (!n) return out;
    if (!n.IsSequence()) fail(n, "'assert' must be a list", file);
    if (n.size() > kMaxAssertsPerCase) fail(n, "more than " + std::to_string(kMaxAssertsPerCase) + " assertions", file);
    for (const auto& a : n) out.push_back(assertion(a, file));
    return out;
  }

  // One assertion as a case checks it: its string values rendered with the case's vars, as
  // promptfoo renders assertion values with the test's vars, then checked.
  static Assertion render_assertion(Assertion a, const Row& vars, const std::string& case_origin) {
    bool any = templated(a.value);
    for (const auto& v : a.values) any = any || templated(v);
    if (!any) return a;
    std::string tail = case_origin != a.origin ? " (case " + case_origin + ")" : "";
    a.value = render_checked(a.value, vars, a.origin, "the assertion value", tail);
    for (auto& v : a.values) v = render_checked(v, vars, a.origin, "the assertion value", tail);
    try {
      check_value(a);
    } catch (const SuiteError& e) {
      throw SuiteError(a.origin + ": " + e.what() + " (after rendering the vars" +
                       (tail.empty() ? "" : " of case " + case_origin) + ")");
    }
    return a;
  }

  // ---- vars and messages

  // `maps` collects the vars given as mappings (sent as JSON; see check_mapping_vars).
  void vars_into(const YAML::Node& n, std::vector<std::pair<std::string, std::string>>& vars,
                 const std::string& file, std::set<std::string>& maps) const {
    if (!n) return;
    if (!n.IsMap()) fail(n, "'vars' must be a mapping of variable names to values", file);
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string k = it->first.Scalar();
      YAML::Node v = it->second;  // the iterator hands out a temporary: copy it
      std::string val;
      if (v.IsScalar()) {
        val = js_text(v, file);
      } else if (v.IsSequence()) {
        fail(v, "var '" + k + "' is a list: promptfoo expands lists into several cases, sluice does not (write one "
                "case per value)", file);
      } else if (v.IsMap()) {
        val = yaml_to_json(v);
      }
      if (v.IsMap())
        maps.insert(k);
      else
        maps.erase(k);
      if (starts_with(val, "file://")) fail(v, "file:// vars are not supported (inline the value)", file);
      if (templated(val)) fail(v, template_var(k), file);
      if (val.size() > kMaxVarBytes) fail(v, "var '" + k + "' is larger than 256 KiB", file);
      set_var(vars, k, std::move(val));
    }
  }

  static void set_var(std::vector<std::pair<std::string, std::string>>& vars, const std::string& k, std::string v) {
    for (auto& [ek, ev] : vars) {
      if (ek == k) {
        ev = std::move(v);
        return;
      }
    }
    vars.emplace_back(k, std::move(v));
  }

  std::string messages(const YAML::Node& n, const std::string& file) const {
    if (!n.IsSequence() || n.size() == 0) fail(n, "'messages' must be a non-empty list of {role, content}", file);
    for (const auto& m : n) {
      if (!m.IsMap() || !m["role"] || !m["content"]) fail(m, "each message needs 'role' and 'content'", file);
    }
    return yaml_to_json(n);
  }

  // ---- test cases (promptfoo shape)

  // A test's `options` (promptfoo merges defaultTest.options under each test's own).
  struct Options {
    std::string prefix, suffix;  // around the suite prompt; "" = the default's (promptfoo's `||`)
    std::string judge;           // `provider`: grades the case's llm-rubric assertions
    bool no_default_asserts = false;
  };

  struct Defaults {
    Row vars;
    std::set<std::string> maps;  // vars given as mappings
    std::vector<Assertion> asserts;  // as written: rendered per case
    std::optional<double> threshold;
    std::string category;
    Options options;
  } defaults_;

  // promptfoo's test options: the ones sluice honours, the ones that cannot change a verdict
  // here (validated, no effect) and the rest refused with the line.
  Options options(const YAML::Node& n, const std::string& file, bool in_default) const {
    Options o;
    if (!n) return o;
    if (!n.IsMap()) fail(n, "'options' must be a mapping", file);
    static const std::pair<const char*, const char*> refused[] = {
        {"transform", "JavaScript run on the output"},
        {"postprocess", "JavaScript run on the output (promptfoo's old name for transform)"},
        {"transformVars", "JavaScript run on the vars"},
        {"storeOutputAs", "chains a case's output into later cases' vars; sluice's cases are independent"},
        {"rubricPrompt", "replaces the grading prompt; sluice's judge always gets promptfoo's default one"},
        {"factuality", "configures the 'factuality' assertion, which sluice does not have"},
        {"repeat", "use --repeat N on the command line (it applies to every case)"},
    };
    for (auto it = n.begin(); it != n.end(); ++it)
      for (const auto& [key, why] : refused)
        if (it->first.Scalar() == key)
          fail(it->first, std::string("options.") + key + " is not supported by sluice: " + why, file);
    check_keys(n,
               {"prefix", "suffix", "provider", "disableDefaultAsserts", "disableVarExpansion", "disableConversationVar",
                "runSerially"},
               in_default ? "'defaultTest.options'" : "a test's 'options'", file);
    if (n["prefix"]) o.prefix = scalar(n["prefix"], "'options.prefix'", file);
    if (n["suffix"]) o.suffix = scalar(n["suffix"], "'options.suffix'", file);
    if (n["provider"]) {
      if (!n["provider"].IsScalar())
        fail(n["provider"], "'options.provider' must name a sluice route or release (the judge of llm-rubric, "
                            "served through sluice)", file);
      o.judge = judge_route(n["provider"].Scalar());
    }
    auto flag = [&](const char* key) {
      std::string v = scalar(n[key], key, file);
      if (v != "true" && v != "false") fail(n[key], std::string("'options.") + key + "' must be true or false", file);
      return v == "true";
    };
    if (n["disableDefaultAsserts"]) {
      if (in_default) fail(n["disableDefaultAsserts"], "'disableDefaultAsserts' belongs in a test's options", file);
      o.no_default_asserts = flag("disableDefaultAsserts");
    }
    // Validated, no effect: sluice never expands list vars (it refuses them), has no
    // `_conversation` var (a prompt using it is refused), and a case's verdict does not depend
    // on the order its requests run in.
    for (const char* key : {"disableVarExpansion", "disableConversationVar", "runSerially"})
      if (n[key]) flag(key);
    return o;
  }

  // A var given as a mapping is sent to the release as JSON, but promptfoo prints it into a
  // prompt or an assertion value as "[object Object]": refused there.
  void check_mapping_vars(const YAML::Node& where, const std::string& file, const std::set<std::string>& maps,
                          const std::vector<Assertion>& own, const Options& o, bool uses_prompt) const {
    if (maps.empty()) return;
    auto check = [&](std::string_view text, const char* what) {
      for (size_t open = text.find("{{"); open != std::string_view::npos; open = text.find("{{", open + 2)) {
        size_t close = text.find("}}", open + 2);
        if (close == std::string_view::npos) return;
        std::string name(trim(text.substr(open + 2, close - open - 2)));
        if (maps.count(name))
          fail(where, "var '" + name + "' is a mapping: promptfoo prints it into " + what +
                          " as \"[object Object]\" (sluice would put JSON there); use it in the release's template only, "
                          "or give it as a JSON string", file);
      }
    };
    if (uses_prompt) check(o.prefix + s_.prompt + o.suffix, "the prompt");
    auto values = [&](const std::vector<Assertion>& list) {
      for (const auto& a : list) {
        check(a.value, "an assertion value");
        for (const auto& v : a.values) check(v, "an assertion value");
      }
    };
    if (!o.no_default_asserts) values(defaults_.asserts);
    values(own);
  }

  // A test's own options over the defaults (each one set replaces the default's).
  Options merged(Options own) const {
    const Options& d = defaults_.options;
    if (own.prefix.empty()) own.prefix = d.prefix;
    if (own.suffix.empty()) own.suffix = d.suffix;
    if (own.judge.empty()) own.judge = d.judge;
    return own;
  }

  // The case's assertions (defaultTest's, then its own), rendered with its vars, and its
  // options applied. A dataset row's columns are substituted in the dataset's own assertions too.
  void finish(Case& c, const std::vector<Assertion>& own, const Options& o, const Row* row = nullptr) const {
    c.asserts.clear();
    if (!o.no_default_asserts)
      for (const auto& a : defaults_.asserts) c.asserts.push_back(render_assertion(a, c.vars, c.origin));
    Row with_row;
    if (row) {
      with_row = c.vars;
      with_row.insert(with_row.end(), row->begin(), row->end());  // a column wins over a var of its name
    }
    for (const auto& a : own) c.asserts.push_back(render_assertion(a, row ? with_row : c.vars, c.origin));
    if (!o.judge.empty())
      for (auto& a : c.asserts)
        if (a.type == "llm-rubric" && a.judge.empty()) a.judge = o.judge;
    c.prefix = o.prefix;
    c.suffix = o.suffix;
  }

  std::string category_of(const YAML::Node& n, const std::string& file) const {
    std::string c;
    if (n["category"]) c = scalar(n["category"], "'category'", file);
    if (n["metadata"] && n["metadata"].IsMap() && n["metadata"]["category"])
      c = scalar(n["metadata"]["category"], "'metadata.category'", file);
    return c;
  }

  void test_case(const YAML::Node& n, const std::string& file, size_t index) {
    if (!n.IsMap()) fail(n, "a test case must be a mapping", file);
    check_keys(n, {"description", "vars", "assert", "threshold", "metadata", "options", "category", "messages", "id"},
               "a test case", file);
    Case c;
    c.origin = at(n, file);
    c.vars = defaults_.vars;
    std::set<std::string> maps = defaults_.maps;
    vars_into(n["vars"], c.vars, file, maps);
    Options o = merged(options(n["options"], file, false));
    auto own = assertions(n["assert"], file);
    check_mapping_vars(n, file, maps, own, o, !n["messages"]);
    finish(c, own, o);
    c.threshold = defaults_.threshold;
    if (n["threshold"]) c.threshold = number(n["threshold"], "'threshold'", file);
    if (n["description"]) c.description = scalar(n["description"], "'description'", file);
    std::string cat = category_of(n, file);
    c.category = !cat.empty() ? cat : !defaults_.category.empty() ? defaults_.category : "target";
    if (n["messages"]) c.messages_json = messages(n["messages"], file);
    if (n["id"]) c.id = scalar(n["id"], "'id'", file);
    if (c.id.empty()) c.id = !c.description.empty() ? c.description : "case " + std::to_string(index + 1);
    add(std::move(c), n, file);
  }

  void add(Case c, const YAML::Node& where, const std::string& file) {
    if (s_.cases.size() >= kMaxCases) fail(where, "more than " + std::to_string(kMaxCases) + " cases", file);
    if (c.asserts.empty()) fail(where, "case '" + c.id + "' has no assertions", file);
    check_category(c.category, where, file);
    s_.cases.push_back(std::move(c));
  }

  void check_category(const std::string& c, const YAML::Node& where, const std::string& file) const {
    static const std::regex ok("[a-z0-9][a-z0-9_-]{0,63}");
    if (!std::regex_match(c, ok)) fail(where, "category '" + c + "' must be lowercase letters, digits, '-' or '_'", file);
    if (c == "all") fail(where, "'all' is reserved (the gate's name for every case)", file);
  }

  // tests: a list of cases and/or file:// references, or one file:// reference.
  void tests(const YAML::Node& n) {
    if (n.IsScalar()) return tests_file(n, n.Scalar());
    if (!n.IsSequence()) fail(n, "'tests' must be a list of test cases or a file:// path");
    size_t i = 0;
    for (const auto& t : n) {
      if (t.IsScalar())
        tests_file(t, t.Scalar());
      else
        test_case(t, path_, i++);
    }
  }

  void tests_file(const YAML::Node& where, const std::string& ref) {
    std::string file = resolve(ref);
    std::string ext = fs::path(file).extension().string();
    if (ext == ".csv") return promptfoo_csv(where, file);
    if (ext == ".yaml" || ext == ".yml" || ext == ".json") {  // a JSON array is YAML too
      std::string text = read_bounded(file, kMaxDatasetBytes, where);
      YAML::Node root;
      try {
        root = YAML::Load(text);
      } catch (const YAML::Exception& e) {
        throw SuiteError(file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
      }
      if (!root.IsSequence()) fail(root, "a tests file must be a list of test cases", file);
      size_t i = 0;
      for (const auto& t : root) test_case(t, file, i++);
      return;
    }
    if (ext == ".jsonl") {
      std::string text = read_bounded(file, kMaxDatasetBytes, where);
      size_t line_no = 0;
      for (auto line : split(text, '\n')) {
        ++line_no;
        if (trim(line).empty()) continue;
        YAML::Node t;
        try {
          t = YAML::Load(std::string(line));
        } catch (const YAML::Exception& e) {
          throw SuiteError(file + ":" + std::to_string(line_no) + ": not a JSON test case: " + e.msg);
        }
        test_case(t, file + ":" + std::to_string(line_no), line_no - 1);
      }
      return;
    }
    fail(where, "tests file " + file + ": expected .csv, .yaml, .yml, .json or .jsonl (for other data use 'datasets')");
  }

  // promptfoo's CSV (its testCaseFromCsvRow): each column is a variable, except
  // __expected[N] (an assertion, see expected_assertion), __prefix and __suffix (around the
  // prompt), __description, __threshold, __metric (a report label) and __metadata:KEY
  // (__metadata:category, or sluice's __category, sets the category). __providerOutput and
  // __config:... are refused; any other __column is a variable, as in promptfoo.
  void promptfoo_csv(const YAML::Node& where, const std::string& file) {
    std::string text = read_bounded(file, kMaxDatasetBytes, where);
    auto rows = parse_csv(text);
    if (rows.empty()) fail(where, file + " is empty");
    std::vector<std::string> head;
    for (const auto& h : rows[0]) head.emplace_back(trim(h));
    for (const auto& col : head) {
      if (col == "__providerOutput")
        throw SuiteError(file + ":1: column '__providerOutput' (an output checked instead of asking the provider) is "
                         "not supported by sluice: every case asks the release");
      if (starts_with(col, "__config:"))
        throw SuiteError(file + ":1: column '" + col + "' is not supported by sluice: give the threshold in the "
                         "assertion, e.g. 'latency(2000)'");
    }
    for (size_t r = 1; r < rows.size(); ++r) {
      const auto& row = rows[r];
      if (row.size() == 1 && trim(row[0]).empty()) continue;
      std::string origin = file + ":" + std::to_string(r + 1);
      Case c;
      c.origin = origin;
      c.vars = defaults_.vars;
      c.threshold = defaults_.threshold;
      c.category = defaults_.category.empty() ? "target" : defaults_.category;
      std::vector<Assertion> own;
      Options o;
      for (size_t i = 0; i < head.size() && i < row.size(); ++i) {
        const std::string& col = head[i];
        const std::string& val = row[i];
        if (starts_with(col, "__expected")) {
          if (trim(val).empty()) continue;
          own.push_back(expected_assertion(val, origin));
        } else if (col == "__prefix") {
          o.prefix = val;
        } else if (col == "__suffix") {
          o.suffix = val;
        } else if (col == "__description") {
          c.description = val;
        } else if (col == "__threshold") {
          if (trim(val).empty()) continue;
          char* end = nullptr;
          std::string v(trim(val));
          double x = std::strtod(v.c_str(), &end);
          if (end != v.c_str() + v.size() || !std::isfinite(x))
            throw SuiteError(origin + ": __threshold '" + val + "' is not a number");
          c.threshold = x;
        } else if (col == "__metadata:category" || col == "__category") {
          if (!val.empty()) c.category = val;
        } else if (col == "__metric" || starts_with(col, "__metadata")) {
          continue;  // report labels only
        } else {
          if (val.size() > kMaxVarBytes) throw SuiteError(origin + ": column '" + col + "' is larger than 256 KiB");
          if (templated(val)) throw SuiteError(origin + ": " + template_var(col));
          set_var(c.vars, col, val);
        }
      }
      std::set<std::string> maps;  // defaultTest's mapping vars that no column replaces
      for (const auto& m : defaults_.maps)
        if (std::find(head.begin(), head.end(), m) == head.end()) maps.insert(m);
      check_mapping_vars(where, file, maps, own, merged(o), true);
      finish(c, own, merged(o));
      c.id = !c.description.empty() ? c.description : fs::path(file).filename().string() + ":" + std::to_string(r + 1);
      add(std::move(c), where, file);
    }
  }

  // promptfoo's assertion types (BaseAssertionTypesSchema): a CSV cell "TYPE: value" with one
  // of these is that assertion in promptfoo, so sluice must either check it or refuse it.
  static const std::set<std::string>& promptfoo_types() {
    static const std::set<std::string> t = {
        "agent-rubric", "answer-relevance", "bleu", "classifier", "contains", "contains-all", "contains-any",
        "contains-html", "contains-json", "contains-sql", "contains-xml", "context-faithfulness", "context-recall",
        "context-relevance", "conversation-relevance", "cost", "equals", "factuality", "finish-reason", "g-eval",
        "gleu", "guardrails", "icontains", "icontains-all", "icontains-any", "is-html", "is-json", "is-refusal",
        "is-sql", "is-valid-function-call", "is-valid-openai-function-call", "is-valid-openai-tools-call", "is-xml",
        "javascript", "latency", "levenshtein", "llm-rubric", "pi", "meteor", "model-graded-closedqa",
        "model-graded-factuality", "moderation", "perplexity", "perplexity-score", "python", "regex", "rouge-n",
        "ruby", "similar", "similar:cosine", "similar:dot", "similar:euclidean", "starts-with", "tool-call-f1",
        "skill-used", "trajectory:goal-success", "trajectory:tool-args-match", "trajectory:step-count",
        "trajectory:tool-sequence", "trajectory:tool-used", "trace-error-spans", "trace-span-count",
        "trace-span-duration", "search-rubric", "webhook", "word-count"};
    return t;
  }

  // A CSV __expected cell, read as promptfoo's assertionFromString reads it: "grade:" or
  // "llm-rubric:" a rubric; "[not-]TYPE[(THRESHOLD)][: value]" for a promptfoo type; else the
  // whole cell is an `equals` value. sluice's own types (refusal, equals-number) are read the
  // same way. Code (javascript:, python:, file://) and types sluice lacks are refused.
  Assertion expected_assertion(const std::string& raw, const std::string& origin) const {
    std::string s(trim(raw));
    auto refuse = [&](const std::string& msg) { throw SuiteError(origin + ": " + msg); };
    for (const char* code : {"javascript:", "fn:", "eval:", "python:", "file://", "package:"})
      if (starts_with(s, code))
        refuse("'" + s.substr(0, std::min<size_t>(s.size(), 40)) + "': '" + code +
               "' assertions (code or files promptfoo loads) are not supported by sluice");
    if (starts_with(s, "not-grade:")) refuse("promptfoo reads 'not-grade:' as an equals value: write 'not-llm-rubric:'");
    YAML::Node n(YAML::NodeType::Map);
    if (starts_with(s, "grade:") || starts_with(s, "llm-rubric:")) {
      n["type"] = "llm-rubric";
      n["value"] = s.substr(s.find(':') + 1);  // untrimmed, as promptfoo passes it to the grader
    } else {
      // promptfoo's /^(not-)?(TYPE)(?:\((\d+(?:\.\d+)?)\))?(?::([\s\S]*))?$/, the first type that fits.
      bool negate = starts_with(s, "not-");
      size_t start = negate ? 4 : 0;
      std::string base, threshold, value;
      bool has_value = false;
      for (size_t k = start; k <= s.size() && base.empty(); ++k) {
        if (k < s.size() && s[k] != ':' && s[k] != '(') continue;
        std::string cand = s.substr(start, k - start);
        if (!promptfoo_types().count(cand) && !known_types().count(cand)) continue;
        size_t j = k;
        std::string thr;
        if (j < s.size() && s[j] == '(') {
          static const std::regex num(R"(\d+(\.\d+)?)");
          size_t close = s.find(')', j);
          if (close == std::string::npos) continue;
          thr = s.substr(j + 1, close - j - 1);
          if (!std::regex_match(thr, num)) continue;
          j = close + 1;
        }
        if (j < s.size() && s[j] != ':') continue;
        base = cand, threshold = thr, has_value = j < s.size();
        if (has_value) value = s.substr(j + 1);
      }
      if (base.empty()) {
        n["type"] = "equals";
        n["value"] = s;
        return parse_expected(n, origin);
      }
      std::string type = (negate ? "not-" : "") + base;
      if (!known_types().count(base))
        refuse("unsupported assertion type '" + base + "' in '" + s.substr(0, std::min<size_t>(s.size(), 40)) + "'");
      n["type"] = type;
      if (base == "latency" || base == "cost") {
        // promptfoo takes the threshold only from "latency(2000)"; "latency: 2000" sets a value
        // it never reads and leaves the threshold at 0.75.
        if (threshold.empty())
          refuse("write '" + type + "(N)': promptfoo reads '" + s + "' with a threshold of 0.75, not N");
        if (has_value && !trim(value).empty()) refuse("'" + s + "': the threshold goes in parentheses, without a value");
        n["threshold"] = threshold;
      } else if (is_contains_list(base)) {
        if (has_value) {  // promptfoo splits here, before rendering the vars
          std::string err;
          auto vals = comma_values(value, err);
          if (!err.empty()) refuse("assertion '" + base + "': " + err);
          YAML::Node seq(YAML::NodeType::Sequence);
          for (const auto& v : vals) seq.push_back(v);
          n["value"] = seq;
        }
      } else if (base == "contains-json" || base == "is-json") {
        if (has_value) n["value"] = value;
      } else if (has_value) {
        n["value"] = std::string(trim(value));
      }
    }
    return parse_expected(n, origin);
  }

  Assertion parse_expected(const YAML::Node& n, const std::string& origin) const {
    try {
      return assertion(n, origin);
    } catch (const SuiteError& e) {
      // The node has no mark; name the row.
      std::string msg = e.what();
      if (starts_with(msg, origin)) throw;
      throw SuiteError(origin + ": " + msg);
    }
  }

  // ---- datasets (sluice): JSONL/CSV rows mapped to cases

  std::vector<Row> dataset_rows(const YAML::Node& n, const std::string& file, const std::string& format) const {
    std::string text = read_bounded(file, kMaxDatasetBytes, n);
    std::vector<Row> rows;
    if (format == "csv") {
      auto csv = parse_csv(text);
      if (csv.empty()) fail(n, file + " is empty");
      for (size_t r = 1; r < csv.size(); ++r) {
        if (csv[r].size() == 1 && trim(csv[r][0]).empty()) continue;
        Row row;
        for (size_t i = 0; i < csv[0].size(); ++i) row.emplace_back(csv[0][i], i < csv[r].size() ? csv[r][i] : "");
        row.emplace_back("__row", std::to_string(r));
        rows.push_back(std::move(row));
        if (rows.size() > kMaxCases) fail(n, file + ": more than " + std::to_string(kMaxCases) + " rows");
      }
      return rows;
    }
    simdjson::dom::parser parser;
    size_t line_no = 0;
    for (auto line : split(text, '\n')) {
      ++line_no;
      if (trim(line).empty()) continue;
      simdjson::dom::element doc;
      simdjson::dom::object obj;
      if (parser.parse(line.data(), line.size()).get(doc) || doc.get_object().get(obj))
        throw SuiteError(file + ":" + std::to_string(line_no) + ": not a JSON object");
      Row row;
      flatten(obj, "", row, 0);
      row.emplace_back("__row", std::to_string(line_no));
      rows.push_back(std::move(row));
      if (rows.size() > kMaxCases) fail(n, file + ": more than " + std::to_string(kMaxCases) + " rows");
    }
    return rows;
  }

  // Columns of a JSON row: top-level members, and nested ones as "a.b" (objects only).
  static void flatten(simdjson::dom::object obj, const std::string& prefix, Row& row, int depth) {
    for (auto field : obj) {
      std::string key = prefix + std::string(field.key);
      std::string_view sv;
      simdjson::dom::object inner;
      if (!field.value.get_string().get(sv)) {
        row.emplace_back(key, std::string(sv));
      } else {
        row.emplace_back(key, simdjson::minify(field.value));
        if (depth < 4 && !field.value.get_object().get(inner)) flatten(inner, key + ".", row, depth + 1);
      }
    }
  }

  static const std::string* column(const Row& row, const std::string& name) {
    for (const auto& [k, v] : row)
      if (k == name) return &v;
    return nullptr;
  }

  void dataset(const YAML::Node& n) {
    if (!n.IsMap()) fail(n, "a dataset must be a mapping with 'file'");
    check_keys(n,
               {"file", "format", "category", "id", "description", "vars", "messages", "assert", "threshold", "where",
                "limit"},
               "a dataset");
    if (!n["file"]) fail(n, "a dataset needs 'file'");
    std::string file = resolve(scalar(n["file"], "'file'"));
    std::string format;
    if (n["format"]) format = scalar(n["format"], "'format'");
    if (format.empty()) {
      std::string ext = fs::path(file).extension().string();
      format = ext == ".csv" ? "csv" : ext == ".jsonl" || ext == ".ndjson" ? "jsonl" : "";
    }
    if (format != "csv" && format != "jsonl") fail(n, "dataset format must be 'jsonl' or 'csv'");
    std::string category = n["category"] ? scalar(n["category"], "'category'") : "target";
    check_category(category, n["category"] ? n["category"] : n, path_);
    std::string id_tpl = n["id"] ? scalar(n["id"], "'id'") : fs::path(file).filename().string() + ":{{__row}}";
    std::string desc_tpl = n["description"] ? scalar(n["description"], "'description'") : "";
    // vars: {var: column} or [column, ...] (same name).
    std::vector<std::pair<std::string, std::string>> mapping;
    if (auto v = n["vars"]) {
      if (v.IsSequence()) {
        for (const auto& c : v) mapping.emplace_back(scalar(c, "a column"), c.Scalar());
      } else if (v.IsMap()) {
        for (auto it = v.begin(); it != v.end(); ++it)
          mapping.emplace_back(it->first.Scalar(), scalar(it->second, "a column name"));
      } else {
        fail(v, "'vars' must map variable names to columns");
      }
    }
    std::string messages_col = n["messages"] ? scalar(n["messages"], "'messages'") : "";
    std::vector<std::pair<std::string, std::vector<std::string>>> where;
    if (auto w = n["where"]) {
      if (!w.IsMap()) fail(w, "'where' must map columns to a value or a list of values");
      for (auto it = w.begin(); it != w.end(); ++it) {
        std::vector<std::string> vals;
        if (it->second.IsSequence())
          for (const auto& x : it->second) vals.push_back(scalar(x, "a value"));
        else
          vals.push_back(scalar(it->second, "a value"));
        where.emplace_back(it->first.Scalar(), std::move(vals));
      }
    }
    int64_t limit = -1;
    if (n["limit"]) {
      limit = static_cast<int64_t>(number(n["limit"], "'limit'"));
      if (limit < 0) fail(n["limit"], "'limit' must be >= 0");
    }
    std::optional<double> threshold = defaults_.threshold;
    if (n["threshold"]) threshold = number(n["threshold"], "'threshold'");
    if (!n["assert"] && defaults_.asserts.empty()) fail(n, "a dataset needs 'assert' (applied to every row)");

    auto own = assertions(n["assert"], path_);
    auto rows = dataset_rows(n, file, format);
    int64_t taken = 0;
    for (const Row& row : rows) {
      bool keep = true;
      for (const auto& [col, vals] : where) {
        const std::string* v = column(row, col);
        keep = keep && v && std::find(vals.begin(), vals.end(), *v) != vals.end();
      }
      if (!keep) continue;
      if (limit >= 0 && taken >= limit) break;
      ++taken;
      const std::string origin = file + ":" + *column(row, "__row");
      Case c;
      c.origin = origin;
      c.category = category;
      c.vars = defaults_.vars;
      for (const auto& [var, col] : mapping) {
        const std::string* v = column(row, col);
        if (!v) throw SuiteError(origin + ": no column '" + col + "' (for var '" + var + "')");
        if (v->size() > kMaxVarBytes) throw SuiteError(origin + ": column '" + col + "' is larger than 256 KiB");
        set_var(c.vars, var, *v);
      }
      if (!messages_col.empty()) {
        const std::string* v = column(row, messages_col);
        if (!v) throw SuiteError(origin + ": no column '" + messages_col + "'");
        c.messages_json = *v;
        simdjson::dom::parser p;
        simdjson::dom::array arr;
        if (p.parse(c.messages_json).get_array().get(arr))
          throw SuiteError(origin + ": column '" + messages_col + "' is not a JSON array of messages");
      }
      finish(c, own, defaults_.options, &row);
      c.threshold = threshold;
      c.id = render_vars(id_tpl, row);
      c.description = render_vars(desc_tpl, row);
      add(std::move(c), n, path_);
    }
  }

  // ---- gate

  void gate(const YAML::Node& n) {
    GateSpec& g = s_.gate;
    if (!n.IsMap()) fail(n, "'gate' must be a mapping");
    check_keys(n, {"alpha", "on_inconclusive", "resamples", "seed", "categories"}, "'gate'");
    if (n["alpha"]) {
      g.alpha = number(n["alpha"], "'alpha'");
      if (!(g.alpha > 0 && g.alpha < 0.5)) fail(n["alpha"], "'alpha' must be between 0 and 0.5");
    }
    if (n["on_inconclusive"]) {
      std::string v = scalar(n["on_inconclusive"], "'on_inconclusive'");
      if (v != "fail" && v != "pass") fail(n["on_inconclusive"], "'on_inconclusive' must be 'fail' or 'pass'");
      g.inconclusive_fails = v == "fail";
    }
    if (n["resamples"]) {
      double r = number(n["resamples"], "'resamples'");
      if (r < 200 || r > 100000) fail(n["resamples"], "'resamples' must be between 200 and 100000");
      g.resamples = static_cast<int>(r);
    }
    if (n["seed"]) g.seed = static_cast<uint64_t>(number(n["seed"], "'seed'"));
    auto cats = n["categories"];
    if (!cats || !cats.IsMap()) fail(n, "'gate' needs 'categories': a mapping of category (or 'all') to limits");
    for (auto it = cats.begin(); it != cats.end(); ++it) {
      std::string cat = it->first.Scalar();
      YAML::Node lims = it->second;  // the iterator hands out a temporary: copy it
      if (!lims.IsMap()) fail(lims, "limits of '" + cat + "' must be a mapping");
      check_keys(lims,
                 {"min_pass_rate", "max_drop", "max_cost_per_case", "max_cost_increase", "max_p95_ttft_ms",
                  "max_p95_ttft_increase", "max_p95_latency_ms", "max_p95_latency_increase"},
                 ("limits of '" + cat + "'").c_str());
      for (auto l = lims.begin(); l != lims.end(); ++l) {
        LimitSpec ls;
        ls.category = cat == "all" || cat == "*" ? "" : cat;
        ls.key = l->first.Scalar();
        ls.value = number(l->second, ("'" + ls.key + "'").c_str());
        const std::string& k = ls.key;
        if (k == "min_pass_rate") {
          ls.metric = Metric::kPassRate, ls.kind = LimitKind::kFloor;
        } else if (k == "max_drop") {
          ls.metric = Metric::kPassRate, ls.kind = LimitKind::kMaxDrop;
        } else if (k == "max_cost_per_case") {
          ls.metric = Metric::kCost, ls.kind = LimitKind::kCeiling;
        } else if (k == "max_cost_increase") {
          ls.metric = Metric::kCost, ls.kind = LimitKind::kMaxIncrease;
        } else if (k == "max_p95_ttft_ms") {
          ls.metric = Metric::kP95Ttft, ls.kind = LimitKind::kCeiling;
        } else if (k == "max_p95_ttft_increase") {
          ls.metric = Metric::kP95Ttft, ls.kind = LimitKind::kMaxIncrease;
        } else if (k == "max_p95_latency_ms") {
          ls.metric = Metric::kP95Latency, ls.kind = LimitKind::kCeiling;
        } else {
          ls.metric = Metric::kP95Latency, ls.kind = LimitKind::kMaxIncrease;
        }
        if (ls.metric == Metric::kPassRate && (ls.value < 0 || ls.value > 1))
          fail(l->second, "'" + k + "' is a fraction between 0 and 1 (0.02 or \"2%\" = 2 points)");
        if (ls.value < 0) fail(l->second, "'" + k + "' must be >= 0");
        ls_where_.push_back(at(l->second));
        g.limits.push_back(ls);
      }
    }
  }

  // A `file://` prompt, read as promptfoo's processors read it: .txt (CRLF as LF, trimmed;
  // "---" lines would split it into several prompts), .md, .j2 and .json as they are, .jsonl
  // with one line. Code, executables, YAML (chat messages), CSV (prompts) and globs are
  // refused, and so is any other extension (promptfoo reads no prompt from it).
  std::string prompt_file(const YAML::Node& where, const std::string& ref) const {
    std::string ext = fs::path(ref).extension().string();
    size_t colon = ext.find(':');  // file://x.py:function
    if (colon != std::string::npos) ext = ext.substr(0, colon);
    if (ref.find_first_of("*?[{") != std::string::npos)
      fail(where, "a prompt glob (several prompts in promptfoo) is not supported: give one file");
    if (ext != ".txt" && ext != ".md" && ext != ".j2" && ext != ".json" && ext != ".jsonl")
      fail(where, "a prompt from a '" + ext + "' file is not supported by sluice (promptfoo runs code and scripts, "
                  "reads YAML as chat messages and CSV as several prompts): give a .txt, .md, .j2, .json or .jsonl "
                  "file, or the prompt inline");
    std::string text = read_bounded(resolve(ref), 1 << 20, where);
    if (ext == ".jsonl") {
      std::vector<std::string> lines;
      for (auto line : split(text, '\n'))
        if (!line.empty() && line != "\r") lines.emplace_back(line);
      if (lines.size() != 1) fail(where, "a .jsonl prompt file must hold one line (promptfoo: one prompt per line)");
      return lines[0];
    }
    if (ext != ".txt") return text;
    std::string lf;
    bool first = true;
    for (auto line : split(text, '\n')) {
      if (trim(line) == "---")
        fail(where, "the prompt file has a '---' line: promptfoo splits it into several prompts; give one");
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (!first) lf += '\n';
      lf.append(line);
      first = false;
    }
    return std::string(trim(lf));
  }

  // ---- the file

  void load() {
    std::string text;
    {
      std::string err;
      auto content = read_file_limited(path_, kMaxSuiteBytes, err);
      if (!content) throw SuiteError(path_ + ": " + err);
      text = std::move(*content);
    }
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      throw SuiteError(path_ + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
    if (!root.IsMap()) throw SuiteError(path_ + ": a suite must be a YAML mapping");
    check_keys(root,
               {"name", "description", "prompts", "providers", "defaultTest", "tests", "datasets", "gate", "judge",
                "stream", "outputPath", "evaluateOptions", "sharing", "env", "scenarios", "metadata"},
               "a suite");
    for (const char* unsupported : {"scenarios"})
      if (root[unsupported]) fail(root[unsupported], std::string("'") + unsupported + "' is not supported by sluice");
    if (auto eo = root["evaluateOptions"]; eo && eo.IsMap()) {
      // What changes verdicts is refused; the rest (concurrency, progress, cache) is ignored.
      static const std::pair<const char*, const char*> refused[] = {
          {"repeat", "use --repeat N on the command line"},
          {"timeoutMs", "sluice's deadlines are the gateway config's timeouts"},
          {"maxEvalTimeMs", "sluice's deadlines are the gateway config's timeouts"},
      };
      for (const auto& [key, why] : refused)
        if (eo[key]) fail(eo[key], std::string("evaluateOptions.") + key + " is not supported by sluice: " + why);
    }
    for (const char* ignored : {"providers", "outputPath", "evaluateOptions", "sharing", "env"})
      if (root[ignored])
        s_.warnings.push_back(at(root[ignored]) + ": '" + ignored +
                              "' is ignored: sluice runs the release given on the command line");
    s_.path = path_;
    s_.name = root["name"] ? scalar(root["name"], "'name'") : fs::path(path_).stem().string();
    static const std::regex name_ok("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
    if (!std::regex_match(s_.name, name_ok))
      fail(root["name"] ? root["name"] : root, "'name' must be letters, digits, '.', '_' or '-' (max 128)");
    if (root["description"]) s_.description = scalar(root["description"], "'description'");
    if (root["judge"]) s_.judge = scalar(root["judge"], "'judge'");
    if (root["stream"]) {
      std::string v = scalar(root["stream"], "'stream'");
      if (v != "true" && v != "false") fail(root["stream"], "'stream' must be true or false");
      s_.stream = v == "true";
    }
    if (auto p = root["prompts"]) {
      YAML::Node first;
      if (p.IsScalar()) {
        first = p;
      } else if (p.IsSequence()) {
        if (p.size() != 1)
          fail(p, "give exactly one prompt: the release holds the real prompt; this one only builds the caller's "
                  "message from the vars");
        first = p[0];
      } else {
        fail(p, "'prompts' must be a string or a list with one prompt");
      }
      if (first.IsMap()) {
        check_keys(first, {"raw", "label", "id"}, "a prompt object");
        if (!first["raw"]) fail(first, "a prompt object needs 'raw'");
        s_.prompt = scalar(first["raw"], "'raw'");
      } else if (first.IsSequence()) {
        s_.prompt = messages(first, path_);
      } else {
        s_.prompt = scalar(first, "a prompt");
        if (starts_with(s_.prompt, "file://")) s_.prompt = prompt_file(first, s_.prompt);
      }
    }
    if (!s_.prompt.empty() && json_array(trim(s_.prompt)).has_value() && !is_chat_prompt(s_))
      fail(root["prompts"], "the prompt is JSON but not a list of messages: promptfoo would send the JSON value as "
                            "the messages");
    if (auto d = root["defaultTest"]) {
      if (!d.IsMap()) fail(d, "'defaultTest' must be a mapping");
      check_keys(d, {"vars", "assert", "threshold", "metadata", "options", "category"}, "'defaultTest'");
      vars_into(d["vars"], defaults_.vars, path_, defaults_.maps);
      defaults_.asserts = assertions(d["assert"], path_);
      defaults_.options = options(d["options"], path_, true);
      if (d["threshold"]) defaults_.threshold = number(d["threshold"], "'threshold'");
      defaults_.category = category_of(d, path_);
      if (!defaults_.category.empty()) check_category(defaults_.category, d, path_);
    }
    if (root["tests"]) tests(root["tests"]);
    if (auto ds = root["datasets"]) {
      if (!ds.IsSequence()) fail(ds, "'datasets' must be a list");
      for (const auto& d : ds) dataset(d);
    }
    if (s_.cases.empty()) fail(root, "the suite has no cases ('tests' or 'datasets')");

    // Unique ids (reports and JUnit name cases by them).
    std::map<std::string, int> seen;
    for (auto& c : s_.cases) {
      int k = ++seen[c.id];
      if (k > 1) c.id += " #" + std::to_string(k);
    }
    // Every case must render: a missing variable is a suite bug, found before any request.
    for (const auto& c : s_.cases) {
      if (!c.prefix.empty() || !c.suffix.empty()) {
        // promptfoo puts them around the prompt's text before rendering it.
        const char* why = !c.messages_json.empty() ? "the case sends raw 'messages'"
                          : s_.prompt.empty()       ? "the suite has no 'prompts' (the release's template is not the "
                                                      "suite's to change)"
                          : is_chat_prompt(s_)      ? "the suite's prompt is a chat prompt (promptfoo would no longer "
                                                      "read it as one)"
                                                    : nullptr;
        if (why) throw SuiteError(c.origin + ": a prompt prefix or suffix (options, __prefix, __suffix) cannot apply: " + why);
      }
      if (c.messages_json.empty() && !s_.prompt.empty()) {
        std::string text = render_checked(c.prefix + s_.prompt + c.suffix, c.vars, c.origin, "the prompt");
        if (!is_chat_prompt(s_)) {
          std::string why = prompt_shape_error(text);
          if (!why.empty()) throw SuiteError(c.origin + ": the prompt as rendered for this case " + why);
        }
      }
    }

    if (root["gate"]) {
      gate(root["gate"]);
    } else {
      s_.gate.defaulted = true;
      for (const auto& cat : s_.categories()) s_.gate.limits.push_back({cat, "max_drop", Metric::kPassRate, LimitKind::kMaxDrop, 0.02});
      s_.warnings.push_back(path_ + ": no 'gate': every category may drop at most 2 points against the baseline");
    }
    auto cats = s_.categories();
    for (size_t i = 0; i < s_.gate.limits.size(); ++i) {
      const auto& l = s_.gate.limits[i];
      if (!l.category.empty() && std::find(cats.begin(), cats.end(), l.category) == cats.end())
        throw SuiteError(ls_where_[i] + ": the gate limits category '" + l.category + "' but no case is in it");
    }
    s_.hash = hash();
  }

  std::string hash() const {
    std::string h;
    auto f = [&](std::string_view s) {
      h += std::to_string(s.size());
      h += ':';
      h += s;
    };
    f("sluice-suite-v1");
    f(s_.name);
    f(s_.prompt);
    f(s_.stream ? "1" : "0");
    f(s_.judge);
    for (const auto& c : s_.cases) {
      f(c.id);
      f(c.category);
      for (const auto& [k, v] : c.vars) f(k), f(v);
      f(c.messages_json);
      f(c.prefix), f(c.suffix);
      f(c.threshold ? std::to_string(*c.threshold) : "");
      for (const auto& a : c.asserts) {
        f(a.type), f(a.negate ? "1" : "0"), f(a.value), f(a.json_value), f(a.judge);
        for (const auto& v : a.values) f(v);
        f(a.threshold ? std::to_string(*a.threshold) : ""), f(std::to_string(a.weight));
      }
    }
    const auto& g = s_.gate;
    f(std::to_string(g.alpha)), f(g.inconclusive_fails ? "fail" : "pass"), f(std::to_string(g.resamples));
    f(std::to_string(g.seed));
    for (const auto& l : g.limits) f(l.category), f(l.key), f(std::to_string(l.value));
    return sha256_hex(h);
  }

 private:
  std::string path_;
  fs::path dir_;
  Suite& s_;
  std::vector<std::string> ls_where_;
};

}  // namespace

std::vector<std::string> Suite::categories() const {
  std::vector<std::string> out;
  for (const auto& c : cases)
    if (std::find(out.begin(), out.end(), c.category) == out.end()) out.push_back(c.category);
  return out;
}

std::optional<Suite> load_suite(const std::string& path, std::string& error) {
  Suite s;
  Loader l(path, s);
  try {
    l.load();
  } catch (const SuiteError& e) {
    error = e.what();
    return std::nullopt;
  } catch (const YAML::Exception& e) {
    error = path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg;
    return std::nullopt;
  } catch (const std::exception& e) {
    error = path + ": " + e.what();
    return std::nullopt;
  }
  return s;
}

std::string render_vars(std::string_view text, const std::vector<std::pair<std::string, std::string>>& vars,
                        std::string* missing) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    size_t open = text.find("{{", i);
    if (open == std::string_view::npos) break;
    size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos) break;
    out.append(text.substr(i, open - i));
    std::string_view name = trim(text.substr(open + 2, close - open - 2));
    const std::string* v = nullptr;
    for (const auto& [k, val] : vars)
      if (k == name) v = &val;
    if (v) {
      out += *v;
    } else if (missing && missing->empty()) {
      *missing = std::string(name);
    }
    i = close + 2;
  }
  out.append(text.substr(i));
  return out;
}

bool is_chat_prompt(const Suite& s) { return json_array(s.prompt).value_or(false); }

std::string prompt_shape_error(std::string_view rendered) {
  std::string_view t = trim(rendered);
  if (starts_with(t, "- role:"))
    return "reads as YAML chat messages to promptfoo's OpenAI provider: write a chat prompt (a list of messages)";
  auto arr = json_array(t);
  if (arr && !*arr) return "is JSON but not a list of messages: promptfoo's OpenAI provider would send it as the messages";
  if (!arr) {
    // promptfoo's looksLikeJson: its OpenAI provider refuses such a prompt.
    bool obj = !t.empty() && t.front() == '{' && t.back() == '}';
    bool list = false;
    if (!t.empty() && t.front() == '[' && t.back() == ']') {
      std::string_view after = trim(t.substr(1));
      static const std::regex value_start(R"(^([\"\{\[\d-]|true|false|null))");
      list = after.empty() || std::regex_search(after.begin(), after.end(), value_start);
    }
    if (obj || list) return "looks like JSON but is not: promptfoo's OpenAI provider refuses it";
  }
  return "";
}

std::string case_messages(const Suite& s, const Case& c) {
  if (!c.messages_json.empty()) return c.messages_json;
  if (s.prompt.empty()) return "";
  std::string_view prompt = trim(s.prompt);
  if (is_chat_prompt(s)) {
    // A chat prompt (JSON array of messages): render the vars inside each string, escaped.
    std::vector<std::pair<std::string, std::string>> escaped;
    for (const auto& [k, v] : c.vars) {
      std::string e;
      append_json_string(e, v);
      escaped.emplace_back(k, e.substr(1, e.size() - 2));
    }
    return render_vars(prompt, escaped);
  }
  std::string text = render_vars(c.prefix + s.prompt + c.suffix, c.vars);
  if (json_array(text).value_or(false)) return std::string(trim(text));  // promptfoo sends it as the messages
  std::string out = "[{\"role\":\"user\",\"content\":";
  append_json_string(out, text);
  out += "}]";
  return out;
}


}  // namespace sluice::eval
