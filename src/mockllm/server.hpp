// mockllm/server.hpp: `sluice mock-llm`.
#pragma once
#include "mockllm/model.hpp"

namespace sluice::mockllm {
// Serves until SIGINT/SIGTERM. Prints "mock-llm: listening on HOST:PORT" once bound.
int run(const Options& opts);
}  // namespace sluice::mockllm
