// core/csv.hpp: RFC 4180 CSV (quoted fields with embedded newlines and doubled quotes, CRLF
// or LF, a leading UTF-8 BOM skipped). Used for replayed datasets and eval suites.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace sluice {
std::vector<std::vector<std::string>> parse_csv(std::string_view text);
}  // namespace sluice
