#include "cli/rollout_cmds.hpp"

#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/common.hpp"
#include "rollout/ops.hpp"

namespace sluice::cli {

std::function<int()> add_rollout_commands(CLI::App& app) {
  auto common = std::make_shared<Common>();
  auto runner = std::make_shared<std::function<int()>>();
  auto route = std::make_shared<std::string>();
  auto reason = std::make_shared<std::string>();

  auto* ro = app.add_subcommand("rollout", "move a route to a candidate release: shadow, canary, blue-green");
  ro->require_subcommand(1);

  auto release = std::make_shared<std::string>();
  auto spec_file = std::make_shared<std::string>();
  auto strategy = std::make_shared<std::string>("canary");
  auto override_eval = std::make_shared<bool>(false);
  auto* start = ro->add_subcommand("start", "start a rollout of ROUTE to a candidate release");
  start->add_option("route", *route, "route")->required();
  start->add_option("--to", *release, "candidate release id")->required();
  start->add_option("--spec", *spec_file, "rollout spec (YAML): strategy, steps, gates, webhook");
  start->add_option("--strategy", *strategy, "without --spec: canary | shadow | blue-green | shadow-canary");
  start->add_flag("--override", *override_eval, "start without a passing eval run (needs --reason; audited)");
  start->add_option("--reason", *reason, "why (audited)");
  add_common_options(start, *common);
  start->callback([=] {
    *runner = [=] {
      std::string spec;
      if (!spec_file->empty()) {
        std::ifstream in(*spec_file);
        if (!in) {
          std::cerr << "error: cannot read " << *spec_file << "\n";
          return 2;
        }
        std::stringstream ss;
        ss << in.rdbuf();
        spec = ss.str();
        std::string err;
        if (!rollout::parse_spec(spec, err)) {
          std::cerr << "error: " << *spec_file << ": " << err << "\n";
          return 2;
        }
      }
      if (common->remote()) {
        std::string body = "{\"release\":" + json_str(*release) + ",\"spec\":" + json_str(spec) +
                           ",\"strategy\":" + json_str(*strategy) + ",\"reason\":" + json_str(*reason) +
                           ",\"override\":" + (*override_eval ? "true" : "false") + "}";
        return remote_call(*common, "POST", "/admin/v1/rollouts/" + *route + "/start", body, true);
      }
      auto s = open(*common);
      if (!s) return 2;
      rollout::StartRequest r;
      r.route = *route;
      r.release = *release;
      r.spec_text = spec;
      r.strategy = *strategy;
      r.actor = common->actor.empty() ? default_actor() : common->actor;
      r.reason = *reason;
      r.override_eval = *override_eval;
      auto res = rollout::start(*s, r);
      if (res.ok()) res.text = "started rollout " + res.text + " on " + *route + " (a running gateway picks it up within 50 ms)";
      return print(res);
    };
  });

  auto as_json = std::make_shared<bool>(false);
  auto* status = ro->add_subcommand("status", "step, weights, every gate's estimate, interval and verdict, timeline");
  status->add_option("route", *route, "route")->required();
  status->add_flag("--json", *as_json, "print JSON");
  add_common_options(status, *common);
  status->callback([=] {
    *runner = [=] {
      if (common->remote()) return remote_call(*common, "GET", "/admin/v1/rollouts/" + *route, "", !*as_json);
      auto s = open(*common);
      if (!s) return 2;
      if (*as_json) {
        auto r = s->active_rollout(*route);
        if (!r) {
          auto all = s->list_rollouts(*route, false);
          if (all.empty()) return print({"route '" + *route + "' has no rollouts", ""});
          r = all.back();
        }
        std::cout << rollout::status_json(*r, s->rollout_events(r->id, 0)) << "\n";
        return 0;
      }
      return print(rollout::status_text(*s, *route));
    };
  });

  struct Cmd {
    const char* name;
    const char* help;
  };
  static const Cmd kCmds[] = {
      {"promote", "skip to the next step now"},
      {"pause", "stop advancing (weights stay; guardrails still roll back)"},
      {"resume", "continue a paused rollout (a fresh window for the current step)"},
      {"abort", "send all traffic back to the stable release now"},
      {"approve", "sign off an approval step (--reason required)"},
  };
  for (const Cmd& c : kCmds) {
    auto* sc = ro->add_subcommand(c.name, c.help);
    sc->add_option("route", *route, "route")->required();
    sc->add_option("--reason", *reason, "why (audited)");
    add_common_options(sc, *common);
    std::string verb = c.name;
    sc->callback([=] {
      *runner = [=] {
        if (common->remote())
          return remote_call(*common, "POST", "/admin/v1/rollouts/" + *route + "/" + verb,
                             "{\"reason\":" + json_str(*reason) + "}", true);
        auto s = open(*common);
        if (!s) return 2;
        return print(rollout::command(*s, *route, verb, common->actor.empty() ? default_actor() : common->actor, *reason));
      };
    });
  }
  return [runner] { return *runner ? (*runner)() : -1; };
}

}  // namespace sluice::cli
