#include "core/ids.hpp"

#include <openssl/rand.h>

namespace sluice {

RequestIdGenerator::RequestIdGenerator(uint32_t worker) {
  uint32_t r = 0;
  RAND_bytes(reinterpret_cast<unsigned char*>(&r), sizeof r);
  prefix_ = (static_cast<uint64_t>(r) << 8) | (worker & 0xff);
}

std::string RequestIdGenerator::next() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "req_";
  out.resize(4 + 10 + 10);
  uint64_t a = prefix_, b = ++counter_;
  for (int i = 9; i >= 0; --i, a >>= 4) out[4 + i] = kHex[a & 15];
  for (int i = 9; i >= 0; --i, b >>= 4) out[14 + i] = kHex[b & 15];
  return out;
}

}  // namespace sluice
