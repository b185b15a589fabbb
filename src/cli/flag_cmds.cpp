#include "cli/flag_cmds.hpp"

#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/common.hpp"
#include "control/flags.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/strings.hpp"
#include "flags/flagd.hpp"
#include "net/http_client.hpp"

namespace sluice::cli {

namespace {

bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

// One evaluation as a JSON line: what flagd-core's resolve*Evaluation returns, less the
// caller's default (which an evaluation without a value leaves to the caller).
void append_evaluation(std::string& out, const flags::Evaluation& e) {
  out += "{\"key\":";
  append_json_string(out, e.flag->key);
  out += ",\"reason\":\"";
  out += flags::reason_name(e.reason);
  out += '"';
  if (e.has_value) {
    out += ",\"variant\":";
    append_json_string(out, e.variant);
    out += ",\"value\":";
    flags::append_json(out, e.value);
  }
  if (e.error != flags::ErrorCode::kNone) {
    out += ",\"errorCode\":\"";
    out += flags::error_name(e.error);
    out += '"';
  }
  out += "}\n";
}

// `sluice flag eval FILE`: evaluates every flag of a flag file for each context (one JSON
// object per line on stdin, or --context), one result per flag and context on stdout.
// With `repeat` > 0 (and --context), it times that many evaluations of each flag instead and
// prints the cost of one (bench/flags.sh).
int eval_file(const std::string& path, const std::string& context, int64_t now_s, int64_t repeat) {
  std::string text, error;
  if (!read_file(path, text)) {
    std::cerr << "sluice: cannot read " << path << "\n";
    return 2;
  }
  auto file = flags::parse_flag_file(text, error);
  if (!file) {
    std::cerr << path << ":" << error << "\n";
    return 1;
  }
  if (now_s == 0) now_s = unix_millis() / 1000;
  auto run = [&](const std::string& line) {
    std::string err;
    auto ctx = flags::parse_json(line, err);
    if (!ctx || !ctx->is_object()) {
      std::cout << "{\"error\":\"INVALID_CONTEXT\"}\n";
      return;
    }
    thread_local std::string out;  // one buffer for every context
    out.clear();
    for (const auto& f : file->flags) append_evaluation(out, flags::evaluate(f, *ctx, now_s));
    std::cout << out;
  };
  if (!context.empty() && repeat > 0) {
    std::string err;
    auto ctx = flags::parse_json(context, err);
    if (!ctx || !ctx->is_object()) {
      std::cerr << "sluice: --context is a JSON object\n";
      return 2;
    }
    for (const auto& f : file->flags) {
      size_t sink = 0;
      const auto t0 = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < repeat; ++i) sink += flags::evaluate(f, *ctx, now_s).variant.size();
      const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
      std::cout << "{\"key\":";
      std::string k;
      append_json_string(k, f.key);
      std::cout << k << ",\"ns_per_evaluation\":" << ns / static_cast<double>(repeat) << ",\"check\":" << sink << "}\n";
    }
    return 0;
  }
  if (!context.empty()) {
    run(context);
    return 0;
  }
  std::string line;
  while (std::getline(std::cin, line))
    if (!line.empty()) run(line);
  return 0;
}

std::string reason_body(const std::string& reason) { return "{\"reason\":" + json_str(reason) + "}"; }

// `sluice flag export`: the flag file on stdout or into `output`.
int export_file(const Common& common, const std::string& output) {
  std::string text;
  if (common.remote()) {
    auto r = net::http_request("GET", common.admin_url + "/admin/v1/flags/export", common.token(), "");
    if (!r.error.empty() || r.status / 100 != 2) {
      std::cerr << "error: " << (r.error.empty() ? r.body : r.error) << "\n";
      return r.error.empty() ? 1 : 2;
    }
    text = std::move(r.body);
  } else {
    auto s = open(common);
    if (!s) return 2;
    text = control::export_flags(*s);
  }
  if (output.empty()) return print({"", text});
  std::ofstream out(output, std::ios::binary | std::ios::trunc);
  out << text << "\n";
  if (!out.flush()) return print({"cannot write " + output, ""});
  return 0;
}

}  // namespace

