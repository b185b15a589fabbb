#include "json/chat.hpp"

#include <simdjson.h>

namespace sluice::json {

using simdjson::dom::element;

std::optional<RequestProblem> inspect_request(simdjson::dom::parser& parser, std::string_view body,
                                              size_t capacity, RequestInfo& out) {
  auto type_error = [](const char* param, const char* what) {
    return RequestProblem{std::string("'") + param + "' must be " + what, "invalid_type", param};
  };
  bool padded = capacity >= body.size() + simdjson::SIMDJSON_PADDING;
  element doc;
  auto err = parser.parse(body.data(), body.size(), !padded).get(doc);
  if (err) return RequestProblem{std::string("request body is not valid JSON: ") + simdjson::error_message(err), "invalid_json", ""};
  simdjson::dom::object obj;
  if (doc.get_object().get(obj)) return RequestProblem{"request body must be a JSON object", "invalid_json", ""};

  std::string_view model;
  if (auto m = obj["model"]; m.error() == simdjson::SUCCESS) {
    if (m.get_string().get(model)) return type_error("model", "a string");
    out.model.assign(model);
  }
  if (auto s = obj["stream"]; s.error() == simdjson::SUCCESS && !s.is_null()) {
    bool v = false;
    if (s.get_bool().get(v)) return type_error("stream", "a boolean");
    out.stream = v;
  }
  if (auto so = obj["stream_options"]; so.error() == simdjson::SUCCESS && !so.is_null()) {
    simdjson::dom::object o;
    if (so.get_object().get(o)) return type_error("stream_options", "an object");
    out.has_stream_options = true;
    bool v = false;
    if (auto iu = o["include_usage"]; iu.error() == simdjson::SUCCESS && !iu.get_bool().get(v)) out.include_usage = v;
  }
  if (auto u = obj["user"]; u.error() == simdjson::SUCCESS) {
    std::string_view user;
    if (!u.get_string().get(user)) out.user.assign(user);
  }
  if (auto n = obj["n"]; n.error() == simdjson::SUCCESS && !n.is_null()) {
    int64_t v = 1;
    if (n.get_int64().get(v) || v < 1 || v > 128)
      return RequestProblem{"'n' must be an integer between 1 and 128", "invalid_value", "n"};
    out.n = v;
  }
  for (const char* k : {"max_tokens", "max_completion_tokens", "max_output_tokens"}) {
    int64_t mt = 0;
    if (auto m = obj[k]; m.error() == simdjson::SUCCESS && !m.get_int64().get(mt) && mt > 0) out.max_tokens = mt;
  }
  if (auto t = obj["tools"]; t.error() == simdjson::SUCCESS) {
    simdjson::dom::array a;
    if (!t.get_array().get(a)) out.has_tools = a.size() > 0;
  }
  if (auto rf = obj["response_format"]; rf.error() == simdjson::SUCCESS && !rf.is_null()) {
    std::string_view type;
    if (rf["type"].get_string().get(type)) return type_error("response_format", "an object with a string 'type'");
    out.response_format.assign(type);
    element schema;
    if (type == "json_schema" && !rf["json_schema"]["schema"].get(schema)) out.json_schema = simdjson::minify(schema);
  }
  if (auto msgs = obj["messages"]; msgs.error() == simdjson::SUCCESS) {
    simdjson::dom::array a;
    if (msgs.get_array().get(a)) return type_error("messages", "an array");
    out.messages = static_cast<int64_t>(a.size());
  }
  return std::nullopt;
}

namespace {
Usage read_usage(element usage) {
  Usage u;
  int64_t v = 0;
  if (!usage["prompt_tokens"].get_int64().get(v)) u.prompt_tokens = v;
  if (!usage["completion_tokens"].get_int64().get(v)) u.completion_tokens = v;
  // The Responses API's names.
  if (u.prompt_tokens < 0 && !usage["input_tokens"].get_int64().get(v)) u.prompt_tokens = v;
  if (u.completion_tokens < 0 && !usage["output_tokens"].get_int64().get(v)) u.completion_tokens = v;
  if (!usage["prompt_tokens_details"]["cached_tokens"].get_int64().get(v) ||
      !usage["input_tokens_details"]["cached_tokens"].get_int64().get(v))
    u.cached_tokens = v;
  return u;
}

// An event of a Responses API stream (passed through): text and argument deltas are
// content; response.completed / response.incomplete end it with the usage; response.failed
// is an error.
void responses_event(element doc, std::string_view type, ChunkInfo& info) {
  if (type == "response.output_text.delta" || type == "response.function_call_arguments.delta" ||
      type == "response.refusal.delta") {
    info.has_content = true;
    std::string_view d;
    if (type == "response.output_text.delta" && !doc["delta"].get_string().get(d)) info.content = d;
  } else if (type == "response.completed" || type == "response.incomplete") {
    info.finish_reason = type == "response.completed" ? "stop" : "length";
    element usage;
    if (!doc["response"]["usage"].get(usage) && usage.is_object()) info.usage = read_usage(usage);
  } else if (type == "response.failed") {
    info.is_error = true;
  }
}
}  // namespace

ChunkInfo inspect_chunk(simdjson::dom::parser& parser, std::string_view data) {
  ChunkInfo info;
  element doc;
  if (data.empty()) return info;
  if (parser.parse(data.data(), data.size(), true).get(doc)) return info;
  simdjson::dom::object obj;
  if (doc.get_object().get(obj)) return info;
  info.valid_json = true;
  if (obj["error"].error() == simdjson::SUCCESS) {
    info.is_error = true;
    return info;
  }
  if (std::string_view type; !obj["type"].get_string().get(type) && type.substr(0, 9) == "response.") {
    responses_event(doc, type, info);
    return info;
  }
  element usage;
  bool has_usage = !obj["usage"].get(usage) && usage.is_object();
  if (has_usage) info.usage = read_usage(usage);
  simdjson::dom::array choices;
  if (!obj["choices"].get_array().get(choices)) {
    if (choices.size() == 0 && has_usage) info.usage_only = true;
    for (element c : choices) {
      std::string_view fr;
      if (!c["finish_reason"].get_string().get(fr)) info.finish_reason = fr;
      element delta;
      if (!c["delta"].get(delta)) {
        std::string_view content;
        if ((!delta["content"].get_string().get(content) && !content.empty()) ||
            delta["tool_calls"].error() == simdjson::SUCCESS)
          info.has_content = true;
        if (info.content.empty()) info.content = content;
      } else if (std::string_view text; !c["text"].get_string().get(text) && !text.empty()) {
        info.has_content = true;  // a legacy completions chunk
        if (info.content.empty()) info.content = text;
      }
    }
  }
  return info;
}

std::optional<Usage> response_usage(simdjson::dom::parser& parser, std::string_view body) {
  return response_usage_and_answer(parser, body, 0, nullptr, nullptr);
}

namespace {
// A Responses API answer: the text of its message items, its status as a finish reason.
void responses_answer(element doc, size_t limit, std::string& text, std::string& finish_reason) {
  simdjson::dom::array output;
  if (doc["output"].get_array().get(output)) return;
  for (element item : output) {
    simdjson::dom::array content;
    if (item["content"].get_array().get(content)) continue;
    for (element part : content) {
      std::string_view t;
      if (!part["text"].get_string().get(t) && text.size() < limit) text.append(t.substr(0, limit - text.size()));
    }
  }
  std::string_view status;
  if (!doc["status"].get_string().get(status)) finish_reason = status == "incomplete" ? "length" : "stop";
}

void first_answer(element doc, size_t limit, std::string& text, std::string& finish_reason) {
  simdjson::dom::array choices;
  element first;
  if (doc["choices"].get_array().get(choices)) return responses_answer(doc, limit, text, finish_reason);
  if (choices.size() == 0 || choices.at(0).get(first)) return;
  std::string_view v;
  if (!first["message"]["content"].get_string().get(v) || !first["text"].get_string().get(v))
    text.assign(v.substr(0, limit));
  if (!first["finish_reason"].get_string().get(v)) finish_reason.assign(v);
}
}  // namespace

std::optional<Usage> response_usage_and_answer(simdjson::dom::parser& parser, std::string_view body, size_t limit,
                                               std::string* text, std::string* finish_reason) {
  element doc;
  if (body.empty() || parser.parse(body.data(), body.size(), true).get(doc) || !doc.is_object()) return std::nullopt;
  if (text && finish_reason) first_answer(doc, limit, *text, *finish_reason);
  element usage;
  if (doc["usage"].get(usage) || !usage.is_object()) return Usage{};
  return read_usage(usage);
}


}  // namespace sluice::json
