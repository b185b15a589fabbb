#include "pipeline/stages.hpp"

#include <simdjson.h>

#include "core/crypto.hpp"
#include "core/hash.hpp"
#include "core/strings.hpp"
#include "cache/response_cache.hpp"
#include "json/splice.hpp"

namespace sluice::pipeline {

namespace {
constexpr std::string_view kIncludeUsage = "{\"include_usage\":true}";
}  // namespace

std::optional<ApiError> authenticate(RequestContext& ctx, Env&) {
  if (!ctx.snap->requires_api_key()) return std::nullopt;
  std::string_view h = ctx.authorization;
  if (h.empty()) return unauthorized("Missing API key: send 'Authorization: Bearer <key>'.");
  if (h.size() < 7 || !iequals(h.substr(0, 7), "bearer ")) return unauthorized("Authorization must be 'Bearer <key>'.");
  std::string_view key = trim(h.substr(7));
  const std::string* tenant = ctx.snap->tenant_for_key_hash(sha256_hex(key), unix_millis());
  if (!tenant) return unauthorized("Incorrect API key provided.");
  ctx.tenant = *tenant;
  return std::nullopt;
}

namespace {
// A Responses request passes through untranslated when everything that may serve its route
// serves the Responses API itself: a plain route (no release, whose prompt is a chat prompt;
// no rollout; no fallback chain) whose targets all say `responses: true`.
bool served_natively(RequestContext& ctx, Env& env) {
  simdjson::dom::element doc;
  std::string_view model;
  if (env.json.parse(*ctx.body).get(doc) || doc["model"].get_string().get(model)) return false;
  const config::Resolution* r = ctx.snap->resolve(model);
  if (!r || r->release || r->live || r->fallback || r->upstreams.empty()) return false;
  const auto& ups = ctx.snap->upstreams();
  for (const auto* list : {&r->upstreams, &r->long_targets})
    for (size_t i : *list)
      if (!ups[i].cfg->responses) return false;
  return true;
}
}  // namespace

// A passed-through Responses request reaches state the provider keeps under the gateway's
// one key, shared by every tenant: only a tenant's own earlier responses may be continued
// (the relay records who owns each id), and provider-side stores are not reachable.
std::optional<ApiError> passthrough_checks(RequestContext& ctx, Env& env) {
  simdjson::dom::element doc;
  if (env.json.parse(*ctx.body).get(doc)) return std::nullopt;  // the upstream answers a bad body
  auto refuse = [](std::string what, std::string param) {
    ApiError e = bad_request(what + " is not passed through: the provider keeps it under the gateway's key, shared by "
                                    "every tenant", "unsupported_parameter");
    e.param = std::move(param);
    return e;
  };
  for (const char* k : {"conversation", "prompt"}) {
    simdjson::dom::element v;
    if (!doc[k].get(v) && !v.is_null()) return refuse(std::string("'") + k + "'", k);
  }
  bool background = false;
  if (!doc["background"].get_bool().get(background) && background) return refuse("'background: true'", "background");
  simdjson::dom::array tools;
  if (!doc["tools"].get_array().get(tools)) {
    size_t i = 0;
    for (simdjson::dom::element t : tools) {
      std::string_view type;
      if (!t["type"].get_string().get(type) && type == "file_search")
        return refuse("a file_search tool", "tools[" + std::to_string(i) + "].type");
      ++i;
    }
  }
  std::string_view prev;
  if (!doc["previous_response_id"].get_string().get(prev)) {
    auto owner = env.responses.cache ? env.responses.cache->get(bridge::owner_key(prev), unix_millis()) : std::nullopt;
    if (!owner || *owner != ctx.tenant) {
      ApiError e = bad_request("Previous response with id '" + std::string(prev) + "' not found.",
                               "previous_response_not_found");
      e.param = "previous_response_id";
      return e;
    }
  }
  return std::nullopt;
}

std::optional<ApiError> translate(RequestContext& ctx, Env& env) {
  if (ctx.api == bridge::Api::kChat) return std::nullopt;
  if (ctx.api == bridge::Api::kResponses && served_natively(ctx, env)) {
    ctx.endpoint = Endpoint::kResponses;
    return passthrough_checks(ctx, env);
  }
  const bridge::OpenContext oc{ctx.request_id, ctx.tenant, unix_millis(), env.responses};
  bridge::Opened opened;
  auto err = ctx.api == bridge::Api::kResponses ? bridge::open_responses(env.json, *ctx.body, oc, opened)
                                                : bridge::open_messages(env.json, *ctx.body, oc, opened);
  if (err) return err;
  // Stored history and item references make the translated body larger than the client's:
  // it is bounded as a client's body is.
  if (const int64_t max = ctx.snap->config().limits.max_body_bytes;
      static_cast<int64_t>(opened.chat_body.size()) > max)
    return payload_too_large("the request with its stored conversation is larger than max_body_bytes (" +
                             std::to_string(max) + " bytes)");
  *ctx.body = std::move(opened.chat_body);
  ctx.front = std::move(opened.front);
  return std::nullopt;
}

std::optional<ApiError> parse(RequestContext& ctx, Env& env) {
  if (ctx.endpoint == Endpoint::kModels) return std::nullopt;
  std::string& body = *ctx.body;
  if (body.empty()) return bad_request("request body is empty; expected a JSON object", "invalid_json");
  if (auto p = json::inspect_request(env.json, body, body.capacity(), ctx.info)) {
    ApiError e = bad_request(std::move(p->message), std::move(p->code));
    e.param = std::move(p->param);
    return e;
  }
  // Estimates add max_tokens to other counts: a value no model allows cannot overflow them.
  ctx.info.max_tokens = std::min<int64_t>(ctx.info.max_tokens, int64_t(1) << 30);
  if (ctx.info.model.empty()) {
    ApiError e = bad_request("you must provide a model parameter", "missing_model");
    e.param = "model";
    return e;
  }
  if (ctx.endpoint == Endpoint::kChat && ctx.info.messages == 0) {
    ApiError e = bad_request("'messages' must be a non-empty array", "missing_messages");
    e.param = "messages";
    return e;
  }
  return std::nullopt;
}

std::optional<ApiError> admit(RequestContext& ctx, Env& env) {
  if (env.metrics.inflight.load(std::memory_order_relaxed) > env.max_inflight)
    return error_of(ErrorKind::kOverloaded, "The gateway is overloaded; retry shortly.");
  // The request's tier: its tenant's, or lower by x-sluice-priority, never higher.
  const config::Tenant* t = ctx.tenant.empty() ? nullptr : ctx.snap->tenant_limits(ctx.tenant);
  ctx.tenant_cfg = t;
  ctx.tenant_resolved = true;
  admission::Tier tier = t ? t->tier : admission::Tier::kStandard;
  std::string_view asked = ctx.header ? ctx.header("x-sluice-priority") : std::string_view();
  if (!asked.empty()) {
    auto want = admission::tier_from_name(asked);
    if (!want) {
      ApiError e = bad_request("x-sluice-priority must be critical, standard or sheddable", "invalid_priority");
      e.param = "x-sluice-priority";
      return e;
    }
    if (static_cast<int>(*want) < static_cast<int>(tier)) {
      ApiError e = bad_request(std::string("x-sluice-priority may lower a request's tier, never raise it: this key's tier is ") +
                                   admission::tier_name(tier),
                               "invalid_priority");
      e.param = "x-sluice-priority";
      return e;
    }
    tier = *want;
  }
  ctx.tier = tier;
  ctx.tier_set = true;
  return std::nullopt;
}

// Sticky assignment: the same user (body "user", else the session header) lands in the same
// bucket for the whole rollout, so raising the weight only adds users and a conversation
// never flips between releases. Requests with neither are assigned per request.
void assign_arm(RequestContext& ctx) {
  const config::RolloutLive& live = *ctx.resolution->live;
  ctx.capture = true;
  std::string_view key = ctx.info.user;
  if (key.empty() && ctx.header && !live.sticky_header.empty()) key = ctx.header(live.sticky_header);
  const bool sticky = !key.empty();
  if (!sticky) key = ctx.request_id;
  uint64_t h = mix64(std::hash<std::string_view>{}(key) ^ live.salt);
  uint32_t weight = live.weight_bp.load(std::memory_order_relaxed);
  if (weight > 0 && h % 10000 < weight) {
    ctx.rollout.candidate = true;
    ctx.rollout.fallback_body = *ctx.body;  // the stable release answers if the candidate cannot
    return;
  }
  uint32_t shadow = live.shadow_bp.load(std::memory_order_relaxed);
  if (shadow == 0 || (ctx.info.has_tools && !live.mirror_tools)) return;
  // Mirroring is sampled per request (not per user): independent of the sticky bucket.
  uint64_t r = mix64(std::hash<std::string_view>{}(ctx.request_id) ^ ~live.salt);
  if (r % 10000 < shadow) {
    ctx.rollout.shadow = true;
    ctx.rollout.shadow_body = *ctx.body;  // the render stage rewrites the body in place
  }
}

std::optional<ApiError> route(RequestContext& ctx, Env&) {
  if (ctx.endpoint == Endpoint::kModels) {
    ctx.resolution = ctx.snap->resolve("");
    return std::nullopt;
  }
  ctx.resolution = ctx.snap->resolve(ctx.info.model);
  if (!ctx.resolution)
    return not_found("The model '" + ctx.info.model + "' does not exist or you do not have access to it.",
                     "model_not_found");
  // Rewrite the body only where needed; every other byte goes upstream as the client sent it.
  std::vector<json::Edit> edits;
  std::string model_literal;
  // A release route's model is set by the render stage together with its prompt.
  if (!ctx.resolution->release && !ctx.resolution->upstream_model.empty() &&
      ctx.resolution->upstream_model != ctx.info.model) {
    append_json_string(model_literal, ctx.resolution->upstream_model);
    edits.push_back({"model", model_literal});
  }
  // Ask for usage on streams so tokens are accounted; the relay strips it again if the
  // client did not ask for it.
  if ((ctx.endpoint == Endpoint::kChat || ctx.endpoint == Endpoint::kCompletions) && ctx.info.stream &&
      !ctx.info.has_stream_options) {
    ctx.strip_usage = true;
    // A release route's render stage adds it to its own splice: one pass over the body.
    if (!ctx.resolution->release) edits.push_back({"stream_options", kIncludeUsage});
  }
  if (!edits.empty()) {
    auto spliced = json::splice_members(*ctx.body, edits);
    if (!spliced) return bad_request("request body is not a JSON object", "invalid_json");
    *ctx.body = std::move(*spliced);
  }
  if (ctx.resolution->live && ctx.endpoint == Endpoint::kChat) assign_arm(ctx);
  return std::nullopt;
}

std::optional<ApiError> render(RequestContext& ctx, Env& env) {
  if (!ctx.resolution || !ctx.resolution->release) return std::nullopt;
  ctx.release = ctx.flags.pinned        ? ctx.flags.pinned->release.get()
                : ctx.rollout.candidate ? ctx.resolution->candidate.get()
                                        : ctx.resolution->release.get();
  if (ctx.endpoint == Endpoint::kCompletions)
    return bad_request("model '" + ctx.info.model +
                           "' is served by a release, whose prompt is a chat prompt: call /v1/chat/completions",
                       "unsupported_endpoint");
  if (ctx.endpoint != Endpoint::kChat) return std::nullopt;
  std::vector<json::Edit> extra;
  if (ctx.strip_usage) extra.push_back({"stream_options", kIncludeUsage});
  return release::render(*ctx.release, *ctx.body, ctx.vars_header, env.json, extra);
}

std::optional<ApiError> select_upstream(RequestContext& ctx, Env&) {
  if (!ctx.resolution || ctx.resolution->upstreams.empty())
    return not_found("no upstream serves this model", "model_not_found");
  const config::Resolution& res = *ctx.resolution;
  ctx.long_context = false;
  if (ctx.flags.pinned) {
    ctx.candidates = ctx.flags.pinned->upstreams;
    ctx.balance = ctx.flags.pinned->balance;
  } else if (ctx.rollout.candidate) {
    ctx.balance = res.candidate_balance;
    ctx.candidates = ctx.resolution->candidate_upstreams;
    // When did the candidate last get a request: measures how fast a rollback takes effect.
    ctx.resolution->live->last_candidate_start_ns.store(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count(),
        std::memory_order_relaxed);
  } else if (!res.long_targets.empty() && ctx.body && ctx.body->size() > res.long_above_bytes) {
    // A long prompt: its own targets, so it cannot queue short requests behind it.
    ctx.candidates = res.long_targets;
    ctx.balance = res.long_balance;
    ctx.long_context = true;
  } else {
    ctx.candidates = res.upstreams;
    ctx.balance = res.balance;
  }
  return std::nullopt;
}

metrics::RequestSample to_sample(const RequestContext& ctx, Clock::time_point t_end) {
  metrics::RequestSample s;
  s.route = ctx.resolution ? std::string_view(ctx.resolution->route) : std::string_view();
  s.release = ctx.release ? std::string_view(ctx.release->id) : std::string_view();
  s.upstream = ctx.upstream;
  s.status = ctx.status;
  s.latency_s = std::chrono::duration<double>(t_end - ctx.t_start).count();
  if (ctx.streamed && ctx.t_first_token != Clock::time_point{}) {
    s.ttft_s = std::chrono::duration<double>(ctx.t_first_token - ctx.t_start).count();
    int64_t n = ctx.tokens_out > 0 ? ctx.tokens_out : ctx.content_chunks;
    if (n > 1) s.tpot_s = std::chrono::duration<double>(ctx.t_last_token - ctx.t_first_token).count() / double(n - 1);
  }
  s.tokens_in = ctx.tokens_in;
  s.tokens_out = ctx.tokens_out;
  s.tenant = ctx.tenant;
  s.cost_usd = ctx.cost_usd;
  return s;
}

std::string request_log_line(const RequestContext& ctx, Clock::time_point t_end) {
  std::string l;
  l.reserve(320);
  l += "{\"ts\":" + std::to_string(unix_millis());
  l += ",\"request_id\":";
  append_json_string(l, ctx.request_id);
  l += ",\"tenant\":";
  append_json_string(l, ctx.tenant);
  l += ",\"route\":";
  append_json_string(l, ctx.resolution ? ctx.resolution->route : std::string());
  l += ",\"model\":";
  append_json_string(l, ctx.info.model);
  l += ",\"upstream\":";
  append_json_string(l, ctx.upstream);
  if (ctx.api == bridge::Api::kResponses)
    l += ctx.front ? ",\"api\":\"responses\",\"bridged\":true" : ",\"api\":\"responses\",\"bridged\":false";
  if (ctx.api == bridge::Api::kMessages) l += ",\"api\":\"messages\"";
  if (ctx.resolution && ctx.resolution->live && !ctx.flags.pinned) {
    l += ",\"rollout\":";
    append_json_string(l, ctx.resolution->live->id);
    l += ctx.rollout.candidate ? ",\"arm\":\"candidate\"" : ",\"arm\":\"stable\"";
  }
  if (!ctx.flags.applied.empty()) {
    l += ",\"flags\":";
    append_json_string(l, ctx.flags.applied);
  }
  if (ctx.release) {
    l += ",\"release\":";
    append_json_string(l, ctx.release->id);
    l += ",\"prompt\":";
    append_json_string(l, ctx.release->prompt_hash);
    l += ",\"upstream_model\":";
    append_json_string(l, ctx.release->model_id);
    l += ",\"adapter\":";
    append_json_string(l, ctx.release->adapter);
    l += ",\"index_version\":";
    append_json_string(l, ctx.release->index_version);
  } else {
    l += ",\"release\":null,\"prompt\":null";
  }
  if (!ctx.fallback.empty()) {
    l += ",\"fallback\":";
    append_json_string(l, ctx.fallback);
  }
  if (!ctx.cache.outcome.empty()) {
    l += ",\"cache\":";
    append_json_string(l, ctx.cache.outcome);
  }
  if (ctx.long_context) l += ",\"long_context\":true";
  if (ctx.tier_set) l += std::string(",\"tier\":\"") + admission::tier_name(ctx.tier) + "\"";
  if (!ctx.resumed.empty()) {
    l += ",\"resumed\":";
    append_json_string(l, ctx.resumed);
  }
  if (ctx.fallback == "static" || ctx.fallback == "cache") l += ",\"degraded\":\"" + ctx.fallback + "\"";
  l += ",\"status\":" + std::to_string(ctx.status);
  l += ctx.info.stream ? ",\"stream\":true" : ",\"stream\":false";
  l += ",\"attempts\":" + std::to_string(ctx.attempts);
  l += ",\"tokens_in\":" + (ctx.tokens_in >= 0 ? std::to_string(ctx.tokens_in) : std::string("null"));
  l += ",\"tokens_out\":" + (ctx.tokens_out >= 0 ? std::to_string(ctx.tokens_out) : std::string("null"));
  if (ctx.tokens_cached >= 0) l += ",\"tokens_cached\":" + std::to_string(ctx.tokens_cached);
  if (ctx.cost_usd >= 0) l += ",\"cost_usd\":" + num_text(ctx.cost_usd, 9);
  if (ctx.t_first_token != Clock::time_point{}) {
    l += ",\"ttft_ms\":" + std::to_string(micros_between(ctx.t_start, ctx.t_first_token) / 1000.0);
  } else {
    l += ",\"ttft_ms\":null";
  }
  l += ",\"total_ms\":" + std::to_string(micros_between(ctx.t_start, t_end) / 1000.0);
  l += ",\"error_kind\":";
  if (ctx.error_code.empty()) {
    l += "null";
  } else {
    append_json_string(l, ctx.error_code);
  }
  if (!ctx.log_body.empty()) {
    l += ",\"request_body\":";
    append_json_string(l, ctx.log_body);
    l += ",\"response_text\":";
    append_json_string(l, ctx.answer);
  }
  l += "}";
  return l;
}

}  // namespace sluice::pipeline
