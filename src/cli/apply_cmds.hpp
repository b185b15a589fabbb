// cli/apply_cmds.hpp: `sluice diff -f DIR` (the plan from the store to the declared state,
// exit 0 when none, 2 when there are changes, 1 on error) and `sluice apply -f DIR` (that plan,
// written and audited with the files' git commit). The logic is gitops/.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>

namespace sluice::cli {

// Registers the subcommands; the returned function runs the parsed one (-1: none of these).
std::function<int()> add_apply_commands(CLI::App& app);

}  // namespace sluice::cli
