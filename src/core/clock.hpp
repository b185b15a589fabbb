// core/clock.hpp: the monotonic clock used for every latency figure.
#pragma once
#include <chrono>
#include <cstdint>

namespace sluice {

using Clock = std::chrono::steady_clock;

inline int64_t micros_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::microseconds>(b - a).count();
}

// Wall-clock time in milliseconds since the epoch (for logs).
inline int64_t unix_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace sluice
