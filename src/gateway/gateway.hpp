// gateway/gateway.hpp: the `sluice serve` process: data-plane workers, the admin listener,
// configuration snapshots, metrics, request log, reload and graceful drain.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice::gateway {

// What the command line says; the config file (if any) fills the rest.
struct Options {
  std::string config_path;
  std::vector<std::string> upstreams;  // NAME=URL
  std::optional<std::string> listen, admin_listen, data_dir;
  std::optional<int> threads;
  bool allow_public_unauthenticated = false;
};

class Gateway {
 public:
  explicit Gateway(Options opts);
  ~Gateway();
  // Serves until SIGTERM/SIGINT, then drains. Returns the process exit code.
  int run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::gateway
