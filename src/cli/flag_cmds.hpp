// cli/flag_cmds.hpp: `sluice flag ...` (flags in flagd's format: list, show, set, enable,
// disable, import, export, eval, stale) and `sluice kill ...` (kill switches), on the store or
// through a running gateway's admin API (--admin).
#pragma once
#include <CLI/CLI.hpp>

#include <functional>

namespace sluice::cli {

// Registers the subcommands; the returned function runs the parsed one (-1: none of these).
std::function<int()> add_flag_commands(CLI::App& app);

}  // namespace sluice::cli
