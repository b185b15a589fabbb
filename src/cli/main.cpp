// cli/main.cpp: `sluice` subcommands. Each one parses flags and hands off to its module.
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/demo.hpp"
#include "cli/eval_cmds.hpp"
#include "cli/rollout_cmds.hpp"
#include "cli/store_cmds.hpp"
#include "cli/tenant_cmds.hpp"
#include "cli/flag_cmds.hpp"
#include "cli/scale_cmds.hpp"
#include "cli/incident_cmds.hpp"
#include "cli/apply_cmds.hpp"
#include "config/loader.hpp"
#include "gateway/gateway.hpp"
#include "mockllm/server.hpp"

int main(int argc, char** argv) {
  CLI::App app{"sluice: an LLM gateway with release discipline"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "sluice 0.1.0");

  // serve
  sluice::gateway::Options serve;
  std::string listen, admin_listen, data_dir;
  int threads = -1;
  auto* s = app.add_subcommand("serve", "run the gateway");
  s->add_option("--config", serve.config_path, "YAML configuration file");
  s->add_option("--upstream", serve.upstreams, "NAME=URL of an OpenAI-compatible upstream (repeatable)");
  s->add_option("--listen", listen, "data plane address (default 127.0.0.1:8080)");
  s->add_option("--admin-listen", admin_listen, "admin API address (default 127.0.0.1:8081)");
  s->add_option("--threads", threads, "worker threads (default: number of cores)");
  s->add_option("--data-dir", data_dir, "state directory (default ./sluice-data)");
  s->add_flag("--allow-public-unauthenticated", serve.allow_public_unauthenticated,
              "serve a non-loopback data plane without API keys");
  serve.readiness_interval_ms = 30000;
  s->add_option("--readiness-interval-ms", serve.readiness_interval_ms,
                "probe every route's rollback target this often (default 30000; 0: never)");

  // config check
  auto* cfg = app.add_subcommand("config", "configuration tools");
  cfg->require_subcommand(1);
  std::string check_file;
  auto* check = cfg->add_subcommand("check", "validate a configuration file");
  check->add_option("file", check_file, "YAML file")->required();

  // mock-llm
  sluice::mockllm::Options mock;
  auto* m = app.add_subcommand("mock-llm", "run a simulated OpenAI-compatible upstream");
  m->add_option("--listen", mock.listen, "address (default 127.0.0.1:9000)");
  m->add_option("--config", mock.config_path, "YAML file with models, latency and replay sources");
  m->add_option("--threads", mock.threads, "worker threads (default 1)");
  m->add_option("--seed", mock.seed, "random seed (default 42)");
  m->add_option("--ttft-ms", mock.defaults.ttft_ms, "default time to first token");
  m->add_option("--tpot-ms", mock.defaults.tpot_ms, "default time per output token");
  m->add_option("--output-tokens", mock.output_tokens, "default output length MIN:MAX");

  // demo
  sluice::cli::DemoOptions demo;
  auto* d = app.add_subcommand("demo", "start mock-llm and the gateway and send some traffic");
  d->add_option("--port", demo.port, "gateway port (default 8080)");
  d->add_flag("--exit", demo.exit_after, "exit after the traffic instead of serving until Ctrl-C");

  auto store_command = sluice::cli::add_store_commands(app);
  auto rollout_command = sluice::cli::add_rollout_commands(app);
  auto eval_command = sluice::cli::add_eval_commands(app);
  auto tenant_command = sluice::cli::add_tenant_commands(app);
  auto flag_command = sluice::cli::add_flag_commands(app);
  auto scale_command = sluice::cli::add_scale_commands(app);
  auto incident_command = sluice::cli::add_incident_commands(app);
  auto apply_command = sluice::cli::add_apply_commands(app);

  CLI11_PARSE(app, argc, argv);
  if (int rc = store_command(); rc >= 0) return rc;
  if (int rc = rollout_command(); rc >= 0) return rc;
  if (int rc = eval_command(); rc >= 0) return rc;
  if (int rc = tenant_command(); rc >= 0) return rc;
  if (int rc = flag_command(); rc >= 0) return rc;
  if (int rc = scale_command(); rc >= 0) return rc;
  if (int rc = incident_command(); rc >= 0) return rc;
  if (int rc = apply_command(); rc >= 0) return rc;

  if (s->parsed()) {
    if (!listen.empty()) serve.listen = listen;
    if (!admin_listen.empty()) serve.admin_listen = admin_listen;
    if (!data_dir.empty()) serve.data_dir = data_dir;
    if (threads >= 0) serve.threads = threads;
    sluice::gateway::Gateway gw(serve);
    return gw.run();
  }
  if (check->parsed()) {
    auto r = sluice::config::load_file(check_file);
    if (r.ok()) sluice::config::validate(r);
    for (const auto& w : r.warnings) std::cerr << "warning: " << w << "\n";
    for (const auto& e : r.errors) std::cerr << "error: " << e << "\n";
    if (!r.ok()) return 1;
    std::cout << check_file << ": ok (" << r.config.upstreams.size() << " upstreams, " << r.config.routes.size()
              << " routes)\n";
    return 0;
  }
  if (m->parsed()) return sluice::mockllm::run(mock);
  if (d->parsed()) return sluice::cli::run_demo(argv[0], demo);
  return 0;
}
