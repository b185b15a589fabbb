// cli/tenant_cmds.hpp: `sluice tenant create|update|list|show` and `sluice key
// create|list|revoke|rotate`, on the store or through a running gateway's admin API (--admin).
#pragma once
#include <CLI/CLI.hpp>

#include <functional>

namespace sluice::cli {

// Registers the subcommands; the returned function runs the parsed one (-1: none of these).
std::function<int()> add_tenant_commands(CLI::App& app);

}  // namespace sluice::cli
