#include "pipeline/synth.hpp"

#include <simdjson.h>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "json/splice.hpp"

namespace sluice::pipeline {

// An answer sluice writes itself (a static degraded answer, a cache hit replayed as a
// stream) as a chat completion or its stream, in OpenAI's shape. `content` and `usage` are
// JSON literals.
std::string synth_answer(const RequestContext& ctx, std::string_view content, std::string_view finish,
                         std::string_view usage) {
  std::string id = "chatcmpl-" + ctx.request_id, model, fin;
  append_json_string(model, ctx.info.model);
  append_json_string(fin, finish);
  const std::string created = std::to_string(unix_millis() / 1000);
  if (!ctx.info.stream) return completion_json(ctx, content, finish, usage);
  auto chunk = [&](const std::string& delta, const std::string& finish_json) {
    return "data: {\"id\":\"" + id + "\",\"object\":\"chat.completion.chunk\",\"created\":" + created + ",\"model\":" +
           model + ",\"choices\":[{\"index\":0,\"delta\":" + delta + ",\"logprobs\":null,\"finish_reason\":" + finish_json +
           "}]}\n\n";
  };
  std::string out = chunk("{\"role\":\"assistant\",\"content\":\"\"}", "null");
  out += chunk("{\"content\":" + std::string(content) + "}", "null");
  out += chunk("{}", fin);
  if (ctx.info.include_usage)
    out += "data: {\"id\":\"" + id + "\",\"object\":\"chat.completion.chunk\",\"created\":" + created + ",\"model\":" +
           model + ",\"choices\":[],\"usage\":" + std::string(usage) + "}\n\n";
  return out + "data: [DONE]\n\n";
}

std::string completion_json(const RequestContext& ctx, std::string_view content, std::string_view finish,
                            std::string_view usage) {
  std::string model, fin;
  append_json_string(model, ctx.info.model);
  append_json_string(fin, finish);
  return "{\"id\":\"chatcmpl-" + ctx.request_id + "\",\"object\":\"chat.completion\",\"created\":" +
         std::to_string(unix_millis() / 1000) + ",\"model\":" + model +
         ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":" + std::string(content) +
         ",\"refusal\":null},\"logprobs\":null,\"finish_reason\":" + fin + "}],\"usage\":" + std::string(usage) + "}";
}

std::optional<std::string> continuation_request(simdjson::dom::parser& p, const std::string& body,
                                                std::string_view answer_so_far) {
  simdjson::dom::element doc;
  simdjson::dom::array msgs;
  if (p.parse(body).get(doc) || doc["messages"].get_array().get(msgs)) return std::nullopt;
  std::string m = simdjson::minify(msgs);
  if (m.size() < 2 || m.back() != ']') return std::nullopt;
  m.pop_back();
  if (m.size() > 1) m += ",";
  m += "{\"role\":\"assistant\",\"content\":";
  append_json_string(m, answer_so_far);
  m += "}]";
  return json::splice_members(body, {{"messages", m}, {"continue_final_message", "true"}, {"add_generation_prompt", "false"}});
}

std::string static_answer(const RequestContext& ctx, std::string_view text) {
  std::string content;
  append_json_string(content, text);
  return synth_answer(ctx, content, "stop", "{\"prompt_tokens\":0,\"completion_tokens\":0,\"total_tokens\":0}");
}

// Whether a rendered request is deterministic enough to cache: temperature 0, or a seed.
bool deterministic(simdjson::dom::parser& p, const std::string& body) {
  simdjson::dom::element doc;
  if (p.parse(body).get(doc)) return false;
  double t = 1;
  if (!doc["seed"].error() && !doc["seed"].is_null()) return true;
  return !doc["temperature"].get_double().get(t) && t == 0;
}

// A cached whole completion as the stream a streaming client asked for: its first choice's
// text, finish reason and usage. Empty when it cannot be replayed (tool calls, n > 1).
std::string replay_as_stream(simdjson::dom::parser& p, const RequestContext& ctx, const std::string& cached) {
  simdjson::dom::element doc;
  if (p.parse(cached).get(doc)) return "";
  simdjson::dom::array choices;
  if (doc["choices"].get_array().get(choices) || choices.size() != 1) return "";
  std::string_view text, finish = "stop";
  if (choices.at(0)["message"]["content"].get_string().get(text)) return "";
  (void)choices.at(0)["finish_reason"].get_string().get(finish);
  std::string content, usage = "{\"prompt_tokens\":0,\"completion_tokens\":0,\"total_tokens\":0}";
  append_json_string(content, text);
  simdjson::dom::element u;
  if (!doc["usage"].get(u)) usage = simdjson::minify(u);
  return synth_answer(ctx, content, finish, usage);
}

}  // namespace sluice::pipeline
