// core/crypto.hpp: hashing and random tokens (OpenSSL), for API keys and admin tokens.
#pragma once
#include <string>
#include <string_view>

namespace sluice {

std::string sha256_hex(std::string_view data);
// HMAC-SHA256 of `data` under `key`, hex encoded.
std::string hmac_sha256_hex(std::string_view key, std::string_view data);
// `bytes` random bytes from the OS CSPRNG, hex encoded, prefixed.
std::string random_token(std::string_view prefix, int bytes = 24);
// Constant-time comparison of two equal-length strings.
bool constant_time_equals(std::string_view a, std::string_view b);

}  // namespace sluice
