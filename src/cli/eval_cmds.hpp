// cli/eval_cmds.hpp: `sluice eval run|add-case`: the eval gate a CI pipeline runs.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>

namespace sluice::cli {
// Registers the subcommands; returns a runner to call after parsing (-1 if none chosen).
std::function<int()> add_eval_commands(CLI::App& app);
}  // namespace sluice::cli
