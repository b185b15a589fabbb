// flags/flagd.hpp: feature flags in flagd's format and their evaluation, with the same
// variant, value and reason flagd-core gives for every context.
//
// A flag file is flagd's: {"flags": {KEY: {state, variants, defaultVariant, targeting,
// metadata}}, "$evaluators": {...}, "metadata": {...}}, as JSON or YAML. `$ref`s to
// `$evaluators` are resolved when the file is read (nested refs too; a cycle is refused).
// sluice is stricter than flagd about what it loads, never about what a valid flag means:
// malformed JsonLogic, an unknown operator, a default variant that does not exist, mixed
// variant types or an oversized file are refused whole, with the line and column, and the
// running flags stay in force.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flags/logic.hpp"
#include "flags/value.hpp"

namespace sluice::flags {

// OpenFeature's resolution reasons and error codes (the names OFREP and the SDKs use).
enum class Reason : uint8_t { kStatic, kTargetingMatch, kDefault, kDisabled, kError };
enum class ErrorCode : uint8_t { kNone, kFlagNotFound, kParseError, kTypeMismatch, kGeneral, kInvalidContext };
std::string_view reason_name(Reason r);
std::string_view error_name(ErrorCode e);

inline constexpr size_t kMaxFlagFileBytes = 4 << 20;
inline constexpr size_t kMaxFlagKeyBytes = 256;

struct Flag {
  std::string key;
  bool enabled = true;
  Object variants;                          // variant name -> value, as written
  std::optional<std::string> default_variant;  // flagd allows none: the caller's default applies
  Value targeting;                          // the rule as written, $refs resolved (null: none)
  std::optional<Logic> logic;               // compiled targeting (none when absent or {})
  Value metadata;                           // the flag's own metadata (an object of scalars)
  const Value* variant(std::string_view name) const;
  // The canonical definition: what the store keeps and export writes.
  std::string json() const;
};

struct Evaluation {
  const Flag* flag = nullptr;
  bool has_value = false;
  Value value;
  std::string variant;
  Reason reason = Reason::kStatic;
  ErrorCode error = ErrorCode::kNone;
  std::string message;
};

// Evaluates `flag` for `context` (an object; a `$flagd` member is replaced by flagd's own:
// flagKey and timestamp, Unix seconds).
Evaluation evaluate(const Flag& flag, const Value& context, int64_t now_s);

// A parsed flag file.
struct FlagFile {
  std::vector<Flag> flags;
  Value metadata;  // flag-set metadata (an object)
};
// Parses a flag file (JSON or YAML). nullopt and `error` ("line:column: what") when any
// part of it is invalid.
std::optional<FlagFile> parse_flag_file(std::string_view text, std::string& error);
// One flag from its definition (the object under flags.KEY, as JSON or YAML text).
std::optional<Flag> parse_flag(std::string_view key, std::string_view definition, std::string& error);
// The same, from a parsed value (`where` prefixes errors, e.g. "flags.my-flag").
std::optional<Flag> make_flag(std::string key, const Value& def, std::string& error);

// A file from flags (what `sluice flag export` writes): {"flags": {...}}.
std::string flag_file_json(const std::vector<const Flag*>& flags, const Value& metadata = Value::object({}));

}  // namespace sluice::flags
