#include "cli/flag_cmds.hpp"

#include <fstream>
#include <iostream>
#include <sstream>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "flags/flagd.hpp"

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
std::string evaluation_json(const flags::Evaluation& e) {
  std::string out = "{\"key\":";
  append_json_string(out, e.flag->key);
  out += ",\"reason\":\"" + std::string(flags::reason_name(e.reason)) + "\"";
  if (e.has_value) {
    out += ",\"variant\":";
    append_json_string(out, e.variant);
    out += ",\"value\":";
    flags::append_json(out, e.value);
  }
  if (e.error != flags::ErrorCode::kNone) out += ",\"errorCode\":\"" + std::string(flags::error_name(e.error)) + "\"";
  return out + "}";
}

// `sluice flag eval FILE`: evaluates every flag of a flag file for each context (one JSON
// object per line on stdin, or --context), one result per flag and context on stdout.
int eval_file(const std::string& path, const std::string& context, int64_t now_s) {
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
    std::string out;
    for (const auto& f : file->flags) {
      out += evaluation_json(flags::evaluate(f, *ctx, now_s));
      out += '\n';
    }
    std::cout << out;
  };
  if (!context.empty()) {
    run(context);
    return 0;
  }
  std::string line;
  while (std::getline(std::cin, line))
    if (!line.empty()) run(line);
  return 0;
}

}  // namespace

std::function<int()> add_flag_commands(CLI::App& app) {
  auto runner = std::make_shared<std::function<int()>>();
  auto* flag = app.add_subcommand("flag", "feature flags (flagd's format): list, show, set, enable, disable, import, export, eval");
  flag->require_subcommand(1);

  auto file = std::make_shared<std::string>(), context = std::make_shared<std::string>();
  auto now = std::make_shared<int64_t>(0);
  auto* eval = flag->add_subcommand("eval", "evaluate a flag file's flags for contexts (JSON lines on stdin)");
  eval->add_option("file", *file, "flag file (JSON or YAML, flagd's format)")->required();
  eval->add_option("--context", *context, "one evaluation context (JSON object) instead of stdin");
  eval->add_option("--now", *now, "$flagd.timestamp to use (Unix seconds; default: now)");
  eval->callback([=] { *runner = [=] { return eval_file(*file, *context, *now); }; });

  return [runner] { return *runner ? (*runner)() : -1; };
}

}  // namespace sluice::cli
