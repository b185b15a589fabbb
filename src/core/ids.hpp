// core/ids.hpp: request ids, unique across workers and restarts, cheap to make.
#pragma once
#include <cstdint>
#include <string>

namespace sluice {

// Generates "req_" + 20 hex chars: 32 random bits fixed per generator, then a counter.
// One generator per worker thread: no shared state.
class RequestIdGenerator {
 public:
  explicit RequestIdGenerator(uint32_t worker);
  std::string next();

 private:
  uint64_t prefix_;
  uint64_t counter_ = 0;
};

}  // namespace sluice
