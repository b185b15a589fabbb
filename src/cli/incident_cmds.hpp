// cli/incident_cmds.hpp: `sluice incident timeline` and `sluice incident report` (on the
// store, or through a running gateway's admin API with --admin), and the readiness check
// behind `sluice rollback ROUTE --check`.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <string>

#include "cli/common.hpp"

namespace sluice::cli {

// Registers the subcommands; the returned function runs the parsed one (-1: none of these).
std::function<int()> add_incident_commands(CLI::App& app);

// Probes ROUTE's rollback target through a running gateway (GET .../readiness) and prints
// it: 0 ready, 1 not ready, 2 when it could not be asked.
int rollback_check(const Common& c, const std::string& route);

}  // namespace sluice::cli
