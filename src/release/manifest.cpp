#include "release/manifest.hpp"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/crypto.hpp"
#include "core/files.hpp"
#include "core/strings.hpp"
#include "release/template.hpp"

namespace sluice::release {

namespace {

std::string where(const std::string& file, const YAML::Node& n) {
  auto m = n.Mark();
  if (m.is_null()) return file;
  return file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

bool read_file(const std::string& path, std::string& out) {
  auto content = sluice::read_file(path);
  if (content) out = std::move(*content);
  return content.has_value();
}

}  // namespace

std::string release_id_for(const std::string& canonical_json, std::string* full_hash) {
  std::string h = sha256_hex(canonical_json);
  if (full_hash) *full_hash = h;
  return "rel_" + h.substr(0, 8);
}

std::optional<Manifest> load_manifest(const std::string& path, std::vector<std::string>& errors) {
  namespace fs = std::filesystem;
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    errors.push_back(path + ": cannot open file");
    return std::nullopt;
  } catch (const YAML::Exception& e) {
    errors.push_back(path + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) + ": " + e.msg);
    return std::nullopt;
  }
  if (!root.IsMap()) {
    errors.push_back(path + ": a manifest must be a mapping");
    return std::nullopt;
  }
  const fs::path base = fs::path(path).parent_path();
  auto err = [&](const YAML::Node& n, const std::string& m) { errors.push_back(where(path, n) + ": " + m); };
  static const char* kKeys[] = {"route", "model", "adapter", "prompt", "tools", "index", "params", "overridable",
                                "labels", "parent", "git_commit"};
  for (auto it = root.begin(); it != root.end(); ++it) {
    bool ok = false;
    for (const char* k : kKeys) ok = ok || it->first.Scalar() == k;
    if (!ok) err(it->first, "unknown key '" + it->first.Scalar() + "'");
  }
  Manifest m;
  Object t;
  t["schema"] = Value::number("1");
  try {
    if (!root["route"] || !root["route"].IsScalar() || root["route"].Scalar().empty()) {
      err(root, "'route' (the model name applications call) is required");
    } else {
      m.route = root["route"].Scalar();
      t["route"] = Value::string(m.route);
    }
    YAML::Node model = root["model"];
    if (!model || !model.IsMap() || !model["upstream"] || !model["id"]) {
      err(model ? model : root, "'model' needs 'upstream' and 'id' (the pinned provider model id)");
    } else {
      std::string id = model["id"].Scalar();
      bool floating = model["floating"] && model["floating"].as<bool>();
      std::string lower = id;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!floating && (lower == "latest" || lower.size() >= 6 && lower.substr(lower.size() - 6) == "latest"))
        err(model["id"], "model id '" + id + "' is a floating alias; pin a dated snapshot or set floating: true");
      Object mo;
      mo["upstream"] = Value::string(model["upstream"].Scalar());
      mo["id"] = Value::string(id);
      mo["floating"] = Value::boolean(floating);
      t["model"] = Value::object(std::move(mo));
    }
    if (YAML::Node a = root["adapter"]) {
      if (!a.IsMap() || !a["name"] || !a["hash"]) {
        err(a, "'adapter' needs 'name' and 'hash'");
      } else {
        t["adapter"] = Value::object({{"name", Value::string(a["name"].Scalar())}, {"hash", Value::string(a["hash"].Scalar())}});
      }
    } else {
      t["adapter"] = Value::null();
    }
    if (YAML::Node p = root["prompt"]) {
      std::string file = p.IsScalar() ? p.Scalar() : (p["file"] ? p["file"].Scalar() : "");
      std::string mode = p.IsMap() && p["mode"] ? p["mode"].Scalar() : "prepend_system";
      if (mode != "prepend_system" && mode != "replace" && mode != "template_user")
        err(p, "prompt mode must be prepend_system, replace or template_user");
      Blob b;
      b.path = file;
      if (file.empty() || !read_file((base / file).string(), b.content)) {
        err(p, "cannot read prompt file '" + file + "'");
      } else {
        // Validate the prompt file now so a broken template never becomes a release.
        try {
          YAML::Node pf = YAML::Load(b.content);
          std::string terr;
          auto check = [&](const std::string& text, const std::string& what) {
            if (!Template::compile(text, terr)) err(p, "prompt " + what + ": " + terr);
          };
          if (!pf.IsMap()) {
            err(p, "prompt file must be a mapping with system / few_shot / user");
          } else {
            if (pf["system"]) check(pf["system"].Scalar(), "system");
            if (pf["user"]) check(pf["user"].Scalar(), "user");
            for (const auto& fs_msg : pf["few_shot"]) check(fs_msg["content"].Scalar(), "few_shot");
            if ((mode == "replace" || mode == "template_user") && !pf["user"])
              err(p, "prompt mode " + mode + " needs a 'user' template in the prompt file");
          }
        } catch (const YAML::Exception& e) {
          err(p, "prompt file " + file + ": " + e.msg);
        }
        b.sha256 = sha256_hex(b.content);
        t["prompt"] = Value::object({{"hash", Value::string(b.sha256)}, {"mode", Value::string(mode)}});
        m.blobs.push_back(std::move(b));
      }
    } else {
      t["prompt"] = Value::null();
    }
    Array tools;
    if (YAML::Node ts = root["tools"]) {
      for (const auto& tn : ts) {
        Blob b;
        b.path = tn.Scalar();
        if (!read_file((base / b.path).string(), b.content)) {
          err(tn, "cannot read tool schema '" + b.path + "'");
          continue;
        }
        auto v = from_json(b.content);
        const Object* o = v ? v->as_object() : nullptr;
        if (!o || !o->count("function")) {
          err(tn, "tool schema '" + b.path + "' must be a JSON object like {\"type\":\"function\",\"function\":{...}}");
          continue;
        }
        b.sha256 = sha256_hex(b.content);
        tools.push_back(Value::object({{"hash", Value::string(b.sha256)}}));
        m.blobs.push_back(std::move(b));
      }
    }
    t["tools"] = Value::array(std::move(tools));
    if (YAML::Node ix = root["index"]) {
      t["index"] = Value::object({{"version", Value::string(ix["version"] ? ix["version"].Scalar() : "")},
                                  {"hash", Value::string(ix["hash"] ? ix["hash"].Scalar() : "")}});
    } else {
      t["index"] = Value::null();
    }
    static const char* kParams[] = {"temperature", "top_p", "max_tokens", "max_completion_tokens", "stop",
                                    "response_format", "presence_penalty", "frequency_penalty", "seed"};
    Value params = root["params"] ? from_yaml(root["params"]) : Value::object({});
    if (const Object* po = params.as_object()) {
      for (const auto& [k, v] : *po) {
        bool ok = false;
        for (const char* p : kParams) ok = ok || k == p;
        if (!ok) err(root["params"], "unknown sampling param '" + k + "'");
      }
    } else {
      err(root["params"], "'params' must be a mapping");
    }
    t["params"] = std::move(params);
    Array over;
    for (const auto& o : root["overridable"]) over.push_back(Value::string(o.Scalar()));
    t["overridable"] = Value::array(std::move(over));
    t["labels"] = root["labels"] ? from_yaml(root["labels"]) : Value::object({});
    if (root["parent"]) m.parent = root["parent"].Scalar();
    if (root["git_commit"]) m.git_commit = root["git_commit"].Scalar();
  } catch (const YAML::Exception& e) {
    errors.push_back(path + ": " + e.what());
  }
  if (!errors.empty()) return std::nullopt;
  m.tuple = Value::object(std::move(t));
  m.id = release_id_for(to_json(m.tuple), &m.full_hash);
  return m;
}

}  // namespace sluice::release
