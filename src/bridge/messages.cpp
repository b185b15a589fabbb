// bridge/messages.cpp: Anthropic's Messages API (POST /v1/messages) over chat completions.
//
// Request: `system` (a string or text blocks) becomes the system message; each message's
// content blocks become chat content: text and images as parts, an assistant's tool_use
// blocks its tool_calls, a user's tool_result blocks tool messages (placed before the rest of
// that user turn, as chat requires them right after the calls). Tools, tool_choice
// (auto/any/tool/none, disable_parallel_tool_use), stop_sequences, temperature, top_p,
// metadata.user_id and stream map to their chat forms; `thinking` blocks of earlier turns
// are dropped (chat upstreams take none).
// Answer: a message with text and tool_use blocks, stop_reason (end_turn, max_tokens,
// tool_use, refusal), usage; streams as message_start, content_block_start/delta/stop,
// message_delta and message_stop, and an `error` event when the stream broke.
#include <simdjson.h>

#include "bridge/front.hpp"
#include "bridge/json_util.hpp"

namespace sluice::bridge {

namespace {

using simdjson::dom::array;
using simdjson::dom::element;

ApiError invalid(std::string message, std::string param = {}) {
  ApiError e = bad_request(std::move(message), "invalid_request");
  e.param = std::move(param);
  return e;
}

// A tool_result's content (a string, or text blocks) as text.
std::string result_text(element block) {
  element c;
  if (block["content"].get(c) || c.is_null()) return {};
  std::string_view s;
  if (!c.get_string().get(s)) return std::string(s);
  array parts;
  std::string text;
  if (!c.get_array().get(parts)) {
    for (element part : parts) {
      if (!text.empty() && str(part, "type") == "text") text += "\n";
      text.append(str(part, "text"));
    }
  }
  return text;
}

std::optional<ApiError> image_part(element block, const std::string& param, std::string& out) {
  element src;
  if (block["source"].get(src)) return invalid(param + ".source: Field required");
  std::string url;
  std::string_view type = str(src, "type");
  if (type == "base64") {
    url = "data:" + std::string(str(src, "media_type")) + ";base64," + std::string(str(src, "data"));
  } else if (type == "url") {
    url.assign(str(src, "url"));
  } else {
    return invalid(param + ".source.type: image source '" + std::string(type) + "' is not supported by sluice");
  }
  out += "{\"type\":\"image_url\",\"image_url\":{\"url\":";
  append_json_string(out, url);
  out += "}}";
  return std::nullopt;
}

// One Anthropic message -> one or more chat messages (comma-separated, appended to `out`).
std::optional<ApiError> message(element m, size_t i, std::string& out) {
  const std::string param = "messages." + std::to_string(i);
  std::string_view role = str(m, "role");
  if (role != "user" && role != "assistant") return invalid(param + ".role: must be 'user' or 'assistant'");
  auto add = [&out](std::string_view msg) {
    if (!out.empty()) out.push_back(',');
    out.append(msg);
  };
  element content;
  if (m["content"].get(content)) return invalid(param + ".content: Field required");
  std::string_view s;
  if (!content.get_string().get(s)) {
    std::string msg = "{\"role\":";
    append_json_string(msg, role);
    msg += ",\"content\":";
    append_json_string(msg, s);
    add(msg + "}");
    return std::nullopt;
  }
  array blocks;
  if (content.get_array().get(blocks)) return invalid(param + ".content: must be a string or a list of blocks");
  std::string text, parts, calls;
  size_t nparts = 0, j = 0;
  bool only_text = true;
  for (element b : blocks) {
    const std::string bp = param + ".content." + std::to_string(j++);
    std::string_view type = str(b, "type");
    if (type == "text") {
      if (role == "assistant") {
        text.append(str(b, "text"));
        continue;
      }
      if (nparts++) parts += ",";
      parts += "{\"type\":\"text\",\"text\":";
      append_json_string(parts, str(b, "text"));
      parts += "}";
      if (nparts > 1) text += "\n";
      text.append(str(b, "text"));
    } else if (type == "image" && role == "user") {
      if (nparts++) parts += ",";
      if (auto e = image_part(b, bp, parts)) return e;
      only_text = false;
    } else if (type == "tool_use" && role == "assistant") {
      append_tool_call(calls, str(b, "id"), str(b, "name"), raw(b, "input"));
    } else if (type == "tool_result" && role == "user") {
      std::string t = "{\"role\":\"tool\",\"tool_call_id\":";
      append_json_string(t, str(b, "tool_use_id"));
      t += ",\"content\":";
      append_json_string(t, result_text(b));
      add(t + "}");
    } else if (type == "thinking" || type == "redacted_thinking") {
      // An earlier turn's reasoning: chat upstreams take none.
    } else {
      return invalid(bp + ".type: content block '" + std::string(type) + "' in a " + std::string(role) +
                     " message is not supported by sluice");
    }
  }
  if (role == "assistant") {
    if (text.empty() && calls.empty()) return std::nullopt;
    std::string msg = "{\"role\":\"assistant\",\"content\":";
    if (text.empty()) {
      msg += "null";
    } else {
      append_json_string(msg, text);
    }
    if (!calls.empty()) msg += ",\"tool_calls\":[" + calls + "]";
    add(msg + "}");
  } else if (nparts > 0) {
    std::string msg = "{\"role\":\"user\",\"content\":";
    if (only_text) {
      append_json_string(msg, text);
    } else {
      msg += "[" + parts + "]";
    }
    add(msg + "}");
  }
  return std::nullopt;
}

std::string_view stop_reason(std::string_view finish) {
  if (finish == "length") return "max_tokens";
  if (finish == "tool_calls" || finish == "function_call") return "tool_use";
  if (finish == "content_filter") return "refusal";
  return "end_turn";
}

class MessagesFront final : public Front {
 public:
  explicit MessagesFront(const OpenContext& oc) : Front(Api::kMessages) {
    std::string_view rid = oc.request_id;
    if (rid.substr(0, 4) == "req_") rid.remove_prefix(4);
    id_ = "msg_" + std::string(rid);
  }
  std::string model;

