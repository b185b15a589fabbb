// The flags filter: the gateway's own flags (flags/flagset.hpp), evaluated server-side from
// the authenticated tenant, the route and the request attributes the operator allows, after
// the route stage and before render:
//   - route kill switches: block the route (a clear 503 that tells SDKs not to retry), send it
//     straight to its fallback chain, or answer with its static degraded answer;
//   - tool kill switches: the tool is stripped from the request;
//   - the release flag: a variant naming a release pins the request to it, before (instead
//     of) the rollout's weights;
//   - shadow kill switches: no mirror.
// Every flag that acted is named in x-sluice-flags and the request log ("flag=variant").
#include "pipeline/flags_filter.hpp"

#include <simdjson.h>

#include "core/clock.hpp"
#include "json/splice.hpp"
#include "pipeline/filters.hpp"
#include "pipeline/synth.hpp"
#include "rollout/experiment.hpp"

namespace sluice::pipeline {

namespace {

std::string_view api_name(const RequestContext& ctx) {
  if (ctx.api == bridge::Api::kResponses) return "responses";
  if (ctx.api == bridge::Api::kMessages) return "messages";
  switch (ctx.endpoint) {
    case Endpoint::kCompletions:
      return "completions";
    case Endpoint::kEmbeddings:
      return "embeddings";
    default:
      return "chat";
  }
}

void note(RequestContext& ctx, const flags::Evaluation& e) {
  if (!ctx.flags.applied.empty()) ctx.flags.applied += ',';
  ctx.flags.applied += e.flag->key;
  ctx.flags.applied += '=';
  ctx.flags.applied += e.variant;
}

// A boolean kill switch is on for this request.
bool on(const flags::Evaluation& e) { return e.has_value && e.value.is_bool() && e.value.b; }

// Removes the named tools from a chat request's `tools` (and a tool_choice that names one);
// a request left without tools loses tools, tool_choice and parallel_tool_calls.
std::optional<ApiError> strip_tools(RequestContext& ctx, Env& env, const std::vector<std::string>& names) {
  auto members = json::top_level_members(*ctx.body);
  if (!members) return std::nullopt;
  std::string_view tools_raw, choice_raw;
  for (const auto& m : *members) {
    if (m.key == "tools") tools_raw = m.value;
    if (m.key == "tool_choice") choice_raw = m.value;
  }
  if (tools_raw.empty()) return std::nullopt;
  simdjson::padded_string padded(tools_raw);
  simdjson::dom::element arr;
  if (env.json.parse(padded).get(arr) || !arr.is_array()) return std::nullopt;
  auto killed = [&](std::string_view fn) {
    for (const auto& n : names)
      if (n == fn) return true;
    return false;
  };
  std::string kept = "[";
  size_t left = 0, removed = 0;
  for (auto tool : simdjson::dom::array(arr)) {
    std::string_view fn;
    if (tool["function"]["name"].get(fn) == simdjson::SUCCESS && killed(fn)) {
      ++removed;
      continue;
    }
    if (left++) kept += ',';
    kept += simdjson::to_string(tool);
  }
  if (removed == 0) return std::nullopt;
  kept += ']';
  bool choice_killed = false;
  if (!choice_raw.empty() && choice_raw.front() == '{') {
    simdjson::padded_string pc(choice_raw);
    simdjson::dom::element c;
    std::string_view fn;
    if (!env.json.parse(pc).get(c) && c["function"]["name"].get(fn) == simdjson::SUCCESS) choice_killed = killed(fn);
  }
  std::vector<json::Edit> edits;
  if (left == 0) {
    edits = {{"tools", ""}, {"tool_choice", ""}, {"parallel_tool_calls", ""}};
  } else {
    edits.push_back({"tools", kept});
    if (choice_killed) edits.push_back({"tool_choice", "\"auto\""});
  }
  auto spliced = json::splice_members(*ctx.body, edits);
  if (spliced) *ctx.body = std::move(*spliced);
  if (left == 0) ctx.info.has_tools = false;
  return std::nullopt;
}

class FlagsFilter final : public Filter {
 public:
  std::string_view name() const override { return "flags"; }
  unsigned hooks() const override { return kOnRequest | kOnComplete; }
  void on_complete(RequestContext& ctx, Clock::time_point t_end, Env& env) const override {
    if (!ctx.flags.experiment || !env.experiments || !says_something_about_release(ctx)) return;
    env.experiments->add(ctx.flags.experiment->key, ctx.snap->flags().fingerprint(ctx.flags.experiment),
                         ctx.flags.variant, ctx.request_id, observe(ctx, t_end));
  }
  Verdict on_request(RequestContext& ctx, Env& env) const override {
    if (!ctx.resolution || ctx.resolution->route.empty()) return Verdict::next();
    const flags::FlagSet& set = ctx.snap->flags();
    const std::string& route = ctx.resolution->route;
    const auto& kills = set.route_kills(route);
    const flags::Flag* release_flag = set.release_flag(route);
    const auto& shadow_kills = set.shadow_kills(route);
    if (kills.empty() && !release_flag && (shadow_kills.empty() || !ctx.rollout.shadow)) return Verdict::next();

    const flags::Value context = request_context(ctx);
    const int64_t now_s = unix_millis() / 1000;
    std::vector<std::string> tools;
    for (const flags::Flag* f : kills) {
      flags::Evaluation e = flags::evaluate(*f, context, now_s);
      if (!e.has_value) continue;
      const flags::Role& role = set.role(f);
      if (role.kind == flags::Kind::kKillTool) {
        if (on(e) && ctx.endpoint == Endpoint::kChat && ctx.info.has_tools) {
          tools.push_back(role.tool);
          note(ctx, e);
        }
        continue;
      }
      auto mode = e.value.is_string() ? flags::route_kill_mode(e.value.s) : std::nullopt;
      if (!mode || *mode == flags::RouteKill::kOff) continue;
      note(ctx, e);
      if (auto v = kill_route(ctx, *mode, f->key)) return std::move(*v);
    }
    if (!tools.empty()) strip_tools(ctx, env, tools);
    if (release_flag) {
      flags::Evaluation e = flags::evaluate(*release_flag, context, now_s);
      if (e.has_value) {
        ctx.flags.experiment = release_flag;  // every variant, pinned or not, is an arm
        ctx.flags.variant = e.variant;
        ctx.capture = true;  // refusals are read from the answer
      }
      if (e.has_value && e.value.is_string() && !e.value.s.empty()) {
        if (const config::PinnedRelease* p = ctx.resolution->pinned_release(e.value.s)) {
          ctx.flags.pinned = p;
          ctx.rollout = RolloutState{};  // a pinned request is no rollout's: the flag decided before the weights
          note(ctx, e);
        }
      }
    }
    if (ctx.rollout.shadow) {
      for (const flags::Flag* f : shadow_kills) {
        flags::Evaluation e = flags::evaluate(*f, context, now_s);
        if (on(e)) {
          ctx.rollout.shadow = false;
          ctx.rollout.shadow_body.clear();
          note(ctx, e);
          break;
        }
      }
    }
    if (!ctx.flags.applied.empty()) ctx.response_headers.emplace_back("x-sluice-flags", ctx.flags.applied);
    return Verdict::next();
  }

