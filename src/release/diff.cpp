#include "release/diff.hpp"

#include <map>
#include <vector>

#include "core/strings.hpp"

namespace sluice::release {

namespace {

void flatten(const Value& v, const std::string& path, std::map<std::string, std::string>& out) {
  if (const Object* o = v.as_object()) {
    if (o->empty()) out[path] = "{}";
    for (const auto& [k, x] : *o) flatten(x, path.empty() ? k : path + "." + k, out);
    return;
  }
  if (const Array* a = v.as_array()) {
    if (a->empty()) out[path] = "[]";
    for (size_t i = 0; i < a->size(); ++i) flatten((*a)[i], path + "[" + std::to_string(i) + "]", out);
    return;
  }
  out[path] = to_json(v);
}

std::vector<std::string_view> lines(const std::string& s) {
  auto v = split(s, '\n');
  if (!v.empty() && v.back().empty()) v.pop_back();
  return v;
}

}  // namespace

std::string line_diff(const std::string& a, const std::string& b) {
  auto x = lines(a), y = lines(b);
  size_t n = x.size(), m = y.size();
  std::vector<std::vector<int>> l(n + 1, std::vector<int>(m + 1, 0));
  for (size_t i = n; i-- > 0;)
    for (size_t j = m; j-- > 0;) l[i][j] = x[i] == y[j] ? l[i + 1][j + 1] + 1 : std::max(l[i + 1][j], l[i][j + 1]);
  std::string out;
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] == y[j]) {
      out += "    " + std::string(x[i]) + "\n";
      ++i, ++j;
    } else if (j < m && (i == n || l[i][j + 1] > l[i + 1][j])) {
      out += "  + " + std::string(y[j++]) + "\n";
    } else {
      out += "  - " + std::string(x[i++]) + "\n";
    }
  }
  return out;
}

std::string diff(const Value& a, const Value& b, const BlobLookup& blob) {
  std::map<std::string, std::string> fa, fb;
  flatten(a, "", fa);
  flatten(b, "", fb);
  std::map<std::string, std::pair<std::string, std::string>> all;
  for (const auto& [k, v] : fa) all[k].first = v;
  for (const auto& [k, v] : fb) all[k].second = v;
  std::string out;
  int changes = 0;
  for (const auto& [k, ab] : all) {
    const auto& [va, vb] = ab;
    if (va == vb) continue;
    ++changes;
    if (va.empty()) {
      out += "+ " + k + ": " + vb + "\n";
    } else if (vb.empty()) {
      out += "- " + k + ": " + va + "\n";
    } else {
      out += "~ " + k + ": " + va + " -> " + vb + "\n";
    }
    // Blob-backed fields get a text diff of their contents.
    bool is_blob = k.size() >= 5 && k.substr(k.size() - 5) == ".hash" && (starts_with(k, "prompt") || starts_with(k, "tools"));
    if (is_blob && !va.empty() && !vb.empty()) {
      auto unq = [](const std::string& s) { return s.size() >= 2 ? s.substr(1, s.size() - 2) : s; };
      auto ca = blob(unq(va)), cb = blob(unq(vb));
      if (ca && cb) out += line_diff(*ca, *cb);
    }
  }
  if (changes == 0) out = "no differences\n";
  return out;
}

}  // namespace sluice::release