 protected:
  std::string render_whole() override {
    std::string m = head();
    m += ",\"content\":[";
    const std::string text = answer_.text.empty() ? answer_.refusal : answer_.text;
    bool first = true;
    if (!text.empty()) {
      m += "{\"type\":\"text\",\"text\":";
      append_json_string(m, text);
      m += "}";
      first = false;
    }
    for (const ToolCall& c : answer_.calls) {
      if (!first) m += ",";
      first = false;
      m += "{\"type\":\"tool_use\",\"id\":";
      append_json_string(m, c.id);
      m += ",\"name\":";
      append_json_string(m, c.name);
      m += ",\"input\":" + input_of(c.arguments) + "}";
    }
    m += "],\"stop_reason\":\"";
    m += stop_reason(answer_.finish);
    m += "\",\"stop_sequence\":null,\"usage\":" + usage(answer_.input_tokens, answer_.output_tokens) + "}";
    return m;
  }

  void begin(std::string& out) override {
    std::string m = head() + ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":" + usage(0, 0) + "}";
    emit(out, "message_start", ",\"message\":" + m);
  }

  void text_delta(std::string_view text, std::string& out) override {
    if (open_ != kText) {
      close(out);
      open_ = kText;
      emit(out, "content_block_start", index() + ",\"content_block\":{\"type\":\"text\",\"text\":\"\"}");
    }
    std::string d = index() + ",\"delta\":{\"type\":\"text_delta\",\"text\":";
    append_json_string(d, text);
    emit(out, "content_block_delta", d + "}");
  }

  void call_start(size_t k, std::string& out) override {
    close(out);
    open_ = kTool;
    open_call_ = k;
    std::string b = index() + ",\"content_block\":{\"type\":\"tool_use\",\"id\":";
    append_json_string(b, answer_.calls[k].id);
    b += ",\"name\":";
    append_json_string(b, answer_.calls[k].name);
    emit(out, "content_block_start", b + ",\"input\":{}}");
  }

  void call_delta(size_t k, std::string_view args, std::string& out) override {
    if (open_ != kTool || open_call_ != k) return;  // interleaved calls: kept whole in answer()
    std::string d = index() + ",\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":";
    append_json_string(d, args);
    emit(out, "content_block_delta", d + "}");
  }

  void finish(std::string& out) override {
    close(out);
    std::string d = ",\"delta\":{\"stop_reason\":\"";
    d += stop_reason(answer_.finish);
    d += "\",\"stop_sequence\":null},\"usage\":" + usage(answer_.input_tokens, answer_.output_tokens);
    emit(out, "message_delta", d);
    emit(out, "message_stop", "");
  }

  void fail(const ApiError& e, std::string& out) override {
    close(out);
    std::string j = "{\"type\":\"error\",\"error\":{\"type\":\"";
    j += anthropic_error_type(e.status);
    j += "\",\"message\":";
    append_json_string(j, e.message);
    sse_event(out, "error", j + "}}");
  }

 private:
  enum Open { kNone, kText, kTool };

  void emit(std::string& out, std::string_view type, std::string_view rest) {
    std::string j = "{\"type\":\"";
    j += type;
    j += "\"";
    j += rest;
    j += "}";
    sse_event(out, type, j);
  }
  std::string index() const { return ",\"index\":" + std::to_string(block_); }
  void close(std::string& out) {
    if (open_ == kNone) return;
    emit(out, "content_block_stop", index());
    open_ = kNone;
    ++block_;
  }
  std::string head() const {
    std::string m = "{\"id\":";
    append_json_string(m, id_);
    m += ",\"type\":\"message\",\"role\":\"assistant\",\"model\":";
    append_json_string(m, model);
    return m;
  }
  static std::string usage(int64_t in, int64_t out) {
    return "{\"input_tokens\":" + std::to_string(std::max<int64_t>(in, 0)) +
           ",\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":" +
           std::to_string(std::max<int64_t>(out, 0)) + "}";
  }
  // A tool call's arguments as the tool_use input object ({} when they are not one).
  static std::string input_of(std::string_view args) {
    thread_local simdjson::dom::parser p;
    element e;
    if (args.empty() || p.parse(args.data(), args.size()).get(e) || !e.is_object()) return "{}";
    return simdjson::minify(e);
  }

