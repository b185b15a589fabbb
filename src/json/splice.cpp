#include "json/splice.hpp"

namespace sluice::json {

namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Returns the index one past the end of the JSON string starting at s[i] == '"', or npos.
size_t skip_string(std::string_view s, size_t i) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

// Returns one past the end of the value starting at s[i], or npos.
size_t skip_value(std::string_view s, size_t i) {
  if (i >= s.size()) return std::string_view::npos;
  char c = s[i];
  if (c == '"') return skip_string(s, i);
  if (c == '{' || c == '[') {
    int depth = 0;
    for (; i < s.size(); ++i) {
      char d = s[i];
      if (d == '"') {
        i = skip_string(s, i);
        if (i == std::string_view::npos) return i;
        --i;
      } else if (d == '{' || d == '[') {
        ++depth;
      } else if (d == '}' || d == ']') {
        if (--depth == 0) return i + 1;
      }
    }
    return std::string_view::npos;
  }
  // number, true, false, null
  size_t start = i;
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && !is_ws(s[i])) ++i;
  return i == start ? std::string_view::npos : i;
}

}  // namespace

std::optional<std::vector<Member>> top_level_members(std::string_view s) {
  std::vector<Member> out;
  size_t i = 0;
  while (i < s.size() && is_ws(s[i])) ++i;
  if (i >= s.size() || s[i] != '{') return std::nullopt;
  ++i;
  for (;;) {
    while (i < s.size() && is_ws(s[i])) ++i;
    if (i >= s.size()) return std::nullopt;
    if (s[i] == '}') {
      if (!out.empty()) return std::nullopt;  // "{...,}" is not JSON
      return out;
    }
    if (s[i] != '"') return std::nullopt;
    size_t key_end = skip_string(s, i);
    if (key_end == std::string_view::npos) return std::nullopt;
    std::string_view key = s.substr(i + 1, key_end - i - 2);
    i = key_end;
    while (i < s.size() && is_ws(s[i])) ++i;
    if (i >= s.size() || s[i] != ':') return std::nullopt;
    ++i;
    while (i < s.size() && is_ws(s[i])) ++i;
    size_t value_end = skip_value(s, i);
    if (value_end == std::string_view::npos) return std::nullopt;
    out.push_back({key, s.substr(i, value_end - i)});
    i = value_end;
    while (i < s.size() && is_ws(s[i])) ++i;
    if (i >= s.size()) return std::nullopt;
    if (s[i] == ',') {
      ++i;
      continue;
    }
    if (s[i] == '}') return out;
    return std::nullopt;
  }
}

std::optional<std::string> splice_members(std::string_view object, const std::vector<Edit>& edits) {
  auto members = top_level_members(object);
  if (!members) return std::nullopt;
  std::string out;
  out.reserve(object.size() + 64);
  out.push_back('{');
  std::vector<bool> used(edits.size(), false);
  bool first = true;
  auto emit = [&](std::string_view key, std::string_view value) {
    if (!first) out.push_back(',');
    first = false;
    out.push_back('"');
    out.append(key);
    out += "\":";
    out.append(value);
  };
  for (const Member& m : *members) {
    bool replaced = false;
    for (size_t e = 0; e < edits.size(); ++e) {
      if (edits[e].key == m.key) {
        replaced = true;
        if (!used[e] && !edits[e].value.empty()) emit(m.key, edits[e].value);
        used[e] = true;
        break;
      }
    }
    if (!replaced) emit(m.key, m.value);
  }
  for (size_t e = 0; e < edits.size(); ++e) {
    if (!used[e] && !edits[e].value.empty()) emit(edits[e].key, edits[e].value);
  }
  out.push_back('}');
  return out;
}

}  // namespace sluice::json
