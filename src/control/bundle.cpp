#include "control/bundle.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>

#include "core/crypto.hpp"
#include "core/files.hpp"
#include "core/json_object.hpp"
#include "release/canonical.hpp"
#include "release/compiled.hpp"
#include "release/manifest.hpp"

namespace sluice::control {

namespace fs = std::filesystem;
using release::Object;
using release::Value;

namespace {

constexpr uintmax_t kMaxFileBytes = 64u << 20;  // a prompt, a tool schema or an eval report
constexpr size_t kMaxFiles = 10000;

Value str(const std::string& s) { return Value::string(s); }
Value num(int64_t v) { return Value::number(std::to_string(v)); }

std::string field(const Object& o, const std::string& key) {
  auto it = o.find(key);
  if (it == o.end()) return "";
  if (const std::string* s = it->second.as_string()) return *s;
  if (it->second.v.index() == 2) return std::get<2>(it->second.v);  // a number's text
  if (it->second.v.index() == 1) return std::get<1>(it->second.v) ? "true" : "false";
  return "";
}

int64_t int_field(const Object& o, const std::string& key) {
  std::string t = field(o, key);
  char* end = nullptr;
  long long v = std::strtoll(t.c_str(), &end, 10);
  return end && *end == '\0' ? v : 0;
}

// Every string under a "hash" key of the tuple: the blobs it references (prompt, tools).
void collect_hashes(const Value& v, std::set<std::string>& out) {
  if (const Object* o = v.as_object()) {
    for (const auto& [k, x] : *o) {
      if (k == "hash" && x.as_string()) out.insert(*x.as_string());
      collect_hashes(x, out);
    }
  } else if (const release::Array* a = v.as_array()) {
    for (const auto& x : *a) collect_hashes(x, out);
  }
}

bool is_hex64(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool write_file(const fs::path& p, const std::string& data) {
  std::error_code ec;
  fs::create_directories(p.parent_path(), ec);
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  return static_cast<bool>(out.flush());
}

// The canonical bytes bundle.json's digest and signature cover: itself without both.
std::string signed_body(Object manifest) {
  manifest.erase("digest");
  manifest.erase("signature");
  return release::to_json(Value::object(std::move(manifest)));
}

Value eval_value(const store::EvalRunRecord& r, const std::string& environment) {
  Object o{{"id", str(r.id)},
           {"route", str(r.route)},
           {"release", str(r.release)},
           {"baseline", str(r.baseline)},
           {"suite", str(r.suite_name)},
           {"suite_hash", str(r.suite_hash)},
           {"passed", Value::boolean(r.passed)},
           {"created_by", str(r.created_by)},
           {"created_at_ms", num(r.created_at)},
           {"environment", str(r.environment.empty() ? environment : r.environment)}};
  auto summary = r.summary.empty() ? std::nullopt : release::from_json(r.summary);
  o["summary"] = summary ? *summary : (r.summary.empty() ? Value::null() : str(r.summary));
  return Value::object(std::move(o));
}

// A verified bundle, ready to store.
struct Bundle {
  store::ReleaseRecord release;
  std::vector<std::pair<std::string, std::string>> blobs;  // sha256, content
  std::vector<store::EvalRunRecord> evals;
  std::string environment;
  bool signed_ = false;
};

Result fail(const std::string& dir, const std::string& file, const std::string& why) {
  return {"bundle " + dir + ": " + file + ": " + why, ""};
}

// Everything verify_bundle checks; on success `out` holds the contents.
Result load_bundle(const ImportOptions& o, Bundle& out) {
  const fs::path root(o.dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return {"bundle " + o.dir + ": not a directory", ""};
  std::string err;
  auto manifest_text = read_file_limited((root / "bundle.json").string(), kMaxFileBytes, err);
  if (!manifest_text) return fail(o.dir, "bundle.json", err);
  auto manifest_value = release::from_json(*manifest_text);
  if (!manifest_value || !manifest_value->as_object()) return fail(o.dir, "bundle.json", "not a JSON object (altered?)");
  const Object& manifest = *manifest_value->as_object();
  if (field(manifest, "format") != kBundleFormat)
    return fail(o.dir, "bundle.json", "format is '" + field(manifest, "format") + "', expected " + kBundleFormat);
  const std::string body = signed_body(manifest);
  if (!constant_time_equals(field(manifest, "digest"), sha256_hex(body)))
    return fail(o.dir, "bundle.json", "digest mismatch: the file was altered after export");
  const std::string signature = field(manifest, "signature");
  if (!o.key.empty()) {
    if (signature.empty()) return fail(o.dir, "bundle.json", "not signed, and a bundle key is set");
    if (!constant_time_equals(signature, "hmac-sha256:" + hmac_sha256_hex(o.key, body)))
      return fail(o.dir, "bundle.json", "signature does not match the bundle key (forged, or another key)");
    out.signed_ = true;
  } else if (o.require_signature) {
    return fail(o.dir, "bundle.json", "a signed bundle is required: set SLUICE_BUNDLE_KEY");
  }
  out.environment = field(manifest, "environment");
  if (out.environment.empty()) return fail(o.dir, "bundle.json", "names no environment");

  // Every listed file has its hash; nothing unlisted is there.
  auto files_it = manifest.find("files");
  if (files_it == manifest.end() || !files_it->second.as_object()) return fail(o.dir, "bundle.json", "no file list");
  const Object& files = *files_it->second.as_object();
  std::map<std::string, std::string> contents;
  for (const auto& [name, hash] : files) {
    if (name.empty() || name.find("..") != std::string::npos || name.front() == '/')
      return fail(o.dir, "bundle.json", "unsafe file name '" + name + "'");
    auto data = read_file_limited((root / name).string(), kMaxFileBytes, err);
    if (!data) return fail(o.dir, name, err);
    if (!hash.as_string() || sha256_hex(*data) != *hash.as_string())
      return fail(o.dir, name, "sha256 does not match bundle.json: the file was altered");
    contents.emplace(name, std::move(*data));
  }
  size_t seen = 0;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (++seen > kMaxFiles) return fail(o.dir, ".", "more than " + std::to_string(kMaxFiles) + " files");
    if (!it->is_regular_file()) continue;
    std::string rel = fs::relative(it->path(), root).generic_string();
    if (rel != "bundle.json" && !contents.count(rel)) return fail(o.dir, rel, "not listed in bundle.json (added?)");
  }

  // The release: its tuple must hash to its id.
  auto rel_it = contents.find("release.json");
  if (rel_it == contents.end()) return fail(o.dir, "release.json", "missing");
  auto rel_value = release::from_json(rel_it->second);
  if (!rel_value || !rel_value->as_object()) return fail(o.dir, "release.json", "not a JSON object");
  const Object& rel = *rel_value->as_object();
  auto tuple_it = rel.find("tuple");
  if (tuple_it == rel.end() || !tuple_it->second.as_object()) return fail(o.dir, "release.json", "no tuple");
  store::ReleaseRecord& r = out.release;
  r.tuple = release::to_json(tuple_it->second);
  r.id = release::release_id_for(r.tuple, &r.full_hash);
  if (r.id != field(rel, "id") || r.full_hash != field(rel, "full_hash"))
    return fail(o.dir, "release.json", "the tuple hashes to " + r.id + ", not " + field(rel, "id"));
  if (r.id != field(manifest, "release"))
    return fail(o.dir, "bundle.json", "names release " + field(manifest, "release") + " but holds " + r.id);
  r.route = field(rel, "route");
  r.parent = field(rel, "parent");
  r.git_commit = field(rel, "git_commit");
  r.created_by = field(rel, "created_by");
  r.created_at = int_field(rel, "created_at_ms");

  // Blobs: named by their hash, and every one the tuple references is here.
  std::set<std::string> referenced;
  collect_hashes(tuple_it->second, referenced);
  for (const auto& [name, data] : contents) {
    if (name.rfind("blobs/", 0) != 0) continue;
    std::string sha = name.substr(6);
    if (!is_hex64(sha) || sha256_hex(data) != sha) return fail(o.dir, name, "content does not hash to its name");
    out.blobs.emplace_back(sha, data);
  }
  std::string cerr;
  auto compiled = release::compile(r.id, r.tuple, [&](const std::string& h) -> std::optional<std::string> {
    for (const auto& [sha, content] : out.blobs)
      if (sha == h) return content;
    return std::nullopt;
  }, cerr);
  if (!compiled) return fail(o.dir, "release.json", cerr);

  // Eval runs: of this release, each with its report.
  for (const auto& [name, data] : contents) {
    if (name.rfind("evals/", 0) != 0) continue;
    auto v = release::from_json(data);
    if (!v || !v->as_object()) return fail(o.dir, name, "not a JSON object");
    const Object& e = *v->as_object();
    store::EvalRunRecord run;
    run.id = field(e, "id");
    run.route = field(e, "route");
    run.release = field(e, "release");
    run.baseline = field(e, "baseline");
    run.suite_name = field(e, "suite");
    run.suite_hash = field(e, "suite_hash");
    run.passed = field(e, "passed") == "true";
    run.created_by = field(e, "created_by");
    run.created_at = int_field(e, "created_at_ms");
    run.environment = field(e, "environment");
    auto summary = e.find("summary");
    if (summary != e.end() && !summary->second.is_null()) run.summary = release::to_json(summary->second);
    if (run.id.empty() || run.release != r.id || run.environment.empty())
      return fail(o.dir, name, "not an eval run of " + r.id + " with its environment");
    if (name != "evals/" + run.id + ".json") return fail(o.dir, name, "named for another run than " + run.id);
    out.evals.push_back(std::move(run));
  }
  return {"", ""};
}

}  // namespace

Result export_release(store::Store& s, const ExportOptions& o) {
  if (o.environment.empty())
    return {"name the environment this store serves: --environment NAME (or SLUICE_ENVIRONMENT); the bundle's "
            "evidence is attributed to it",
            ""};
  auto r = s.get_release(o.release);
  if (!r) return {"no release " + o.release, ""};
  const fs::path root(o.out_dir);
  std::error_code ec;
  if (fs::exists(root, ec) && !fs::is_empty(root, ec))
    return {o.out_dir + " exists and is not empty: export into a new directory", ""};
  auto tuple = release::from_json(r->tuple);
  if (!tuple) return {"release " + r->id + ": stored tuple is not JSON", ""};

  std::map<std::string, std::string> files;  // name -> content
  files["release.json"] = release::to_pretty_json(Value::object({{"id", str(r->id)},
                                                                 {"full_hash", str(r->full_hash)},
                                                                 {"route", str(r->route)},
                                                                 {"parent", str(r->parent)},
                                                                 {"git_commit", str(r->git_commit)},
                                                                 {"created_by", str(r->created_by)},
                                                                 {"created_at_ms", num(r->created_at)},
                                                                 {"tuple", *tuple}})) +
                          "\n";
  std::set<std::string> hashes;
  collect_hashes(*tuple, hashes);
  for (const auto& h : hashes)
    if (auto blob = s.get_blob(h)) files["blobs/" + h] = *blob;
  size_t evals = 0;
  for (const auto& run : s.list_eval_runs(r->id)) {
    files["evals/" + run.id + ".json"] = release::to_pretty_json(eval_value(run, o.environment)) + "\n";
    ++evals;
  }
  Object listing;
  for (const auto& [name, content] : files) listing[name] = str(sha256_hex(content));
  Object manifest{{"format", str(kBundleFormat)},
                  {"release", str(r->id)},
                  {"route", str(r->route)},
                  {"environment", str(o.environment)},
                  {"exported_by", str(o.actor)},
                  {"exported_at", str(iso_time(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                   std::chrono::system_clock::now().time_since_epoch())
                                                   .count()))},
                  {"files", Value::object(std::move(listing))}};
  const std::string body = signed_body(manifest);
  manifest["digest"] = str(sha256_hex(body));
  if (!o.key.empty()) manifest["signature"] = str("hmac-sha256:" + hmac_sha256_hex(o.key, body));
  files["bundle.json"] = release::to_pretty_json(Value::object(std::move(manifest))) + "\n";
  for (const auto& [name, content] : files)
    if (!write_file(root / name, content)) return {"cannot write " + (root / name).string(), ""};
  return {"",
          "exported " + r->id + " (route " + r->route + ", environment " + o.environment + ") to " + o.out_dir + ": " +
              std::to_string(files.size() - 2 - evals) + " blob(s), " + std::to_string(evals) + " eval run(s)" +
              (o.key.empty() ? ", unsigned" : ", signed")};
}

Result verify_bundle(const ImportOptions& o) {
  Bundle b;
  Result r = load_bundle(o, b);
  if (!r.ok()) return r;
  return {"", "bundle " + o.dir + ": ok: release " + b.release.id + " (route " + b.release.route + ") from " +
                  b.environment + ", " + std::to_string(b.blobs.size()) + " blob(s), " +
                  std::to_string(b.evals.size()) + " eval run(s), " + (b.signed_ ? "signature ok" : "unsigned")};
}

Result import_release(store::Store& s, const ImportOptions& o) {
  Bundle b;
  Result r = load_bundle(o, b);
  if (!r.ok()) return r;
  b.release.created_by = o.actor.empty() ? b.release.created_by : o.actor + " (import of " + b.release.created_by + ")";
  bool created = false;
  store::Outcome out = s.create_release(b.release, b.blobs, created);
  if (!out.ok()) return {out.error, ""};
  size_t added = 0, present = 0;
  for (const auto& run : b.evals) {
    if (s.get_eval_run(run.id)) {
      ++present;
      continue;
    }
    out = s.record_eval_run(run);
    if (!out.ok()) return {"eval run " + run.id + ": " + out.error, ""};
    ++added;
  }
  return {"", "imported " + b.release.id + " (route " + b.release.route + ") from environment " + b.environment +
                  (created ? "" : " (release already present)") + ": " + std::to_string(added) + " eval run(s) added" +
                  (present ? ", " + std::to_string(present) + " already present" : "") +
                  (b.signed_ ? ", signature ok" : ", unsigned")};
}

}  // namespace sluice::control