std::function<int()> add_flag_commands(CLI::App& app) {
  auto runner = std::make_shared<std::function<int()>>();
  auto* flag = app.add_subcommand(
      "flag", "feature flags (flagd's format): list, show, set, enable, disable, delete, import, export, stale, eval");
  flag->require_subcommand(1);

  auto file = std::make_shared<std::string>(), context = std::make_shared<std::string>();
  auto now = std::make_shared<int64_t>(0);
  auto* eval = flag->add_subcommand("eval", "evaluate a flag file's flags for contexts (JSON lines on stdin)");
  eval->add_option("file", *file, "flag file (JSON or YAML, flagd's format)")->required();
  eval->add_option("--context", *context, "one evaluation context (JSON object) instead of stdin");
  eval->add_option("--now", *now, "$flagd.timestamp to use (Unix seconds; default: now)");
  auto repeat = std::make_shared<int64_t>(0);
  eval->add_option("--repeat", *repeat, "with --context: time this many evaluations of each flag (ns per evaluation)");
  eval->callback([=] { *runner = [=] { return eval_file(*file, *context, *now, *repeat); }; });

  auto common = std::make_shared<Common>();
  auto key = std::make_shared<std::string>(), reason = std::make_shared<std::string>();
  auto json = std::make_shared<std::string>(), output = std::make_shared<std::string>();
  auto older = std::make_shared<std::string>("30d");
  auto replace = std::make_shared<bool>(false);
  auto actor = [common] { return common->actor.empty() ? default_actor() : common->actor; };

  auto* list = flag->add_subcommand("list", "every stored flag: state, kind (flag, release, kill.*), owner, version");
  add_common_options(list, *common);
  list->callback([=] {
    *runner = [=] {
      if (common->remote()) return remote_call(*common, "GET", "/admin/v1/flags");
      auto s = open(*common);
      return s ? print({"", control::list_flags_json(*s)}) : 2;
    };
  });
  auto* show = flag->add_subcommand("show", "a flag's definition, what it means to the gateway, owner and history");
  show->add_option("key", *key, "flag key")->required();
  add_common_options(show, *common);
  show->callback([=] {
    *runner = [=] {
      if (common->remote()) return remote_call(*common, "GET", "/admin/v1/flags/" + percent_encode(*key));
      auto s = open(*common);
      return s ? print(control::show_flag(*s, *key)) : 2;
    };
  });
  auto* set = flag->add_subcommand("set", "create or replace a flag (its definition as under flags.KEY in a flag file)");
  set->add_option("key", *key, "flag key")->required();
  auto* from_file = set->add_option("--file", *file, "the definition (JSON or YAML)");
  set->add_option("--json", *json, "the definition as text")->excludes(from_file);
  set->add_option("--reason", *reason, "why (audited)");
  add_common_options(set, *common);
  set->callback([=] {
    *runner = [=] {
      std::string def = *json;
      if (file->empty() == json->empty()) return print({"give the definition with --file FILE or --json TEXT", ""});
      if (!file->empty() && !read_file(*file, def)) return print({"cannot read " + *file, ""});
      if (common->remote())
        return remote_call(*common, "PUT", "/admin/v1/flags/" + percent_encode(*key),
                           "{\"definition\":" + json_str(def) + ",\"reason\":" + json_str(*reason) + "}");
      auto s = open(*common);
      return s ? print(control::set_flag(*s, *key, def, actor(), *reason)) : 2;
    };
  });
  for (const bool on : {true, false}) {
    auto* c = flag->add_subcommand(on ? "enable" : "disable",
                                   on ? "turn a flag on (state ENABLED)" : "turn a flag off (state DISABLED: callers get their default)");
    c->add_option("key", *key, "flag key")->required();
    c->add_option("--reason", *reason, "why (audited)");
    add_common_options(c, *common);
    c->callback([=] {
      *runner = [=] {
        if (common->remote())
          return remote_call(*common, "POST", "/admin/v1/flags/" + percent_encode(*key) + (on ? "/enable" : "/disable"),
                             reason_body(*reason));
        auto s = open(*common);
        if (!s) return 2;
        return print(on ? control::enable_flag(*s, *key, actor(), *reason) : control::disable_flag(*s, *key, actor(), *reason));
      };
    });
  }
  auto* del = flag->add_subcommand("delete", "remove a flag (callers get their default)");
  del->add_option("key", *key, "flag key")->required();
  del->add_option("--reason", *reason, "why (audited)");
  add_common_options(del, *common);
  del->callback([=] {
    *runner = [=] {
      if (common->remote()) return remote_call(*common, "DELETE", "/admin/v1/flags/" + percent_encode(*key), reason_body(*reason));
      auto s = open(*common);
      return s ? print(control::delete_flag(*s, *key, actor(), *reason)) : 2;
    };
  });
  auto* imp = flag->add_subcommand("import", "load a flagd flag file whole (refused whole on any error)");
  imp->add_option("file", *file, "flag file (JSON or YAML, flagd's format)")->required();
  imp->add_flag("--replace", *replace, "also delete every stored flag the file does not have (kill switches too)");
  imp->add_option("--reason", *reason, "why (audited)");
  add_common_options(imp, *common);
  imp->callback([=] {
    *runner = [=] {
      std::string text;
      if (!read_file(*file, text)) return print({"cannot read " + *file, ""});
      const std::string mode = *replace ? "replace" : "merge";
      if (common->remote())
        return remote_call(*common, "POST", "/admin/v1/flags/import",
                           "{\"file\":" + json_str(text) + ",\"replace\":" + (*replace ? "true" : "false") +
                               ",\"reason\":" + json_str(*reason) + "}");
      auto s = open(*common);
      return s ? print(control::import_flags(*s, text, mode, actor(), *reason)) : 2;
    };
  });
  auto* exp = flag->add_subcommand("export", "every stored flag as one flagd flag file");
  exp->add_option("--output", *output, "write it to this file (default: stdout)");
  add_common_options(exp, *common);
  exp->callback([=] { *runner = [=] { return export_file(*common, *output); }; });
  auto key_for_readout = std::make_shared<std::string>();
  auto* stale = flag->add_subcommand("stale", "flags to clean up: fully ramped, disabled, or unchanged for long");
  stale->add_option("--older-than", *older, "unchanged for longer than this: 90s, 30m, 1h, 30d (0: age not considered)");
  add_common_options(stale, *common);
  stale->callback([=] {
    *runner = [=] {
      const int64_t ms = parse_duration_ms(*older);
      if (ms < 0) return print({"--older-than expects 0 or e.g. 12h, 30d", ""});
      if (common->remote())
        return remote_call(*common, "GET", "/admin/v1/flags/stale?older_than_s=" + std::to_string(ms / 1000));
      auto s = open(*common);
      return s ? print({"", control::stale_flags_json(*s, ms, unix_millis())}) : 2;
    };
  });

  auto* readout = flag->add_subcommand("readout", "a release flag's experiment: each variant against the control (needs --admin)");
  readout->add_option("key", *key_for_readout, "release flag key")->required();
  add_common_options(readout, *common);
  readout->callback([=] {
    *runner = [=] {
      if (!common->remote())
        return print({"the readout lives in the running gateway: give --admin URL (or SLUICE_ADMIN_URL)", ""});
      return remote_call(*common, "GET", "/admin/v1/flags/" + percent_encode(*key_for_readout) + "/readout");
    };
  });

  // sluice kill ...: one command per kill switch, each a flag (kill.*) the gateway acts on.
  auto route = std::make_shared<std::string>(), tool = std::make_shared<std::string>();
  auto mode = std::make_shared<std::string>("block");
  auto* kill = app.add_subcommand("kill", "kill switches: block a route, strip a tool, stop shadow traffic, hold rollouts");
  kill->require_subcommand(1);
  auto* kroute = kill->add_subcommand("route", "block a route, send it to its fallback chain or its static answer");
  kroute->add_option("route", *route, "route name (\"*\": every route)")->required();
  kroute->add_option("--mode", *mode, "block | fallback | static | off (default block)");
  kroute->add_option("--reason", *reason, "why (audited; the kill switch's purpose)");
  add_common_options(kroute, *common);
  kroute->callback([=] {
    *runner = [=] {
      if (common->remote())
        return remote_call(*common, "POST", "/admin/v1/kill/route",
                           "{\"route\":" + json_str(*route) + ",\"mode\":" + json_str(*mode) + ",\"reason\":" +
                               json_str(*reason) + "}");
      auto s = open(*common);
      return s ? print(control::kill_route(*s, *route, *mode, actor(), *reason)) : 2;
    };
  });
  auto* ktool = kill->add_subcommand("tool", "strip a tool from a route's requests");
  ktool->add_option("route", *route, "route name (\"*\": every route)")->required();
  ktool->add_option("tool", *tool, "tool (function) name")->required();
  ktool->add_option("--reason", *reason, "why (audited; the kill switch's purpose)");
  add_common_options(ktool, *common);
  ktool->callback([=] {
    *runner = [=] {
      if (common->remote())
        return remote_call(*common, "POST", "/admin/v1/kill/tool",
                           "{\"route\":" + json_str(*route) + ",\"tool\":" + json_str(*tool) + ",\"reason\":" +
                               json_str(*reason) + "}");
      auto s = open(*common);
      return s ? print(control::kill_tool(*s, *route, *tool, actor(), *reason)) : 2;
    };
  });
  auto* kshadow = kill->add_subcommand("shadow", "stop shadow (mirrored) traffic of a route, or of every route");
  kshadow->add_option("route", *route, "route name (default: every route)");
  kshadow->add_option("--reason", *reason, "why (audited; the kill switch's purpose)");
  add_common_options(kshadow, *common);
  kshadow->callback([=] {
    *runner = [=] {
      if (common->remote())
        return remote_call(*common, "POST", "/admin/v1/kill/shadow",
                           "{\"route\":" + json_str(*route) + ",\"reason\":" + json_str(*reason) + "}");
      auto s = open(*common);
      return s ? print(control::kill_shadow(*s, *route, actor(), *reason)) : 2;
    };
  });
  auto* krollouts = kill->add_subcommand("rollouts", "hold every running rollout where it is");
  krollouts->add_option("--reason", *reason, "why (audited; the kill switch's purpose)");
  add_common_options(krollouts, *common);
  krollouts->callback([=] {
    *runner = [=] {
      if (common->remote()) return remote_call(*common, "POST", "/admin/v1/kill/rollouts", reason_body(*reason));
      auto s = open(*common);
      return s ? print(control::kill_rollouts(*s, actor(), *reason)) : 2;
    };
  });
  auto* kclear = kill->add_subcommand("clear", "turn a kill switch off (the flag stays, DISABLED)");
  kclear->add_option("key", *key, "the kill switch's key (sluice kill list)")->required();
  kclear->add_option("--reason", *reason, "why (audited)");
  add_common_options(kclear, *common);
  kclear->callback([=] {
    *runner = [=] {
      if (common->remote())
        return remote_call(*common, "POST", "/admin/v1/kill/clear",
                           "{\"key\":" + json_str(*key) + ",\"reason\":" + json_str(*reason) + "}");
      auto s = open(*common);
      return s ? print(control::kill_clear(*s, *key, actor(), *reason)) : 2;
    };
  });
  auto* klist = kill->add_subcommand("list", "every kill switch and whether it is on");
  add_common_options(klist, *common);
  klist->callback([=] {
    *runner = [=] {
      if (common->remote()) return remote_call(*common, "GET", "/admin/v1/kill");
      auto s = open(*common);
      return s ? print({"", control::kills_json(*s)}) : 2;
    };
  });

  return [runner] { return *runner ? (*runner)() : -1; };
}

}  // namespace sluice::cli
