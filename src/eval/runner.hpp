// eval/runner.hpp: `sluice eval run`: every case of a suite through the real request path
// (an embedded gateway serving the candidate and baseline releases on a loopback port, the
// configured upstreams behind it) with bounded, rate-limit-aware concurrency, `--repeat`,
// a cache of answers, then the gate, the reports and the eval run in the store.
#pragma once
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace sluice::eval {

struct RunOptions {
  std::string suite_path;
  std::string release;         // candidate: id or unique prefix
  std::string baseline;        // id or prefix, or
  std::string baseline_route;  // the route's stable release
  std::string config_path;     // the gateway YAML with the upstreams (and their prices)
  std::vector<std::string> upstreams;  // NAME=URL, as for `sluice serve`
  std::string data_dir = "./sluice-data";
  std::string judge;    // route or release grading llm-rubric (overrides the suite's)
  std::string api_key;  // when the gateway config requires API keys
  int concurrency = 16;
  int repeat = 1;
  int gateway_threads = 1;
  bool cache = true;
  bool record = true;
  int max_errors = 0;    // cases that may be left out (errors) before the run is refused
  int timeout_s = 300;   // per request, retries included
  std::optional<bool> inconclusive_fails;  // overrides the suite's gate.on_inconclusive
  std::string junit_path, markdown_path, json_path;
  bool junit_all_failures = false;
  std::string actor;
  bool quiet = false;
};

// Exit code: 0 gate passed, 1 gate failed, 2 could not run (bad suite, unknown release,
// unreachable upstream, too many errors).
int run_eval(const RunOptions& o, std::ostream& out, std::ostream& err);

}  // namespace sluice::eval
