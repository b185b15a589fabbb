#include "cli/scale_cmds.hpp"

#include <cstdio>
#include <iostream>
#include <memory>

#include "scale/simulate.hpp"

namespace sluice::cli {

namespace {

struct SimArgs {
  std::vector<std::string> traces;
  scale::SimOptions o;
  bool markdown = false;
};

int run_simulate(const SimArgs& a) {
  if (a.o.capacity_tps <= 0 || a.o.prefill_tps <= 0 || a.o.decode_tps <= 0 || a.o.sync_period_s <= 0 ||
      a.o.step_s <= 0 || a.o.step_s > a.o.sync_period_s || a.o.cpu_target <= 0 || a.o.cpu_target > 1) {
    std::cerr << "sluice scale simulate: capacities, speeds and periods must be positive, --cpu-target in (0, 1]\n";
    return 2;
  }
  if (a.markdown) {
    std::printf("| trace | signal | target / replica | under capacity | replica-hours | scale events | peak replicas | "
                "p99 slowdown |\n|---|---|---|---|---|---|---|---|\n");
  }
  for (const std::string& path : a.traces) {
    std::vector<scale::TraceRequest> trace;
    if (std::string err = scale::read_trace(path, trace); !err.empty()) {
      std::cerr << "sluice scale simulate: " << err << "\n";
      return 1;
    }
    std::string name = path.substr(path.find_last_of('/') + 1);
    if (!a.markdown)
      std::printf("%s: %zu requests over %.0f s, capacity %.0f tokens/s per replica, start-up %.0f s, sync %.0f s\n",
                  name.c_str(), trace.size(), trace.back().arrival_s, a.o.capacity_tps, a.o.startup_s, a.o.sync_period_s);
    for (const char* signal : {"tokens", "cpu"}) {
      scale::SimResult r = scale::simulate(trace, a.o, signal);
      const double pct = r.duration_s > 0 ? 100 * r.under_capacity_s / r.duration_s : 0;
      const std::string target = std::string(signal) == "cpu" ? std::to_string(static_cast<int>(r.target * 100)) + "% CPU"
                                                             : std::to_string(static_cast<long long>(r.target)) + " tokens";
      if (a.markdown) {
        std::printf("| %s | %s | %s | %.0f s (%.1f%%) | %.2f | %d | %d | %.2f |\n", name.c_str(),
                    std::string(signal) == "cpu" ? "CPU utilization (HPA)" : "tokens in flight", target.c_str(),
                    r.under_capacity_s, pct, r.replica_hours, r.scale_events, r.peak_replicas, r.p99_slowdown);
      } else {
        std::printf("  %-6s target %-14s under capacity %6.0f s (%4.1f%%)  replica-hours %6.2f  scale events %3d  "
                    "peak %3d  p99 slowdown %.2f\n",
                    signal, target.c_str(), r.under_capacity_s, pct, r.replica_hours, r.scale_events, r.peak_replicas,
                    r.p99_slowdown);
      }
    }
  }
  return 0;
}

}  // namespace

std::function<int()> add_scale_commands(CLI::App& app) {
  auto* sc = app.add_subcommand("scale", "the autoscaling signal");
  sc->require_subcommand(1);
  auto a = std::make_shared<SimArgs>();
  auto* sim = sc->add_subcommand("simulate",
                                 "replay a trace (TIMESTAMP,ContextTokens,GeneratedTokens) against the scaling policy "
                                 "driven by tokens in flight and by CPU utilization");
  sim->add_option("--trace", a->traces, "CSV trace (repeatable), e.g. ../shared/data/azure-llm-trace-2023/conv.csv")->required();
  sim->add_option("--capacity", a->o.capacity_tps, "tokens per second one replica processes (default 2000)");
  sim->add_option("--prefill-tps", a->o.prefill_tps, "prompt tokens per second of one request alone (default 5000)");
  sim->add_option("--decode-tps", a->o.decode_tps, "output tokens per second of one request alone (default 50)");
  sim->add_option("--startup", a->o.startup_s, "seconds from a scale-up decision to a ready replica (default 60)");
  sim->add_option("--sync", a->o.sync_period_s, "seconds between decisions (default 15, the HPA's)");
  sim->add_option("--cpu-target", a->o.cpu_target, "the CPU baseline's target utilization (default 0.7)");
  sim->add_option("--target-tokens", a->o.target_tokens, "tokens in flight per replica (default: calibrated to --cpu-target)");
  sim->add_option("--min-replicas", a->o.policy.min_replicas, "default 1");
  sim->add_option("--max-replicas", a->o.policy.max_replicas, "default 100");
  sim->add_option("--tolerance", a->o.policy.tolerance, "default 0.1");
  sim->add_option("--scale-down-stabilization", a->o.policy.scale_down_stabilization_s, "seconds (default 300)");
  sim->add_option("--scale-up-stabilization", a->o.policy.scale_up_stabilization_s, "seconds (default 0)");
  sim->add_flag("--markdown", a->markdown, "print a Markdown table");
  return [sim, a]() -> int {
    if (!sim->parsed()) return -1;
    return run_simulate(*a);
  };
}

}  // namespace sluice::cli
