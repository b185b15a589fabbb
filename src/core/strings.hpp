// core/strings.hpp: string helpers with no allocation surprises.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

std::string_view trim(std::string_view s);
std::vector<std::string_view> split(std::string_view s, char sep);
bool iequals(std::string_view a, std::string_view b);
bool starts_with(std::string_view s, std::string_view prefix);

struct HostPort {
  std::string host;
  uint16_t port = 0;
};
// "127.0.0.1:8080", "[::1]:80", "localhost:0". nullopt on malformed input.
std::optional<HostPort> parse_host_port(std::string_view s);

// A parsed http(s) URL: scheme, host, port (defaulted), and base path without trailing '/'.
struct Url {
  bool tls = false;
  std::string host;
  uint16_t port = 0;
  std::string base_path;  // e.g. "/v1" or ""
};
std::optional<Url> parse_url(std::string_view s);

bool is_loopback_host(std::string_view host);

// %XX escapes in a URL path segment or query value ('+' stays '+'); nullopt when malformed.
std::optional<std::string> percent_decode(std::string_view s);
// A string as one URL path segment: every byte but A-Z a-z 0-9 - . _ ~ as %XX.
std::string percent_encode(std::string_view s);

// The one number formatter. `significant` digits ("%.*g": 0.05, 12.5, 1e+06; 17 round-trips
// a double), or a fixed number of decimals. A number that is not finite is `null` (JSON has no
// NaN), or NaN / +Inf / -Inf in Prometheus's text format.
enum class NonFinite { kNull, kPrometheus };
// A number as JavaScript's String(number) prints it (shortest round trip; exponent form
// below 1e-6 and from 1e21).
std::string js_number_text(double x);
std::string num_text(double v, int significant = 6, NonFinite nf = NonFinite::kNull);
std::string fixed_text(double v, int decimals);

}  // namespace sluice
