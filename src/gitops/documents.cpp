#include "gitops/documents.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/tenant_spec.hpp"
#include "config/yaml_keys.hpp"
#include "core/crypto.hpp"
#include "core/strings.hpp"
#include "flags/yaml_value.hpp"
#include "store/store.hpp"

namespace sluice::gitops {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxFileBytes = 4 << 20;
constexpr size_t kMinSecretBytes = 16;

class Reader {
 public:
  Reader(std::string file, std::string base, Desired& d, std::vector<std::string>& errors)
      : file_(std::move(file)), base_(std::move(base)), d_(d), errors_(errors) {}

  std::string at(const YAML::Node& n) const {
    auto m = n.Mark();
    if (m.is_null()) return file_;
    return file_ + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
  }
  void error(const YAML::Node& n, const std::string& msg) { errors_.push_back(at(n) + ": " + msg); }

  void document(const YAML::Node& doc) {
    if (doc.IsNull()) return;
    if (!doc.IsMap()) return error(doc, "a document is a mapping with kind, name and spec");
    if (!doc["kind"]) {
      if (doc["routes"] || doc["upstreams"]) {
        d_.notes.push_back(file_ + ": skipped: a gateway configuration file (routes and upstreams are declared there; "
                                   "check it with `sluice config check " + file_ + "`)");
        return;
      }
      return error(doc, "a document needs kind: RoutePolicy, RouteRelease, Flag or Tenant");
    }
    config::for_each_unknown_key(doc, {"apiVersion", "kind", "name", "spec"}, "a document",
                                 [&](const YAML::Node& k, const std::string& m) { error(k, m); });
    if (doc["apiVersion"] && (!doc["apiVersion"].IsScalar() || doc["apiVersion"].Scalar() != "sluice/v1"))
      return error(doc["apiVersion"], "apiVersion is sluice/v1 (or left out)");
    const YAML::Node kind = doc["kind"], name = doc["name"];
    if (!kind.IsScalar()) return error(kind, "kind is a string");
    if (!name || !name.IsScalar() || name.Scalar().empty()) return error(name ? name : doc, "a document needs a name");
    const std::string k = kind.Scalar(), n = name.Scalar();
    const YAML::Node spec = doc["spec"];
    if (spec && !spec.IsMap() && !spec.IsNull()) return error(spec, "spec is a mapping");
    const std::string where = at(doc);
    if (!unique(k, n, where, doc)) return;
    if (k == "RoutePolicy") return policy(n, where, spec);
    if (k == "RouteRelease") return release(n, where, spec, doc);
    if (k == "Flag") return flag(n, where, spec, doc);
    if (k == "Tenant") return tenant(n, where, spec, name);
    error(kind, "unknown kind '" + k + "' (expected RoutePolicy, RouteRelease, Flag or Tenant)");
  }

 private:
  // False (and an error) when kind/name was declared already.
  bool unique(const std::string& kind, const std::string& name, const std::string& where, const YAML::Node& doc) {
    auto first = [&](const auto& list, auto key) -> std::string {
      for (const auto& x : list)
        if (key(x) == name) return x.where;
      return "";
    };
    std::string prev;
    if (kind == "RoutePolicy") prev = first(d_.policies, [](const auto& x) { return x.route; });
    if (kind == "RouteRelease") prev = first(d_.releases, [](const auto& x) { return x.route; });
    if (kind == "Flag") prev = first(d_.flags, [](const auto& x) { return x.key; });
    if (kind == "Tenant") prev = first(d_.tenants, [](const auto& x) { return x.name; });
    if (prev.empty()) return true;
    error(doc, kind + " '" + name + "' is declared twice (first at " + prev + ")");
    return false;
  }

  void policy(const std::string& route, const std::string& where, const YAML::Node& spec) {
    DeclaredPolicy p{route, where, store::kDefaultApprovalAbove, "", "", {}};
    if (spec && spec.IsMap()) {
      config::for_each_unknown_key(spec,
                                   {"require_approval_above", "eval_suite", "evidence_environment", "evidence_suites"},
                                   "a RoutePolicy spec",
                                   [&](const YAML::Node& k, const std::string& m) { error(k, m); });
      if (const YAML::Node a = spec["require_approval_above"]) {
        double v = -1;
        if (a.IsScalar() && a.Scalar() == "never") v = store::kNoApproval;
        else if (!a.IsScalar() || !YAML::convert<double>::decode(a, v) || !(v >= 0 && v <= 100))
          return error(a, "require_approval_above is a percent from 0 to 100, or never");
        p.require_approval_above = v;
      }
      if (const YAML::Node e = spec["eval_suite"]) {
        if (!e.IsScalar()) return error(e, "eval_suite is a suite name");
        p.eval_suite = e.Scalar();
      }
      if (const YAML::Node e = spec["evidence_environment"]) {
        if (!e.IsScalar()) return error(e, "evidence_environment is an environment name");
        p.evidence_environment = e.Scalar();
      }
      if (const YAML::Node e = spec["evidence_suites"]) {
        if (!e.IsSequence()) return error(e, "evidence_suites is a list of suite names");
        for (const auto& x : e) {
          if (!x.IsScalar() || x.Scalar().empty()) return error(x, "evidence_suites is a list of suite names");
          p.evidence_suites.push_back(x.Scalar());
        }
        if (p.evidence_environment.empty()) return error(e, "evidence_suites needs evidence_environment");
      }
    }
    d_.policies.push_back(std::move(p));
  }

