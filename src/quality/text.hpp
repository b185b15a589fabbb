// quality/text.hpp: comparing two answers (shadow agreement, eval assertions) and reading
// numbers and JSON out of them.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace sluice::quality {

// Lowercased, punctuation dropped, whitespace collapsed to single spaces, trimmed.
std::string normalize_text(std::string_view s);
// Jaccard similarity of the sets of normalized tokens; 1 when both are empty.
double token_set_similarity(std::string_view a, std::string_view b);
// Structural JSON equality (object member order ignored, numbers compared by value);
// nullopt when either side is not JSON (a ```json fenced block counts as JSON).
std::optional<bool> json_equal(std::string_view a, std::string_view b);
// The answer's final number: after "####" if present, else the last number in the text;
// thousands separators and a trailing period are handled ("1,234." -> 1234).
std::optional<double> final_number(std::string_view text);

struct Agreement {
  bool exact = false;
  bool normalized = false;
  double token_set = 0;
  std::optional<bool> json;    // both JSON: structurally equal?
  std::optional<bool> number;  // both have a final number: equal?
};
Agreement compare(std::string_view a, std::string_view b);

// JSON syntax check, and when `schema` is non-empty a JSON Schema check (the subset used by
// response_format json_schema: type, properties, required, additionalProperties, items,
// enum, const, minimum/maximum, minLength/maxLength, minItems/maxItems, anyOf/oneOf/allOf).
struct SchemaCheck {
  bool valid = false;
  std::string error;  // why not, with a JSON pointer to the failing value
};
SchemaCheck check_json(std::string_view text, std::string_view schema = {});

}  // namespace sluice::quality
