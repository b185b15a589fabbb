// core/files.hpp: whole-file reads for configuration-time inputs (never the hot path).
#pragma once
#include <cstddef>
#include <optional>
#include <string>

namespace sluice {
// The file's bytes, or nullopt if it cannot be opened.
std::optional<std::string> read_file(const std::string& path);
// The file's bytes when it is at most `limit` bytes; otherwise nullopt with `error` saying
// why ("cannot read: ...", "larger than N MiB").
std::optional<std::string> read_file_limited(const std::string& path, size_t limit, std::string& error);
}  // namespace sluice
