// quality/text.hpp: comparing two answers (shadow agreement, eval assertions) and reading
// numbers and JSON out of them.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace sluice::quality {

// Inputs larger than this, or nested deeper than kMaxJsonDepth arrays/objects, are refused
// (check_json: valid=false with an error; json_equal: nullopt).
inline constexpr size_t kMaxJsonBytes = 1 << 20;
inline constexpr size_t kMaxJsonDepth = 64;

// Lowercased, punctuation dropped, whitespace collapsed to single spaces, trimmed.
// Case folding covers ASCII and Latin-1 letters (U+00C0..U+00DE); common Unicode punctuation
// (curly quotes, dashes, ellipsis) is dropped and U+00A0 counts as whitespace; other bytes are
// kept as they are.
std::string normalize_text(std::string_view s);
// Jaccard similarity of the sets of normalized tokens; 1 when both are empty.
double token_set_similarity(std::string_view a, std::string_view b);
// Structural JSON equality (object member order ignored, numbers compared by value);
// nullopt when either side is not JSON (a ```json fenced block counts as JSON: the whole
// answer, after trimming, is one fence).
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
// enum, const, minimum/maximum, minLength/maxLength, minItems/maxItems, anyOf/oneOf/allOf;
// also boolean schemas, exclusiveMinimum/exclusiveMaximum (numbers), and local "$ref"s such as
// "#/$defs/node"). Other keywords (pattern, format, ...) are ignored. `text` is not fence-stripped.
struct SchemaCheck {
  bool valid = false;
  std::string error;  // why not, with a JSON pointer to the failing value
  std::string pointer;  // RFC 6901 pointer to the failing value ("" = root); empty when valid
};
SchemaCheck check_json(std::string_view text, std::string_view schema = {});

}  // namespace sluice::quality
