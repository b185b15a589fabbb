// cli/store_cmds.hpp: release, route, rollback, audit and logs subcommands. They work on
// the store in --data-dir directly (for CI pipelines and on the gateway's host); a running
// gateway picks the change up within 50 ms.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>

namespace sluice::cli {
// Registers the subcommands; returns a runner to call after parsing (nullptr if none chosen).
std::function<int()> add_store_commands(CLI::App& app);
}  // namespace sluice::cli
