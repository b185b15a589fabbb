#include "release/template.hpp"

#include "core/strings.hpp"

namespace sluice::release {

std::optional<Template> Template::compile(std::string_view text, std::string& error) {
  Template t;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("{{", pos);
    if (open == std::string_view::npos) {
      t.segments_.push_back({false, std::string(text.substr(pos))});
      break;
    }
    if (open > pos) t.segments_.push_back({false, std::string(text.substr(pos, open - pos))});
    bool triple = open + 2 < text.size() && text[open + 2] == '{';
    size_t start = open + (triple ? 3 : 2);
    size_t close = text.find(triple ? "}}}" : "}}", start);
    if (close == std::string_view::npos) {
      error = "unclosed tag at byte " + std::to_string(open);
      return std::nullopt;
    }
    std::string_view tag = trim(text.substr(start, close - start));
    pos = close + (triple ? 3 : 2);
    if (!tag.empty() && tag.front() == '!') continue;  // comment
    if (!tag.empty() && tag.front() == '&') tag = trim(tag.substr(1));
    if (tag.empty()) {
      error = "empty tag at byte " + std::to_string(open);
      return std::nullopt;
    }
    char c = tag.front();
    if (c == '#' || c == '^' || c == '/' || c == '>' || c == '=') {
      error = "unsupported Mustache tag '{{" + std::string(tag) + "}}' (only variables and comments)";
      return std::nullopt;
    }
    t.segments_.push_back({true, std::string(tag)});
  }
  return t;
}

bool Template::render(const Vars& vars, std::string& out, std::string& missing) const {
  for (const Segment& s : segments_) {
    if (!s.variable) {
      out += s.text;
      continue;
    }
    bool found = false;
    for (const auto& [k, v] : vars) {
      if (k == s.text) {
        out += v;
        found = true;
        break;
      }
    }
    if (!found) {
      missing = s.text;
      return false;
    }
  }
  return true;
}

std::vector<std::string> Template::variables() const {
  std::vector<std::string> out;
  for (const Segment& s : segments_) {
    if (!s.variable) continue;
    bool seen = false;
    for (const auto& v : out) seen = seen || v == s.text;
    if (!seen) out.push_back(s.text);
  }
  return out;
}

}  // namespace sluice::release