  void release(const std::string& route, const std::string& where, const YAML::Node& spec, const YAML::Node& doc) {
    if (!spec || !spec.IsMap()) return error(doc, "a RouteRelease spec names its stable release (stable: rel_...)");
    config::for_each_unknown_key(spec, {"stable"}, "a RouteRelease spec",
                                 [&](const YAML::Node& k, const std::string& m) { error(k, m); });
    const YAML::Node s = spec["stable"];
    if (!s || !s.IsScalar() || s.Scalar().empty()) return error(s ? s : spec, "stable is a release id (rel_...)");
    d_.releases.push_back({route, where, s.Scalar()});
  }

  void flag(const std::string& key, const std::string& where, const YAML::Node& spec, const YAML::Node& doc) {
    if (!spec || !spec.IsMap()) return error(doc, "a Flag spec is the flag's definition (state, variants, defaultVariant, ...)");
    std::string err;
    auto v = flags::from_yaml_node(spec, err);
    std::optional<flags::Flag> f;
    if (v) f = flags::make_flag(key, *v, err);
    if (!f) {
      errors_.push_back(file_ + ":" + err);
      return;
    }
    std::string def = f->json();
    d_.flags.push_back({key, where, std::move(*f), std::move(def)});
  }

  static bool literal_secret_key(const std::string& k) {
    return k == "key" || k == "api_key" || k == "apiKey" || k == "secret" || k == "token" || k == "value" ||
           k == "password";
  }
  void refuse_literal(const YAML::Node& n) {
    error(n, "a literal secret is refused: declare the key as key_ref: env:NAME or key_ref: file:PATH "
             "(the secret stays out of the files)");
  }

  // Resolves a reference to its secret's hash; false (and an error) when it cannot.
  bool resolve(KeyRef& k, const YAML::Node& n) {
    std::string secret;
    if (k.ref.rfind("env:", 0) == 0) {
      const char* v = std::getenv(k.ref.substr(4).c_str());
      if (!v || !*v) {
        error(n, "key_ref " + k.ref + ": the environment variable is not set");
        return false;
      }
      secret = v;
    } else {
      fs::path p = k.ref.substr(5);
      if (p.is_relative()) p = fs::path(base_) / p;
      std::ifstream in(p, std::ios::binary);
      if (!in) {
        error(n, "key_ref " + k.ref + ": cannot read " + p.string());
        return false;
      }
      std::stringstream ss;
      ss << in.rdbuf();
      secret = std::string(trim(ss.str()));
    }
    if (secret.size() < kMinSecretBytes) {
      error(n, "key_ref " + k.ref + ": the key is shorter than " + std::to_string(kMinSecretBytes) + " characters");
      return false;
    }
    k.sha256 = sha256_hex(secret);
    k.prefix = secret.substr(0, std::min<size_t>(8, secret.size() / 4));
    return true;
  }

  void key(const YAML::Node& item, DeclaredTenant& t) {
    KeyRef k;
    k.where = at(item);
    if (item.IsMap()) {
      for (auto it = item.begin(); it != item.end(); ++it) {
        const std::string name = it->first.Scalar();
        if (literal_secret_key(name)) return refuse_literal(it->first);
        if (name != "key_ref" && name != "label")
          return error(it->first, "unknown key '" + name + "' in a tenant key (expected one of: key_ref, label)");
      }
      if (!item["key_ref"]) return error(item, "a tenant key needs key_ref: env:NAME or file:PATH");
      if (const YAML::Node l = item["label"]) k.label = l.Scalar();
    }
    // (not assigned later: assigning a yaml-cpp node writes through to the node it refers to)
    const YAML::Node ref = item.IsMap() ? item["key_ref"] : item;
    if (!ref.IsScalar()) return error(ref, "key_ref is env:NAME or file:PATH");
    k.ref = ref.Scalar();
    const bool env = k.ref.rfind("env:", 0) == 0 && k.ref.size() > 4;
    const bool file = k.ref.rfind("file:", 0) == 0 && k.ref.size() > 5;
    if (!env && !file) return refuse_literal(ref);
    if (k.label.empty()) k.label = k.ref;
    for (const auto& other : t.keys)
      if (other.ref == k.ref) return error(ref, "key " + k.ref + " is declared twice in this tenant");
    if (!resolve(k, ref)) return;
    t.keys.push_back(std::move(k));
  }