  std::string id_;
  Open open_ = kNone;
  size_t open_call_ = 0;
  size_t block_ = 0;
};

}  // namespace

std::optional<ApiError> open_messages(simdjson::dom::parser& p, std::string_view body, const OpenContext& oc,
                                      Opened& opened) {
  element doc;
  if (auto err = p.parse(body.data(), body.size()).get(doc))
    return invalid(std::string("request body is not valid JSON: ") + simdjson::error_message(err));
  if (!doc.is_object()) return invalid("request body must be a JSON object");
  std::string_view model;
  if (doc["model"].get_string().get(model) || model.empty()) return invalid("model: Field required", "model");
  int64_t max_tokens = 0;
  if (doc["max_tokens"].get_int64().get(max_tokens)) return invalid("max_tokens: Field required", "max_tokens");
  if (max_tokens < 1) return invalid("max_tokens: must be greater than or equal to 1", "max_tokens");
  array msgs;
  if (doc["messages"].get_array().get(msgs)) return invalid("messages: Field required", "messages");
  if (msgs.size() == 0) return invalid("messages: at least one message is required", "messages");

  std::string out;
  if (has(doc, "system")) {
    element sys = doc["system"].value_unsafe();
    std::string text;
    std::string_view s;
    array blocks;
    if (!sys.get_string().get(s)) {
      text.assign(s);
    } else if (!sys.get_array().get(blocks)) {
      for (element b : blocks) {
        if (str(b, "type") != "text") return invalid("system: only text blocks are supported", "system");
        if (!text.empty()) text += "\n";
        text.append(str(b, "text"));
      }
    } else {
      return invalid("system: must be a string or a list of text blocks", "system");
    }
    if (!text.empty()) {
      out = "{\"role\":\"system\",\"content\":";
      append_json_string(out, text);
      out += "}";
    }
  }
  size_t i = 0;
  for (element m : msgs)
    if (auto e = message(m, i++, out)) return e;

  std::string chat = "{\"model\":";
  append_json_string(chat, model);
  chat += ",\"messages\":[" + out + "]";
  chat += ",\"max_tokens\":" + std::to_string(max_tokens);
  if (has(doc, "tools")) {
    array tools;
    if (doc["tools"].get_array().get(tools)) return invalid("tools: must be a list", "tools");
    std::string t = "[";
    size_t k = 0;
    for (element tool : tools) {
      std::string_view type = str(tool, "type");
      if (!type.empty() && type != "custom")
        return invalid("tools." + std::to_string(k) + ".type: server tool '" + std::string(type) +
                       "' is not supported by sluice (only client tools with an input_schema)");
      if (k++) t += ",";
      t += "{\"type\":\"function\",\"function\":{\"name\":";
      append_json_string(t, str(tool, "name"));
      if (auto d = str(tool, "description"); !d.empty()) member_str(t, "description", d);
      member_raw(t, "parameters", raw(tool, "input_schema"));
      t += "}}";
    }
    if (k) member_raw(chat, "tools", t + "]");
  }
  if (element tc; !doc["tool_choice"].get(tc) && tc.is_object()) {
    std::string_view type = str(tc, "type");
    if (type == "auto") {
      chat += ",\"tool_choice\":\"auto\"";
    } else if (type == "any") {
      chat += ",\"tool_choice\":\"required\"";
    } else if (type == "none") {
      chat += ",\"tool_choice\":\"none\"";
    } else if (type == "tool") {
      std::string c = "{\"type\":\"function\",\"function\":{\"name\":";
      append_json_string(c, str(tc, "name"));
      member_raw(chat, "tool_choice", c + "}}");
    } else {
      return invalid("tool_choice.type: must be auto, any, tool or none", "tool_choice");
    }
    bool no_parallel = false;
    if (!tc["disable_parallel_tool_use"].get_bool().get(no_parallel) && no_parallel)
      chat += ",\"parallel_tool_calls\":false";
  }
  member_raw(chat, "stop", raw(doc, "stop_sequences"));
  member_raw(chat, "temperature", raw(doc, "temperature"));
  member_raw(chat, "top_p", raw(doc, "top_p"));
  if (element md; !doc["metadata"].get(md) && !str(md, "user_id").empty()) member_str(chat, "user", str(md, "user_id"));
  member_raw(chat, "vars", raw(doc, "vars"));  // a release's prompt variables
  bool stream = false;
  if (!doc["stream"].get_bool().get(stream) && stream) chat += ",\"stream\":true,\"stream_options\":{\"include_usage\":true}";
  chat += "}";
  auto front = std::make_unique<MessagesFront>(oc);
  front->model.assign(model);
  opened.front = std::move(front);
  opened.chat_body = std::move(chat);
  return std::nullopt;
}

}  // namespace sluice::bridge
