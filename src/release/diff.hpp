// release/diff.hpp: what changed between two releases, field by field, with a line diff of
// prompt files and tool schemas.
#pragma once
#include <functional>
#include <optional>
#include <string>

#include "release/canonical.hpp"

namespace sluice::release {

using BlobLookup = std::function<std::optional<std::string>(const std::string& sha256)>;

std::string diff(const Value& a, const Value& b, const BlobLookup& blob);

// Line diff ("- old", "+ new", "  same") of two texts, minimal (LCS).
std::string line_diff(const std::string& a, const std::string& b);

}  // namespace sluice::release
