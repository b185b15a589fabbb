// cli/demo.hpp: `sluice demo`: mock-llm + gateway + a little traffic through the OpenAI SDK.
#pragma once
#include <string>

namespace sluice::cli {
struct DemoOptions {
  int port = 8080;
  bool exit_after = false;
};
int run_demo(const std::string& self, const DemoOptions& opts);
}  // namespace sluice::cli
