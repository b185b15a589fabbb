// release/template.hpp: strict Mustache variables, compiled when the snapshot is built.
// Supported: {{name}}, {{{name}}}, {{& name}} (all insert the raw value: prompts are not
// HTML) and {{! comments}}. Sections and partials are rejected at release creation, and a
// variable missing at request time is an error naming it, never a silent empty string.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::release {

using Vars = std::vector<std::pair<std::string, std::string>>;

class Template {
 public:
  static std::optional<Template> compile(std::string_view text, std::string& error);
  // Appends the rendering to `out`; false (and `missing` set) when a variable is absent.
  bool render(const Vars& vars, std::string& out, std::string& missing) const;
  std::vector<std::string> variables() const;
  bool empty() const { return segments_.empty(); }

 private:
  struct Segment {
    bool variable = false;
    std::string text;  // literal text, or the variable name
  };
  std::vector<Segment> segments_;
};

}  // namespace sluice::release
