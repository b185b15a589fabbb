// gateway/gateway.hpp: the `sluice serve` process: data-plane workers, the admin listener,
// configuration snapshots, metrics, request log, reload and graceful drain.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/snapshot.hpp"

namespace sluice::gateway {

// What the command line says; the config file (if any) fills the rest.
struct Options {
  std::string config_path;
  std::vector<std::string> upstreams;  // NAME=URL
  std::optional<std::string> listen, admin_listen, data_dir;
  std::optional<int> threads;
  bool allow_public_unauthenticated = false;
  // Embedding (e.g. `sluice eval run` serving pinned releases on an ephemeral port):
  std::vector<config::RouteBinding> extra_bindings;  // served besides the store's routes
  std::function<void(uint16_t port, uint16_t admin_port)> on_ready;  // called once listening
  bool handle_signals = true;   // SIGTERM/SIGINT drain, SIGHUP reloads
  bool announce = true;         // print the listening lines (stdout) and lifecycle notes (stderr)
  bool request_log = true;      // false: no request log whatever the config says
  // Rollback readiness probes of every route (0: none). `sluice serve` sets 30 s; an embedded
  // gateway (eval runs) sends no request of its own.
  int64_t readiness_interval_ms = 0;
};

class Gateway {
 public:
  explicit Gateway(Options opts);
  ~Gateway();
  // Serves until SIGTERM/SIGINT, then drains. Returns the process exit code.
  int run();
  // Starts a graceful drain from any thread (run() then returns).
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::gateway
