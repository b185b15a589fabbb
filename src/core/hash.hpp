// core/hash.hpp: the two small non-cryptographic hashes sluice uses for bucketing (sticky
// rollout arms, balancer affinity, mock-llm's prefix cache). Not for anything an attacker
// could exploit: SHA-256 (core/crypto.hpp) is for keys and content addresses.
#pragma once
#include <cstdint>
#include <string_view>

namespace sluice {

// splitmix64's finalizer: spreads a hash's bits evenly over buckets.
inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

inline constexpr uint64_t kFnvOffset = 1469598103934665603ULL;

// FNV-1a over `s`, continuing from `h` (so blocks can be chained).
inline uint64_t fnv1a(std::string_view s, uint64_t h = kFnvOffset) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace sluice
