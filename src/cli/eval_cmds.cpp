// cli/eval_cmds.cpp: `sluice eval run` (the gate a CI pipeline runs) and `sluice eval
// add-case` (a logged production request becomes a permanent case).
#include "cli/eval_cmds.hpp"

#include <cstdio>
#include <iostream>
#include <memory>

#include "control/releases.hpp"
#include "eval/add_case.hpp"
#include "eval/runner.hpp"
#include "store/store.hpp"

namespace sluice::cli {

std::function<int()> add_eval_commands(CLI::App& app) {
  auto runner = std::make_shared<std::function<int()>>();
  auto* ev = app.add_subcommand("eval", "eval gate: run suites against releases, add regression cases");
  ev->require_subcommand(1);

  auto ro = std::make_shared<eval::RunOptions>();
  auto on_inconclusive = std::make_shared<std::string>();
  auto no_cache = std::make_shared<bool>(false);
  auto no_record = std::make_shared<bool>(false);
  if (const char* k = std::getenv("SLUICE_API_KEY")) ro->api_key = k;
  auto* run = ev->add_subcommand("run", "run a suite against a release (and a baseline) and decide the gate; "
                                        "exit 0 pass, 1 fail, 2 could not run");
  run->add_option("--suite", ro->suite_path, "suite file (YAML, promptfoo format)")->required();
  run->add_option("--release", ro->release, "candidate release id (or unique prefix)")->required();
  run->add_option("--baseline", ro->baseline, "baseline release id (or unique prefix)");
  run->add_option("--baseline-route", ro->baseline_route, "use this route's stable release as the baseline");
  run->add_option("--config", ro->config_path, "gateway YAML with the upstreams (and their prices)");
  run->add_option("--upstream", ro->upstreams, "NAME=URL of an upstream, as for serve (repeatable)");
  run->add_option("--data-dir", ro->data_dir, "state directory with the store (default ./sluice-data)");
  run->add_option("--concurrency", ro->concurrency, "requests in flight (default 16; halved on 429s)");
  run->add_option("--repeat", ro->repeat, "answers per case and release, for nondeterministic outputs (default 1)");
  run->add_option("--judge", ro->judge, "route or release that grades llm-rubric assertions");
  run->add_option("--api-key", ro->api_key, "API key, when the gateway config requires one (env SLUICE_API_KEY)");
  run->add_option("--junit", ro->junit_path, "write a JUnit XML report here");
  run->add_option("--markdown", ro->markdown_path, "write a Markdown report here");
  run->add_option("--json", ro->json_path, "write the JSON report here");
  run->add_flag("--junit-all-failures", ro->junit_all_failures,
                "JUnit: fail every case the candidate fails (default: only regressions; shared failures are skipped)");
  run->add_option("--on-inconclusive", *on_inconclusive, "pass|fail: what 'not enough evidence' does (default: the "
                                                         "suite's gate.on_inconclusive, else fail)")
      ->check(CLI::IsMember({"pass", "fail"}));
  run->add_option("--max-errors", ro->max_errors, "cases that may lack an answer before the run is refused (default 0)");
  run->add_option("--timeout", ro->timeout_s, "seconds per request, retries included (default 300)");
  run->add_option("--gateway-threads", ro->gateway_threads, "worker threads of the embedded gateway (default 1)");
  run->add_flag("--no-cache", *no_cache, "ask every release again (cached answers are not reused; the new ones are stored)");
  run->add_flag("--no-record", *no_record, "do not record the eval run in the store");
  run->add_option("--actor", ro->actor, "who runs it, for the store and the audit log (default cli:$USER@host)");
  run->add_flag("--quiet", ro->quiet, "no progress or warnings on stderr");
  run->callback([=] {
    *runner = [=] {
      if (!on_inconclusive->empty()) ro->inconclusive_fails = *on_inconclusive == "fail";
      ro->cache = !*no_cache;
      ro->record = !*no_record;
      return eval::run_eval(*ro, std::cout, std::cerr);
    };
  });

  auto ao = std::make_shared<eval::AddCaseOptions>();
  auto* add = ev->add_subcommand("add-case", "turn a logged production request into a permanent suite case");
  add->add_option("--suite", ao->suite_path, "suite file to extend")->required();
  add->add_option("--request", ao->request_id, "request id (x-request-id, or request_id in the request log)")
      ->required();
  add->add_option("--expect", ao->expect,
                  "assertion TYPE[:VALUE] the right answer must satisfy, e.g. not-refusal, 'equals-number:42', "
                  "'icontains:refund' (repeatable)");
  add->add_option("--category", ao->category, "category of the case (default target)");
  add->add_option("--description", ao->description, "description of the case");
  add->add_option("--data-dir", ao->data_dir, "state directory holding requests.jsonl (default ./sluice-data)");
  add->add_option("--log", ao->log_path, "request log file (default DATA_DIR/requests.jsonl)");
  add->callback([=] { *runner = [=] { return eval::add_case(*ao, std::cout, std::cerr); }; });

  // eval list / show: the eval runs in the store.
  auto data_dir = std::make_shared<std::string>("./sluice-data");
  auto release = std::make_shared<std::string>();
  auto run_id = std::make_shared<std::string>();
  auto open_store = [data_dir]() -> std::unique_ptr<store::Store> {
    std::string err;
    auto s = store::open_store(store::store_location("", *data_dir), err);
    if (!s) std::cerr << "error: " << err << "\n";
    return s;
  };
  auto* list = ev->add_subcommand("list", "eval runs recorded in the store (newest last)");
  list->add_option("--release", *release, "only the runs of this release (id or prefix)");
  list->add_option("--data-dir", *data_dir, "state directory (default ./sluice-data)");
  auto as_json = std::make_shared<bool>(false);
  list->add_flag("--json", *as_json, "print JSON (with each run's environment: \"\" for this one's own runs)");
  list->callback([=] {
    *runner = [=] {
      auto s = open_store();
      if (!s) return 2;
      std::string id = *release;
      if (!id.empty()) {
        auto r = s->get_release(id);
        if (!r) {
          std::cerr << "error: no release '" << id << "'\n";
          return 1;
        }
        id = r->id;
      }
      if (*as_json) {
        std::printf("%s\n", control::eval_runs_json(*s, id, false).c_str());
        return 0;
      }
      auto runs = s->list_eval_runs(id);
      std::printf("%-16s %-14s %-14s %-14s %-20s %s\n", "EVAL RUN", "RELEASE", "BASELINE", "ROUTE", "SUITE", "RESULT");
      for (const auto& r : runs)
        std::printf("%-16s %-14s %-14s %-14s %-20s %s\n", r.id.c_str(), r.release.c_str(),
                    r.baseline.empty() ? "-" : r.baseline.c_str(), r.route.c_str(), r.suite_name.c_str(),
                    ((r.passed ? "pass" : "fail") + (r.environment.empty() ? "" : " [" + r.environment + "]")).c_str());
      return 0;
    };
  });
  auto* show = ev->add_subcommand("show", "one eval run: its record and JSON summary");
  show->add_option("id", *run_id, "eval run id (ev_...)")->required();
  show->add_option("--data-dir", *data_dir, "state directory (default ./sluice-data)");
  show->callback([=] {
    *runner = [=] {
      auto s = open_store();
      if (!s) return 2;
      auto r = s->get_eval_run(*run_id);
      if (!r) {
        std::cerr << "error: no eval run '" << *run_id << "'\n";
        return 1;
      }
      std::cout << r->summary;
      if (r->summary.empty() || r->summary.back() != '\n') std::cout << "\n";
      return 0;
    };
  });

  return [runner] { return *runner ? (*runner)() : -1; };
}

}  // namespace sluice::cli
