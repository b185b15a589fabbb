// json/splice.hpp: find and replace top-level members of an already validated JSON object
// without re-serializing it, so every byte the gateway does not change reaches the upstream
// exactly as the client sent it.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::json {

struct Member {
  std::string_view key;    // raw key text between the quotes (escapes not decoded)
  std::string_view value;  // raw value text
};

// Splits a JSON object into its top-level members. Returns nullopt when `object` is not a
// well-formed object at the top level (callers validate first; this is a second guard).
std::optional<std::vector<Member>> top_level_members(std::string_view object);

struct Edit {
  std::string_view key;    // member to set (added at the end if absent)
  std::string_view value;  // raw JSON value; empty means "remove the member"
};

// Applies edits to the top-level members of `object`, preserving everything else.
std::optional<std::string> splice_members(std::string_view object, const std::vector<Edit>& edits);

}  // namespace sluice::json
