// bridge/anthropic_upstream.cpp: chat completions -> Anthropic Messages requests, and
// Anthropic's answers -> chat completions (see anthropic_upstream.hpp).
//
// Request: system messages become `system`; user content parts become text and image blocks
// (data URLs as base64 sources, other URLs as url sources); an assistant's tool_calls become
// tool_use blocks; tool messages become tool_result blocks of a user turn; consecutive turns
// of one role are merged (Anthropic requires them to alternate). max_tokens is required by
// Anthropic (kAnthropicDefaultMaxTokens when the request has none); stop -> stop_sequences,
// tools and tool_choice to Anthropic's forms, user -> metadata.user_id.
#include "bridge/anthropic_upstream.hpp"

#include <simdjson.h>

#include <algorithm>

#include "bridge/json_util.hpp"
#include "core/strings.hpp"

namespace sluice::bridge {

namespace {

using simdjson::dom::array;
using simdjson::dom::element;

// Anthropic's turns, merged by role as they are added.
struct Turns {
  std::string out;  // comma-separated messages
  std::string role, blocks;

  void add(std::string_view r, std::string_view block) {
    if (r != role) flush();
    role.assign(r);
    if (!blocks.empty()) blocks.push_back(',');
    blocks.append(block);
  }
  void flush() {
    if (role.empty()) return;
    if (!out.empty()) out.push_back(',');
    out += "{\"role\":\"" + role + "\",\"content\":[" + blocks + "]}";
    role.clear();
    blocks.clear();
  }
};

std::string text_block(std::string_view text) {
  std::string b = "{\"type\":\"text\",\"text\":";
  append_json_string(b, text);
  return b + "}";
}

std::string image_block(std::string_view url) {
  std::string b = "{\"type\":\"image\",\"source\":";
  if (url.substr(0, 5) == "data:") {
    // data:<media type>;base64,<data>
    const size_t semi = url.find(';'), comma = url.find(',');
    std::string_view media = url.substr(5, semi == std::string_view::npos ? 0 : semi - 5);
    std::string_view data = comma == std::string_view::npos ? std::string_view() : url.substr(comma + 1);
    b += "{\"type\":\"base64\",\"media_type\":";
    append_json_string(b, media);
    b += ",\"data\":";
    append_json_string(b, data);
    b += "}";
  } else {
    b += "{\"type\":\"url\",\"url\":";
    append_json_string(b, url);
    b += "}";
  }
  return b + "}";
}

// A message's content (a string or parts) as Anthropic blocks; the text alone for system.
void content_blocks(element content, const std::string& role, Turns& turns, std::string* system) {
  std::string_view s;
  if (!content.get_string().get(s)) {
    if (system) {
      if (!system->empty()) *system += "\n";
      system->append(s);
    } else if (!s.empty()) {
      turns.add(role, text_block(s));
    }
    return;
  }
  array parts;
  if (content.get_array().get(parts)) return;
  for (element part : parts) {
    std::string_view type = str(part, "type");
    if (type == "text") {
      if (system) {
        if (!system->empty()) *system += "\n";
        system->append(str(part, "text"));
      } else {
        turns.add(role, text_block(str(part, "text")));
      }
    } else if (type == "image_url" && !system) {
      element iu;
      std::string_view url;
      if (!part["image_url"].get(iu)) url = iu.is_string() ? std::string_view(iu.get_string().value_unsafe()) : str(iu, "url");
      turns.add(role, image_block(url));
    }
  }
}

}  // namespace

std::string_view chat_finish_reason(std::string_view stop_reason) {
  if (stop_reason == "max_tokens") return "length";
  if (stop_reason == "tool_use") return "tool_calls";
  if (stop_reason == "refusal") return "content_filter";
  return "stop";  // end_turn, stop_sequence, pause_turn
}

std::optional<ApiError> anthropic_request(simdjson::dom::parser& p, std::string_view chat, std::string& out) {
  element doc;
  if (p.parse(chat.data(), chat.size()).get(doc) || !doc.is_object())
    return bad_request("request body must be a JSON object", "invalid_json");
  int64_t n = 1;
  if (!doc["n"].get_int64().get(n) && n > 1) {
    ApiError e = bad_request("an Anthropic upstream answers one choice: 'n' must be 1", "unsupported_value");
    e.param = "n";
    return e;
  }
  std::string system;
  Turns turns;
  array msgs;
  if (!doc["messages"].get_array().get(msgs)) {
    for (element m : msgs) {
      std::string role(str(m, "role"));
      element content;
      const bool has_content = !m["content"].get(content) && !content.is_null();
      if (role == "system" || role == "developer") {
        if (has_content) content_blocks(content, role, turns, &system);
      } else if (role == "tool") {
        std::string b = "{\"type\":\"tool_result\",\"tool_use_id\":";
        append_json_string(b, str(m, "tool_call_id"));
        b += ",\"content\":";
        std::string text;
        if (has_content) {
          std::string_view s;
          array parts;
          if (!content.get_string().get(s)) {
            text.assign(s);
          } else if (!content.get_array().get(parts)) {
            for (element part : parts) text.append(str(part, "text"));
          }
        }
        append_json_string(b, text);
        turns.add("user", b + "}");
      } else if (role == "assistant") {
        if (has_content) content_blocks(content, role, turns, nullptr);
        array calls;
        if (!m["tool_calls"].get_array().get(calls)) {
          for (element c : calls) {
            element fn;
            if (c["function"].get(fn)) continue;
            std::string b = "{\"type\":\"tool_use\",\"id\":";
            append_json_string(b, str(c, "id"));
            b += ",\"name\":";
            append_json_string(b, str(fn, "name"));
            std::string_view args = str(fn, "arguments");
            simdjson::dom::parser ap;  // `doc` lives in p
            element input;
            b += ",\"input\":";
            b += !args.empty() && !ap.parse(args.data(), args.size()).get(input) && input.is_object() ? simdjson::minify(input)
                                                                                                   : std::string("{}");
            turns.add("assistant", b + "}");
          }
        }
      } else {
        if (has_content) content_blocks(content, "user", turns, nullptr);
      }
    }
  }
  turns.flush();
  out = "{\"model\":";
  append_json_string(out, str(doc, "model"));
  int64_t max_tokens = kAnthropicDefaultMaxTokens;
  for (const char* k : {"max_tokens", "max_completion_tokens"}) {
    int64_t v = 0;
    if (!doc[k].get_int64().get(v) && v > 0) max_tokens = v;
  }
  out += ",\"max_tokens\":" + std::to_string(max_tokens);
  if (!system.empty()) member_str(out, "system", system);
  out += ",\"messages\":[" + turns.out + "]";
  // Anthropic takes temperature in [0, 1] (OpenAI in [0, 2]), and not with top_p.
  double temperature = 0;
  const bool has_temperature = !doc["temperature"].get_double().get(temperature);
  if (has_temperature) out += ",\"temperature\":" + num_text(std::clamp(temperature, 0.0, 1.0), 6);
  if (!has_temperature) member_raw(out, "top_p", raw(doc, "top_p"));
  if (element stop; !doc["stop"].get(stop) && !stop.is_null()) {
    member_raw(out, "stop_sequences", stop.is_string() ? "[" + simdjson::minify(stop) + "]" : simdjson::minify(stop));
  }
  array tools;
  if (!doc["tools"].get_array().get(tools) && tools.size() > 0) {
    std::string t = "[";
    size_t k = 0;
    for (element tool : tools) {
      element fn;
      if (tool["function"].get(fn)) continue;
      if (k++) t += ",";
      t += "{\"name\":";
      append_json_string(t, str(fn, "name"));
      if (auto d = str(fn, "description"); !d.empty()) member_str(t, "description", d);
      std::string schema = raw(fn, "parameters");
      member_raw(t, "input_schema", schema.empty() ? std::string("{\"type\":\"object\"}") : schema);
      t += "}";
    }
    member_raw(out, "tools", t + "]");
    bool parallel = true;
    const bool no_parallel = !doc["parallel_tool_calls"].get_bool().get(parallel) && !parallel;
    std::string choice;
    if (element tc; !doc["tool_choice"].get(tc)) {
      std::string_view s;
      if (!tc.get_string().get(s)) {
        choice = s == "required" ? "{\"type\":\"any\"" : s == "none" ? "{\"type\":\"none\"" : "{\"type\":\"auto\"";
      } else if (element fn; tc.is_object() && !tc["function"].get(fn)) {
        choice = "{\"type\":\"tool\",\"name\":";
        append_json_string(choice, str(fn, "name"));
      }
    }
    if (choice.empty() && no_parallel) choice = "{\"type\":\"auto\"";
    if (!choice.empty()) {
      if (no_parallel && choice.find("\"none\"") == std::string::npos) choice += ",\"disable_parallel_tool_use\":true";
      member_raw(out, "tool_choice", choice + "}");
    }
  }
  if (auto user = str(doc, "user"); !user.empty()) {
    std::string md = "{\"user_id\":";
    append_json_string(md, user);
    member_raw(out, "metadata", md + "}");
  }
  bool stream = false;
  if (!doc["stream"].get_bool().get(stream) && stream) out += ",\"stream\":true";
  out += "}";
  return std::nullopt;
}

std::string AnthropicAnswer::whole(simdjson::dom::parser& p, std::string_view body, int status) {
  element doc;
  const bool ok = !p.parse(body.data(), body.size()).get(doc) && doc.is_object();
  if (status / 100 != 2) {
    ApiError e;
    e.status = status;
    e.type = "api_error";
    e.code = "upstream_error";
    e.message = "upstream answered with status " + std::to_string(status);
    element err;
    if (ok && !doc["error"].get(err)) {
      if (auto m = str(err, "message"); !m.empty()) e.message.assign(m);
      if (auto t = str(err, "type"); !t.empty()) e.type.assign(t);
    }
    if (e.type == "invalid_request_error") e.code = "invalid_request";
    if (e.type == "rate_limit_error") e.code = "rate_limit_exceeded";
    if (e.message.find("prompt is too long") != std::string::npos) e.code = "context_length_exceeded";
    return e.to_json();
  }
  if (!ok) return std::string(body);  // not an answer: the relay reports it as it is
  std::string text, calls;
  array content;
  if (!doc["content"].get_array().get(content)) {
    for (element b : content) {
      std::string_view type = str(b, "type");
      if (type == "text") {
        text.append(str(b, "text"));
      } else if (type == "tool_use") {
        append_tool_call(calls, str(b, "id"), str(b, "name"), raw(b, "input"));
      }
    }
  }
  int64_t in = 0, out = 0, cache_read = 0, cache_write = 0;
  element u;
  if (!doc["usage"].get(u)) {
    if (u["input_tokens"].get_int64().get(in)) in = 0;
    if (u["output_tokens"].get_int64().get(out)) out = 0;
    if (u["cache_read_input_tokens"].get_int64().get(cache_read)) cache_read = 0;
    if (u["cache_creation_input_tokens"].get_int64().get(cache_write)) cache_write = 0;
  }
  const int64_t prompt = in + cache_read + cache_write;
  std::string r = "{\"id\":";
  append_json_string(r, "chatcmpl-" + std::string(str(doc, "id")));
  r += ",\"object\":\"chat.completion\",\"created\":0,\"model\":";
  append_json_string(r, str(doc, "model"));
  r += ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":";
  if (text.empty() && !calls.empty()) {
    r += "null";
  } else {
    append_json_string(r, text);
  }
  if (!calls.empty()) r += ",\"tool_calls\":[" + calls + "]";
  r += ",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"";
  r += chat_finish_reason(str(doc, "stop_reason"));
  r += "\"}],\"usage\":{\"prompt_tokens\":" + std::to_string(prompt) + ",\"completion_tokens\":" + std::to_string(out) +
       ",\"total_tokens\":" + std::to_string(prompt + out) + ",\"prompt_tokens_details\":{\"cached_tokens\":" +
       std::to_string(cache_read) + "}}}";
  return r;
}

void AnthropicAnswer::chunk(std::string_view delta, std::string_view finish) {
  out_ += "data: {\"id\":";
  append_json_string(out_, "chatcmpl-" + id_);
  out_ += ",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":";
  append_json_string(out_, model_);
  out_ += ",\"choices\":[{\"index\":0,\"delta\":";
  out_ += delta;
  out_ += ",\"logprobs\":null,\"finish_reason\":";
  if (finish.empty()) {
    out_ += "null";
  } else {
    append_json_string(out_, finish);
  }
  out_ += "}]}\n\n";
}

void AnthropicAnswer::event(simdjson::dom::parser& p, std::string_view data) {
  element doc;
  if (p.parse(data.data(), data.size()).get(doc) || !doc.is_object()) {
    out_ += "data: ";  // not JSON: passed on for the relay to call a bad stream
    out_ += data;
    out_ += "\n\n";
    return;
  }
  std::string_view type = str(doc, "type");
  int64_t index = 0;
  if (doc["index"].get_int64().get(index)) index = 0;
  if (type == "message_start") {
    element m;
    if (!doc["message"].get(m)) {
      id_.assign(str(m, "id"));
      model_.assign(str(m, "model"));
      element u;
      if (!m["usage"].get(u)) {
        int64_t v = 0;
        if (!u["input_tokens"].get_int64().get(v)) input_tokens_ = v;
        if (!u["cache_read_input_tokens"].get_int64().get(v)) cached_tokens_ = v;
        if (!u["cache_creation_input_tokens"].get_int64().get(v)) cache_write_tokens_ = v;
        if (!u["output_tokens"].get_int64().get(v)) output_tokens_ = v;
      }
    }
    chunk("{\"role\":\"assistant\",\"content\":\"\"}");
  } else if (type == "content_block_start") {
    element b;
    if (!doc["content_block"].get(b) && str(b, "type") == "tool_use") {
      const size_t k = tool_blocks_.size();
      tool_blocks_.push_back(index);
      tool_args_.push_back(false);
      std::string d = "{\"tool_calls\":[{\"index\":" + std::to_string(k) + ",\"id\":";
      append_json_string(d, str(b, "id"));
      d += ",\"type\":\"function\",\"function\":{\"name\":";
      append_json_string(d, str(b, "name"));
      chunk(d + ",\"arguments\":\"\"}}]}");
    }
  } else if (type == "content_block_delta") {
    element d;
    if (doc["delta"].get(d)) return;
    std::string_view dt = str(d, "type");
    if (dt == "text_delta") {
      std::string c = "{\"content\":";
      append_json_string(c, str(d, "text"));
      chunk(c + "}");
    } else if (dt == "input_json_delta") {
      size_t k = 0;
      while (k < tool_blocks_.size() && tool_blocks_[k] != index) ++k;
      if (k == tool_blocks_.size()) return;
      if (str(d, "partial_json").empty()) return;
      tool_args_[k] = true;
      std::string c = "{\"tool_calls\":[{\"index\":" + std::to_string(k) + ",\"function\":{\"arguments\":";
      append_json_string(c, str(d, "partial_json"));
      chunk(c + "}}]}");
    }
  } else if (type == "content_block_stop") {
    // A tool called without arguments: chat clients parse "{}", never "".
    for (size_t k = 0; k < tool_blocks_.size(); ++k)
      if (tool_blocks_[k] == index && !tool_args_[k]) {
        tool_args_[k] = true;
        chunk("{\"tool_calls\":[{\"index\":" + std::to_string(k) + ",\"function\":{\"arguments\":\"{}\"}}]}");
      }
  } else if (type == "message_delta") {
    element u;
    if (!doc["usage"].get(u)) {
      int64_t v = 0;
      if (!u["output_tokens"].get_int64().get(v)) output_tokens_ = v;
      if (!u["input_tokens"].get_int64().get(v)) input_tokens_ = v;
      if (!u["cache_read_input_tokens"].get_int64().get(v)) cached_tokens_ = v;
      if (!u["cache_creation_input_tokens"].get_int64().get(v)) cache_write_tokens_ = v;
    }
    element d;
    std::string_view stop = !doc["delta"].get(d) ? str(d, "stop_reason") : std::string_view();
    if (!stop.empty()) chunk("{}", chat_finish_reason(stop));
  } else if (type == "message_stop") {
    const int64_t prompt = input_tokens_ + cached_tokens_ + cache_write_tokens_;
    out_ += "data: {\"id\":";
    append_json_string(out_, "chatcmpl-" + id_);
    out_ += ",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":";
    append_json_string(out_, model_);
    out_ += ",\"choices\":[],\"usage\":{\"prompt_tokens\":" + std::to_string(prompt) +
            ",\"completion_tokens\":" + std::to_string(output_tokens_) + ",\"total_tokens\":" +
            std::to_string(prompt + output_tokens_) + ",\"prompt_tokens_details\":{\"cached_tokens\":" +
            std::to_string(cached_tokens_) + "}}}\n\ndata: [DONE]\n\n";
  } else if (type == "error") {
    element err;
    ApiError e;
    e.status = 502;
    e.type = "api_error";
    e.code = "upstream_error";
    e.message = "upstream sent an error event";
    if (!doc["error"].get(err)) {
      if (auto m = str(err, "message"); !m.empty()) e.message.assign(m);
      if (auto t = str(err, "type"); !t.empty()) e.code.assign(t);
    }
    out_ += "data: " + e.to_json() + "\n\n";
  }
  // ping, thinking and signature deltas: nothing for chat.
}

std::string_view AnthropicAnswer::stream(simdjson::dom::parser& p, std::string_view bytes) {
  out_.clear();
  if (failed_) return out_;
  if (!events_.feed(bytes, [&](std::string_view raw) {
        std::string_view data = sse::Parser::data_of(raw, scratch_);
        if (!data.empty()) event(p, data);
      })) {
    failed_ = true;
    out_ += "data: {not an event: larger than max_sse_event_bytes}\n\n";  // the relay reports a bad stream
  }
  return out_;
}

}  // namespace sluice::bridge
