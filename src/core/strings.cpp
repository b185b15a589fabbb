#include "core/strings.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "core/error.hpp"

namespace sluice {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::optional<HostPort> parse_host_port(std::string_view s) {
  HostPort hp;
  std::string_view port_part;
  if (!s.empty() && s.front() == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') return std::nullopt;
    hp.host = std::string(s.substr(1, close - 1));
    port_part = s.substr(close + 2);
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    hp.host = std::string(s.substr(0, colon));
    port_part = s.substr(colon + 1);
  }
  if (hp.host.empty() || port_part.empty()) return std::nullopt;
  unsigned v = 0;
  auto [p, ec] = std::from_chars(port_part.data(), port_part.data() + port_part.size(), v);
  if (ec != std::errc() || p != port_part.data() + port_part.size() || v > 65535) return std::nullopt;
  hp.port = static_cast<uint16_t>(v);
  return hp;
}

std::optional<Url> parse_url(std::string_view s) {
  Url u;
  if (starts_with(s, "http://")) {
    s.remove_prefix(7);
    u.port = 80;
  } else if (starts_with(s, "https://")) {
    s.remove_prefix(8);
    u.tls = true;
    u.port = 443;
  } else {
    return std::nullopt;
  }
  size_t slash = s.find('/');
  std::string_view authority = s.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : s.substr(slash);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (authority.empty()) return std::nullopt;
  bool bracketed = authority.front() == '[';
  size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos && (!bracketed || authority[colon - 1] == ']')) {
    auto hp = parse_host_port(authority);
    if (!hp) return std::nullopt;
    u.host = hp->host;
    u.port = hp->port;
  } else {
    u.host = std::string(bracketed ? authority.substr(1, authority.size() - 2) : authority);
  }
  if (u.host.empty()) return std::nullopt;
  u.base_path = std::string(path);
  return u;
}

bool is_loopback_host(std::string_view host) {
  return host == "localhost" || host == "::1" || starts_with(host, "127.");
}

namespace {
int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    const int hi = i + 2 < s.size() ? hex_digit(s[i + 1]) : -1, lo = hi < 0 ? -1 : hex_digit(s[i + 2]);
    if (lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    const bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                       c == '.' || c == '_' || c == '~';
    if (plain) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// ---- error.hpp ----

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.reserve(out.size() + s.size() + 2);
  out.push_back('"');
  size_t run = 0;  // start of the current run of bytes that need no escaping
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        out += "\\u00";
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

std::string ApiError::to_json() const {
  std::string out;
  out.reserve(96 + message.size());
  out += "{\"error\":{\"message\":";
  append_json_string(out, message);
  out += ",\"type\":";
  append_json_string(out, type);
  out += ",\"param\":";
  if (param.empty()) {
    out += "null";
  } else {
    append_json_string(out, param);
  }
  out += ",\"code\":";
  append_json_string(out, code);
  out += "}}";
  return out;
}

ApiError bad_request(std::string message, std::string code) {
  return {400, "invalid_request_error", std::move(code), std::move(message)};
}
ApiError unauthorized(std::string message) {
  return {401, "invalid_request_error", "invalid_api_key", std::move(message)};
}
ApiError not_found(std::string message, std::string code) {
  return {404, "invalid_request_error", std::move(code), std::move(message)};
}
ApiError payload_too_large(std::string message) {
  return {413, "invalid_request_error", "request_too_large", std::move(message)};
}
ApiError bad_gateway(std::string message, std::string code) {
  return {502, "upstream_error", std::move(code), std::move(message)};
}
ApiError gateway_timeout(std::string message, std::string code) {
  return {504, "upstream_error", std::move(code), std::move(message)};
}
ApiError unavailable(std::string message, std::string code) {
  return {503, "server_error", std::move(code), std::move(message)};
}
ApiError rate_limited(std::string message, std::string code) {
  return {429, "rate_limit_error", std::move(code), std::move(message)};
}

}  // namespace sluice

// ---- files.hpp ----
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/files.hpp"

namespace sluice {
std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<std::string> read_file_limited(const std::string& path, size_t limit, std::string& error) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    error = "cannot read: " + ec.message();
    return std::nullopt;
  }
  if (size > limit) {
    error = "larger than the " + std::to_string(limit >> 20) + " MiB limit";
    return std::nullopt;
  }
  auto content = read_file(path);
  if (!content) error = "cannot read";
  return content;
}
}  // namespace sluice

namespace sluice {

namespace {
std::string non_finite(double v, NonFinite nf) {
  if (nf == NonFinite::kNull) return "null";
  return std::isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf";
}
}  // namespace

std::string num_text(double v, int significant, NonFinite nf) {
  if (!std::isfinite(v)) return non_finite(v, nf);
  char b[48];
  std::snprintf(b, sizeof b, "%.*g", significant, v);
  return b;
}

std::string fixed_text(double v, int decimals) {
  if (!std::isfinite(v)) return "null";
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

std::string js_number_text(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
  if (x == 0) return "0";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, std::fabs(x), std::chars_format::scientific);  // shortest
  std::string sci(buf, r.ptr);
  size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e))
    if (c != '.') digits += c;
  // ECMAScript's Number::toString: the value is 0.DIGITS x 10^n.
  int k = static_cast<int>(digits.size());
  int n = std::atoi(sci.c_str() + e + 1) + 1;
  std::string out;
  if (k <= n && n <= 21) {
    out = digits + std::string(static_cast<size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out = digits.substr(0, static_cast<size_t>(n)) + "." + digits.substr(static_cast<size_t>(n));
  } else if (-6 < n && n <= 0) {
    out = "0." + std::string(static_cast<size_t>(-n), '0') + digits;
  } else {
    out = digits.substr(0, 1) + (k > 1 ? "." + digits.substr(1) : "") + "e" + (n - 1 >= 0 ? "+" : "-") +
          std::to_string(std::abs(n - 1));
  }
  return (x < 0 ? "-" : "") + out;
}

}  // namespace sluice
