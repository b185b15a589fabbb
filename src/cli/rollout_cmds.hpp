// cli/rollout_cmds.hpp: `sluice rollout start|status|promote|pause|resume|abort|approve`.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>

namespace sluice::cli {
// Registers the subcommands; returns a runner to call after parsing (-1 if none chosen).
std::function<int()> add_rollout_commands(CLI::App& app);
}  // namespace sluice::cli