 private:
  static std::optional<Verdict> kill_route(RequestContext& ctx, flags::RouteKill mode, const std::string& key) {
    const config::CompiledFallback* fb = ctx.resolution->fallback;
    const std::string& route = ctx.resolution->route;
    if (mode == flags::RouteKill::kFallback) {
      if (fb && !fb->steps.empty()) {
        ctx.flags.force_fallback = true;
        return std::nullopt;
      }
    } else if (mode == flags::RouteKill::kStatic) {
      if (fb && ctx.endpoint == Endpoint::kChat)
        for (const auto& step : fb->steps)
          if (step.targets.empty() && !step.last_good) {
            ctx.fallback = step.label;
            Reply r;
            r.body = static_answer(ctx, step.static_text);
            r.content_type = ctx.info.stream ? "text/event-stream" : "application/json";
            r.headers = {{"x-sluice-fallback", step.label}, {"x-sluice-degraded", step.label},
                         {"x-sluice-flags", ctx.flags.applied}};
            return Verdict::answer(std::move(r));
          }
    }
    std::string why = mode == flags::RouteKill::kBlock ? std::string()
                      : mode == flags::RouteKill::kFallback
                          ? " (it asks for the route's fallback chain, and the route has none)"
                          : " (it asks for the route's static answer, and the route's fallback chain has none)";
    ApiError e = unavailable("The model '" + route + "' is switched off by kill switch '" + key + "'" + why +
                                 ". Do not retry until it is switched back on.",
                             "route_disabled");
    ctx.response_headers.emplace_back("x-should-retry", "false");
    ctx.response_headers.emplace_back("x-sluice-flags", ctx.flags.applied);
    return Verdict::fail(std::move(e));
  }
};

const FlagsFilter kFlags;

}  // namespace

flags::Value request_context(const RequestContext& ctx) {
  flags::Object o;
  const std::string& key = !ctx.info.user.empty() ? ctx.info.user : ctx.tenant;
  if (!key.empty()) o.emplace_back("targetingKey", flags::Value::string(key));
  o.emplace_back("tenant", flags::Value::string(ctx.tenant));
  if (ctx.resolution) o.emplace_back("route", flags::Value::string(ctx.resolution->route));
  o.emplace_back("model", flags::Value::string(ctx.info.model));
  o.emplace_back("api", flags::Value::string(std::string(api_name(ctx))));
  if (!ctx.info.user.empty()) o.emplace_back("user", flags::Value::string(ctx.info.user));
  if (ctx.header)
    for (const auto& h : ctx.snap->config().flags.context_headers) {
      std::string_view v = ctx.header(h);
      if (!v.empty()) o.emplace_back(h, flags::Value::string(std::string(v)));
    }
  return flags::Value::object(std::move(o));
}

const Filter& flags_filter() { return kFlags; }

}  // namespace sluice::pipeline
