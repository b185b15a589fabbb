// core/files.hpp: whole-file reads for configuration-time inputs (never the hot path).
#pragma once
#include <optional>
#include <string>

namespace sluice {
// The file's bytes, or nullopt if it cannot be opened.
std::optional<std::string> read_file(const std::string& path);
}  // namespace sluice
