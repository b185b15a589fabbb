// cli/scale_cmds.hpp: `sluice scale simulate`: replays a request trace against the
// autoscaling policy driven by tokens in flight and by a CPU-utilization baseline
// (scale/simulate.hpp, docs/autoscaling.md).
#pragma once
#include <CLI/CLI.hpp>

#include <functional>

namespace sluice::cli {

// Registers the subcommands; the returned function runs the parsed one (-1: none of these).
std::function<int()> add_scale_commands(CLI::App& app);

}  // namespace sluice::cli