  void tenant(const std::string& name, const std::string& where, const YAML::Node& spec, const YAML::Node& name_node) {
    if (!config::valid_tenant_name(name))
      return error(name_node, "a tenant name is 1-64 of A-Z a-z 0-9 . _ - (starting with a letter or digit)");
    DeclaredTenant t;
    t.name = name;
    t.where = where;
    YAML::Node settings(YAML::NodeType::Map);
    const size_t errors_before = errors_.size();
    if (spec && spec.IsMap()) {
      for (auto it = spec.begin(); it != spec.end(); ++it) {
        const std::string k = it->first.Scalar();
        if (literal_secret_key(k)) {
          refuse_literal(it->first);
          continue;
        }
        if (k == "keys") {
          t.keys_declared = true;
          const YAML::Node list = it->second;  // a named copy: the iterator's proxy is a temporary
          if (!list.IsSequence() && !list.IsNull()) {
            error(list, "keys is a list of key_ref: env:NAME or file:PATH");
            continue;
          }
          for (const auto& item : list) key(item, t);
          continue;
        }
        bool known = false;
        for (std::string_view a : config::kTenantKeys) known = known || (a != "name" && a == k);
        if (!known) {
          error(it->first, "unknown key '" + k + "' in a Tenant spec (expected one of: rpm, tpm, max_concurrent, "
                           "max_input_tokens, reserve_output_tokens, tier, budget_usd_per_day, budget_usd_per_month, "
                           "routes, keys)");
          continue;
        }
        settings[k] = it->second;
      }
    }
    if (errors_.size() != errors_before) return;
    std::string err;
    auto v = flags::from_yaml_node(settings, err);
    if (!v) {
      errors_.push_back(file_ + ":" + err);
      return;
    }
    std::string json;
    flags::append_json(json, *v);
    config::Tenant ct;
    ct.name = name;
    if (std::string e = config::apply_tenant_json(json, ct); !e.empty()) return error(spec ? spec : name_node, e);
    t.spec = config::tenant_json(ct);
    d_.tenants.push_back(std::move(t));
  }

  std::string file_, base_;
  Desired& d_;
  std::vector<std::string>& errors_;
};

}  // namespace

void load_text(const std::string& file, const std::string& text, const std::string& base, Desired& into,
               std::vector<std::string>& errors) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    errors.push_back(file + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) + ": " +
                     e.msg);
    return;
  }
  Reader r(file, base, into, errors);
  for (const auto& d : docs) {
    try {
      r.document(d);
    } catch (const YAML::Exception& e) {
      errors.push_back(file + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) + ": " +
                       e.msg);
    }
  }
}

Desired load_dir(const std::string& dir, std::vector<std::string>& errors) {
  Desired d;
  d.dir = dir;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    errors.push_back(dir + ": not a directory");
    return d;
  }
  std::vector<fs::path> paths;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const auto& p = it->path();
    if (it->is_directory() && p.filename().string().rfind('.', 0) == 0) {  // .git and friends
      it.disable_recursion_pending();
      continue;
    }
    const std::string ext = p.extension().string();
    if (it->is_regular_file() && (ext == ".yaml" || ext == ".yml")) paths.push_back(p);
  }
  if (ec) errors.push_back(dir + ": " + ec.message());
  std::sort(paths.begin(), paths.end());
  for (const auto& p : paths) {
    const std::string name = p.string();
    d.files.push_back(name);
    std::ifstream in(p, std::ios::binary);
    if (!in) {
      errors.push_back(name + ": cannot read");
      continue;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    if (text.size() > kMaxFileBytes) {
      errors.push_back(name + ": larger than " + std::to_string(kMaxFileBytes) + " bytes");
      continue;
    }
    load_text(name, text, p.parent_path().string(), d, errors);
  }
  if (paths.empty() && errors.empty()) errors.push_back(dir + ": no *.yaml or *.yml files");
  return d;
}

}  // namespace sluice::gitops
