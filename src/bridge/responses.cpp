// bridge/responses.cpp: OpenAI's Responses API (POST /v1/responses) over chat completions.
//
// Request: `instructions` become the system message, `input` (a string or items: messages
// with text and image parts, function calls and their outputs) the messages, function tools
// and tool_choice the chat ones, `text.format` the response_format, `max_output_tokens`
// max_tokens. `previous_response_id` prepends the stored conversation of that response (the
// tenant's own; `instructions` are not carried over, as in OpenAI's API).
// Answer: a response object with message and function_call output items, usage in the
// Responses shape, and for streams the event sequence response.created, response.in_progress,
// output_item.added, content_part.added, output_text.delta, function_call_arguments.delta,
// the matching .done events, and response.completed (response.incomplete when the answer
// was cut by max_output_tokens; error and response.failed when the stream broke).
#include <simdjson.h>

#include "bridge/front.hpp"
#include "bridge/json_util.hpp"
#include "cache/response_cache.hpp"
#include "core/crypto.hpp"

namespace sluice::bridge {

namespace {

using simdjson::dom::array;
using simdjson::dom::element;

ApiError invalid(std::string message, std::string param, std::string code = "invalid_value") {
  ApiError e = bad_request(std::move(message), std::move(code));
  e.param = std::move(param);
  return e;
}

ApiError unsupported(std::string what, std::string param) {
  return invalid(what + " is not supported by sluice's Responses API, which is served over chat completions upstreams",
                 std::move(param), "unsupported_parameter");
}

// The chat messages of a conversation, built in order. Consecutive assistant text and
// function calls become one assistant message (chat's shape for a turn that calls tools).
struct Messages {
  std::string out;  // comma-separated chat messages
  bool open = false;
  std::string text, calls;

  void add(std::string_view msg) {
    flush();
    if (!out.empty()) out.push_back(',');
    out.append(msg);
  }
  void assistant_text(std::string_view t) {
    if (open && !calls.empty()) flush();
    open = true;
    text.append(t);
  }
  void assistant_call(std::string_view call_id, std::string_view name, std::string_view args) {
    open = true;
    append_tool_call(calls, call_id, name, args);
  }
  void flush() {
    if (!open) return;
    open = false;
    std::string m = "{\"role\":\"assistant\",\"content\":";
    if (text.empty() && !calls.empty()) {
      m += "null";
    } else {
      append_json_string(m, text);
    }
    if (!calls.empty()) m += ",\"tool_calls\":[" + calls + "]";
    m += "}";
    text.clear();
    calls.clear();
    if (!out.empty()) out.push_back(',');
    out += m;
  }
};

// The text of a content that may be a string or an array of text parts.
std::optional<std::string> joined_text(element content) {
  std::string_view s;
  if (!content.get_string().get(s)) return std::string(s);
  array parts;
  if (content.get_array().get(parts)) return std::nullopt;
  std::string text;
  for (element part : parts) {
    std::string_view t = str(part, "text");
    if (t.empty()) t = str(part, "refusal");
    text.append(t);
  }
  return text;
}

// A message input item -> a chat message.
std::optional<ApiError> message_item(element item, size_t i, Messages& msgs) {
  const std::string param = "input[" + std::to_string(i) + "]";
  std::string_view role = str(item, "role");
  element content;
  if (item["content"].get(content)) return invalid("a message item needs 'content'", param + ".content");
  if (role == "assistant") {
    auto text = joined_text(content);
    if (!text) return invalid("an assistant message's content must be a string or text parts", param + ".content");
    msgs.assistant_text(*text);
    return std::nullopt;
  }
  if (role != "user" && role != "system" && role != "developer")
    return invalid("a message's role must be user, assistant, system or developer", param + ".role");
  std::string m = "{\"role\":";
  append_json_string(m, role == "user" ? "user" : "system");
  m += ",\"content\":";
  std::string_view s;
  array parts;
  if (!content.get_string().get(s)) {
    append_json_string(m, s);
  } else if (!content.get_array().get(parts)) {
    if (role != "user") {
      auto text = joined_text(content);
      append_json_string(m, text ? *text : std::string());
    } else {
      m += "[";
      size_t j = 0;
      for (element part : parts) {
        if (j++) m += ",";
        std::string_view type = str(part, "type");
        if (type == "input_text" || type == "text" || type == "output_text") {
          m += "{\"type\":\"text\",\"text\":";
          append_json_string(m, str(part, "text"));
          m += "}";
        } else if (type == "input_image") {
          std::string_view url = str(part, "image_url");
          if (url.empty()) return unsupported("an input_image without image_url (file_id)", param + ".content");
          m += "{\"type\":\"image_url\",\"image_url\":{\"url\":";
          append_json_string(m, url);
          if (auto d = str(part, "detail"); !d.empty()) member_str(m, "detail", d);
          m += "}}";
        } else {
          return unsupported("content part type '" + std::string(type) + "'", param + ".content");
        }
      }
      m += "]";
    }
  } else {
    return invalid("a message's content must be a string or an array of parts", param + ".content");
  }
  m += "}";
  msgs.add(m);
  return std::nullopt;
}

// The stored responses item references read, each copied and parsed once per request.
struct References {
  static constexpr size_t kMax = 256;  // item references per request
  size_t used = 0;
  struct Parsed {
    std::string response_id;
    std::unique_ptr<simdjson::dom::parser> parser;  // owns the parse `root` points into
    element root;
  };
  std::vector<Parsed> parsed;
};

// The stored output item `id` (an item_reference): items sluice made are named after their
// response ("msg_X", "fc_X_k" belong to "resp_X"), which holds them.
std::optional<element> referenced_item(std::string_view id, const OpenContext& oc, References& refs) {
  std::string_view suffix;
  if (id.substr(0, 4) == "msg_") {
    suffix = id.substr(4);
  } else if (id.substr(0, 3) == "fc_") {
    suffix = id.substr(3);
    suffix = suffix.substr(0, suffix.rfind('_'));
  }
  if (suffix.empty() || !oc.store.cache) return std::nullopt;
  const std::string resp = "resp_" + std::string(suffix);
  const References::Parsed* found = nullptr;
  for (const auto& r : refs.parsed)
    if (r.response_id == resp) found = &r;
  if (!found) {
    auto kept = oc.store.cache->get(store_key(oc.tenant, resp), oc.now_ms);
    if (!kept) return std::nullopt;
    References::Parsed r{resp, std::make_unique<simdjson::dom::parser>(), {}};
    if (r.parser->parse(*kept).get(r.root)) return std::nullopt;  // the parser keeps its own copy
    refs.parsed.push_back(std::move(r));
    found = &refs.parsed.back();
  }
  array output;
  if (found->root["response"]["output"].get_array().get(output)) return std::nullopt;
  for (element item : output)
    if (str(item, "id") == id) return item;
  return std::nullopt;
}

std::optional<ApiError> one_item(element item, size_t i, Messages& msgs, const OpenContext& oc, References& refs,
                                 bool referenced) {
  std::string_view type = str(item, "type");
  const std::string param = "input[" + std::to_string(i) + "]";
  if (type.empty() || type == "message") return message_item(item, i, msgs);
  if (type == "function_call") {
    std::string_view id = str(item, "call_id");
    if (id.empty()) return invalid("a function_call item needs 'call_id'", param + ".call_id");
    msgs.assistant_call(id, str(item, "name"), str(item, "arguments"));
  } else if (type == "function_call_output") {
    std::string_view id = str(item, "call_id");
    if (id.empty()) return invalid("a function_call_output item needs 'call_id'", param + ".call_id");
    element out;
    std::string text;
    if (!item["output"].get(out)) {
      auto t = joined_text(out);
      text = t ? *t : simdjson::minify(out);
    }
    std::string m = "{\"role\":\"tool\",\"tool_call_id\":";
    append_json_string(m, id);
    m += ",\"content\":";
    append_json_string(m, text);
    msgs.add(m + "}");
  } else if (type == "reasoning") {
    // A reasoning model's own notes from an earlier turn: chat upstreams take no such input.
  } else if (type == "item_reference" && !referenced) {
    std::string_view id = str(item, "id");
    if (++refs.used > References::kMax)
      return invalid("at most " + std::to_string(References::kMax) + " item references per request", param, "too_many_items");
    auto found = referenced_item(id, oc, refs);
    if (!found)
      return invalid("Item with id '" + std::string(id) + "' not found (sluice keeps the items of stored responses).",
                     param + ".id", "item_not_found");
    return one_item(*found, i, msgs, oc, refs, true);
  } else {
    return unsupported("input item type '" + std::string(type) + "'", param + ".type");
  }
  return std::nullopt;
}

std::optional<ApiError> input_items(element input, Messages& msgs, const OpenContext& oc) {
  std::string_view s;
  if (!input.get_string().get(s)) {
    std::string m = "{\"role\":\"user\",\"content\":";
    append_json_string(m, s);
    msgs.add(m + "}");
    return std::nullopt;
  }
  array items;
  if (input.get_array().get(items)) return invalid("'input' must be a string or an array of items", "input", "invalid_type");
  size_t i = 0;
  References refs;
  for (element item : items)
    if (auto e = one_item(item, i++, msgs, oc, refs, false)) return e;
  msgs.flush();
  return std::nullopt;
}

class ResponsesFront final : public Front {
 public:
  ResponsesFront(const OpenContext& oc) : Front(Api::kResponses), tenant_(oc.tenant), store_(oc.store) {
    // 128 random bits: a stored response's id is all that protects it from other users of
    // the same key (its items are named after it).
    suffix_ = random_token("", 16);
    id_ = "resp_" + suffix_;
    msg_id_ = "msg_" + suffix_;
    created_ = oc.now_ms / 1000;
    now_ms_ = oc.now_ms;
  }

  // What the response object echoes of the request.
  std::string model, instructions, tools, tool_choice, text, max_output_tokens, temperature, top_p, parallel,
      previous, metadata, user, reasoning;
  bool keep = true;          // store: the conversation may be continued
  std::string conversation;  // chat messages so far (without the instructions), comma-separated

 protected:
  std::string render_whole() override { return final_response(); }

  void begin(std::string& out) override {
    std::string r = response_json("in_progress", "[]", "null", "null");
    emit(out, "response.created", ",\"response\":" + r);
    emit(out, "response.in_progress", ",\"response\":" + r);
  }

  void text_delta(std::string_view delta, std::string& out) override {
    if (open_ != kMessage) {
      close(out);
      open_ = kMessage;
      msg_index_ = next_index_++;
      std::string item = "{\"id\":";
      append_json_string(item, msg_id_);
      item += ",\"type\":\"message\",\"status\":\"in_progress\",\"role\":\"assistant\",\"content\":[]}";
      emit(out, "response.output_item.added", ",\"output_index\":" + std::to_string(msg_index_) + ",\"item\":" + item);
      emit(out, "response.content_part.added",
           item_ref(msg_id_, msg_index_) + ",\"content_index\":0,\"part\":" + text_part(""));
    }
    std::string d = item_ref(msg_id_, msg_index_) + ",\"content_index\":0,\"delta\":";
    append_json_string(d, delta);
    emit(out, "response.output_text.delta", d + ",\"logprobs\":[]");
  }

  void call_start(size_t k, std::string& out) override {
    close(out);
    open_ = kCall;
    open_call_ = k;
    call_index_.resize(answer_.calls.size(), 0);
    call_index_[k] = next_index_++;
    emit(out, "response.output_item.added",
         ",\"output_index\":" + std::to_string(call_index_[k]) + ",\"item\":" + call_item(k, "in_progress"));
  }

  void call_delta(size_t k, std::string_view args, std::string& out) override {
    std::string d = item_ref(call_id(k), call_index_[k]) + ",\"delta\":";
    append_json_string(d, args);
    emit(out, "response.function_call_arguments.delta", d);
  }

  void finish(std::string& out) override {
    close(out);
    const std::string& r = final_response();
    emit(out, status_ == "incomplete" ? "response.incomplete" : "response.completed", ",\"response\":" + r);
  }

  void fail(const ApiError& e, std::string& out) override {
    close(out);
    std::string code = e.code.empty() ? std::string("server_error") : e.code;
    std::string ev = ",\"code\":";
    append_json_string(ev, code);
    ev += ",\"message\":";
    append_json_string(ev, e.message);
    ev += ",\"param\":null";
    emit(out, "error", ev);
    // response.failed's error code is one of the API's own: what a gateway's failure is.
    std::string err = "{\"code\":";
    append_json_string(err, e.status == 429 ? "rate_limit_exceeded" : "server_error");
    err += ",\"message\":";
    append_json_string(err, e.message);
    err += "}";
    emit(out, "response.failed", ",\"response\":" + response_json("failed", output_json(), err, "null"));
  }

  void completed() override {
    const std::string& r = final_response();
    if (!keep || !store_.cache) return;
    // The conversation so far and this answer, as chat messages: the next turn's history.
    std::string conv = conversation;
    Messages m;
    if (!answer_.text.empty() || !answer_.refusal.empty()) m.assistant_text(answer_.text.empty() ? answer_.refusal : answer_.text);
    for (const ToolCall& c : answer_.calls) m.assistant_call(c.id, c.name, c.arguments);
    m.flush();
    if (!m.out.empty()) {
      if (!conv.empty()) conv.push_back(',');
      conv += m.out;
    }
    std::string kept = "{\"conversation\":[" + conv + "],\"response\":" + r + "}";
    if (store_.journal) store_.journal->saved({std::string(tenant_), id_, kept, now_ms_ + store_.ttl_ms});
    store_.cache->put(store_key(tenant_, id_), std::move(kept), now_ms_, store_.ttl_ms);
  }

 private:
  enum Open { kNone, kMessage, kCall };

  void emit(std::string& out, std::string_view type, std::string_view rest) {
    std::string j = "{\"type\":\"";
    j += type;
    j += "\",\"sequence_number\":" + std::to_string(seq_++);
    j += rest;
    j += "}";
    sse_event(out, type, j);
  }
  static std::string item_ref(std::string_view item_id, size_t index) {
    std::string s = ",\"item_id\":";
    append_json_string(s, item_id);
    return s + ",\"output_index\":" + std::to_string(index);
  }
  static std::string text_part(std::string_view text) {
    std::string p = "{\"type\":\"output_text\",\"text\":";
    append_json_string(p, text);
    return p + ",\"annotations\":[],\"logprobs\":[]}";
  }
  std::string call_id(size_t k) const { return "fc_" + suffix_ + "_" + std::to_string(k); }
  std::string call_item(size_t k, std::string_view status) const {
    const ToolCall& c = answer_.calls[k];
    std::string item = "{\"id\":";
    append_json_string(item, call_id(k));
    item += ",\"type\":\"function_call\",\"status\":\"";
    item += status;
    item += "\",\"arguments\":";
    append_json_string(item, status == "in_progress" ? std::string_view() : std::string_view(c.arguments));
    item += ",\"call_id\":";
    append_json_string(item, c.id.empty() ? call_id(k) : c.id);
    item += ",\"name\":";
    append_json_string(item, c.name);
    return item + "}";
  }
  std::string message_item() const {
    std::string item = "{\"id\":";
    append_json_string(item, msg_id_);
    item += ",\"type\":\"message\",\"status\":\"completed\",\"role\":\"assistant\",\"content\":[";
    if (answer_.text.empty() && !answer_.refusal.empty()) {
      item += "{\"type\":\"refusal\",\"refusal\":";
      append_json_string(item, answer_.refusal);
      item += "}";
    } else {
      item += text_part(answer_.text);
    }
    return item + "]}";
  }

  // Ends the item being streamed with its .done events.
  void close(std::string& out) {
    if (open_ == kMessage) {
      std::string ref = item_ref(msg_id_, msg_index_) + ",\"content_index\":0";
      std::string t = ref + ",\"text\":";
      append_json_string(t, answer_.text);
      emit(out, "response.output_text.done", t + ",\"logprobs\":[]");
      emit(out, "response.content_part.done", ref + ",\"part\":" + text_part(answer_.text));
      emit(out, "response.output_item.done", ",\"output_index\":" + std::to_string(msg_index_) + ",\"item\":" + message_item());
    } else if (open_ == kCall) {
      const size_t k = open_call_;
      std::string a = item_ref(call_id(k), call_index_[k]) + ",\"arguments\":";
      append_json_string(a, answer_.calls[k].arguments);
      a += ",\"name\":";
      append_json_string(a, answer_.calls[k].name);
      emit(out, "response.function_call_arguments.done", a);
      emit(out, "response.output_item.done",
           ",\"output_index\":" + std::to_string(call_index_[k]) + ",\"item\":" + call_item(k, "completed"));
    }
    open_ = kNone;
  }

  // The output items: the message (when there is text, or nothing else), then the calls.
  std::string output_json() const {
    std::string o = "[";
    const bool message = !answer_.text.empty() || !answer_.refusal.empty() || answer_.calls.empty();
    if (message) o += message_item();
    for (size_t k = 0; k < answer_.calls.size(); ++k) {
      if (message || k) o += ",";
      o += call_item(k, "completed");
    }
    return o + "]";
  }

  std::string usage_json() const {
    const int64_t in = std::max<int64_t>(answer_.input_tokens, 0), out = std::max<int64_t>(answer_.output_tokens, 0);
    return "{\"input_tokens\":" + std::to_string(in) + ",\"input_tokens_details\":{\"cached_tokens\":" +
           std::to_string(answer_.cached_tokens) + ",\"cache_write_tokens\":0},\"output_tokens\":" + std::to_string(out) +
           ",\"output_tokens_details\":{\"reasoning_tokens\":" + std::to_string(answer_.reasoning_tokens) +
           "},\"total_tokens\":" + std::to_string(in + out) + "}";
  }

  const std::string& final_response() {
    if (final_.empty()) {
      std::string incomplete = "null";
      status_ = "completed";
      if (answer_.finish == "length" || answer_.finish == "content_filter") {
        status_ = "incomplete";
        incomplete = answer_.finish == "length" ? "{\"reason\":\"max_output_tokens\"}" : "{\"reason\":\"content_filter\"}";
      }
      final_ = response_json(status_, output_json(), "null", incomplete, usage_json());
    }
    return final_;
  }

  std::string response_json(std::string_view status, std::string_view output, std::string_view error,
                            std::string_view incomplete, std::string_view usage = "null") const {
    auto or_ = [](const std::string& v, std::string_view d) { return v.empty() ? std::string(d) : v; };
    std::string r = "{\"id\":";
    append_json_string(r, id_);
    r += ",\"object\":\"response\",\"created_at\":" + std::to_string(created_);
    r += ",\"status\":\"";
    r += status;
    r += "\",\"background\":false,\"error\":";
    r += error;
    r += ",\"incomplete_details\":";
    r += incomplete;
    r += ",\"instructions\":" + or_(instructions, "null");
    r += ",\"max_output_tokens\":" + or_(max_output_tokens, "null");
    r += ",\"metadata\":" + or_(metadata, "{}");
    r += ",\"model\":";
    append_json_string(r, answer_.model.empty() ? model : answer_.model);
    r += ",\"output\":";
    r += output;
    r += ",\"parallel_tool_calls\":" + or_(parallel, "true");
    r += ",\"previous_response_id\":" + or_(previous, "null");
    r += ",\"reasoning\":" + or_(reasoning, "{\"effort\":null,\"summary\":null}");
    r += std::string(",\"store\":") + (keep ? "true" : "false");
    r += ",\"temperature\":" + or_(temperature, "1");
    r += ",\"text\":" + or_(text, "{\"format\":{\"type\":\"text\"}}");
    r += ",\"tool_choice\":" + or_(tool_choice, "\"auto\"");
    r += ",\"tools\":" + or_(tools, "[]");
    r += ",\"top_p\":" + or_(top_p, "1");
    r += ",\"truncation\":\"disabled\"";
    if (usage != "null") r += std::string(",\"usage\":") + std::string(usage);  // an object, or absent until known
    if (!user.empty()) r += ",\"user\":" + user;  // a string when given, else absent
    return r + "}";
  }

  std::string tenant_;
  Store store_;
  std::string suffix_, id_, msg_id_;
  int64_t created_ = 0, now_ms_ = 0;
  int64_t seq_ = 0;
  Open open_ = kNone;
  size_t open_call_ = 0, msg_index_ = 0, next_index_ = 0;
  std::vector<size_t> call_index_;  // output_index of each call
  std::string final_, status_;
};

}  // namespace

std::optional<ApiError> open_responses(simdjson::dom::parser& p, std::string_view body, const OpenContext& oc,
                                       Opened& opened) {
  element doc;
  if (auto err = p.parse(body.data(), body.size()).get(doc))
    return bad_request(std::string("request body is not valid JSON: ") + simdjson::error_message(err), "invalid_json");
  if (!doc.is_object()) return bad_request("request body must be a JSON object", "invalid_json");
  bool flag = false;
  if (!doc["background"].get_bool().get(flag) && flag) return unsupported("'background: true'", "background");
  if (has(doc, "conversation")) return unsupported("'conversation'", "conversation");
  if (has(doc, "prompt")) return unsupported("a stored 'prompt' (sluice releases hold prompts)", "prompt");
  std::string_view model;
  if (doc["model"].get_string().get(model) || model.empty()) {
    ApiError e = bad_request("you must provide a model parameter", "missing_model");
    e.param = "model";
    return e;
  }
  auto front = std::make_unique<ResponsesFront>(oc);
  ResponsesFront& f = *front;
  f.model.assign(model);
  if (!doc["store"].get_bool().get(flag)) f.keep = flag;

  std::string_view instructions;
  if (has(doc, "instructions") && doc["instructions"].get_string().get(instructions))
    return invalid("'instructions' must be a string", "instructions", "invalid_type");
  if (!instructions.empty()) f.instructions = raw(doc, "instructions");

  // The conversation: the stored one of previous_response_id, then this request's input.
  std::string history;
  if (has(doc, "previous_response_id")) {
    std::string_view prev;
    if (doc["previous_response_id"].get_string().get(prev))
      return invalid("'previous_response_id' must be a string", "previous_response_id", "invalid_type");
    std::optional<std::string> kept;
    if (oc.store.cache) kept = oc.store.cache->get(store_key(oc.tenant, prev), oc.now_ms);
    if (!kept)
      return invalid("Previous response with id '" + std::string(prev) + "' not found.", "previous_response_id",
                     "previous_response_not_found");
    simdjson::dom::parser hp;  // `doc` lives in p
    element h;
    array conv;
    if (!hp.parse(*kept).get(h) && !h["conversation"].get_array().get(conv)) {
      for (element m : conv) {
        if (!history.empty()) history.push_back(',');
        history += simdjson::minify(m);
      }
    }
    f.previous = raw(doc, "previous_response_id");
  }
  Messages msgs;
  element input;
  if (doc["input"].get(input) || input.is_null()) return invalid("'input' is required", "input", "missing_required_parameter");
  if (auto e = input_items(input, msgs, oc)) return e;
  f.conversation = history;
  if (!msgs.out.empty()) {
    if (!f.conversation.empty()) f.conversation.push_back(',');
    f.conversation += msgs.out;
  }

  std::string chat = "{\"model\":";
  append_json_string(chat, model);
  chat += ",\"messages\":[";
  if (!instructions.empty()) {
    chat += "{\"role\":\"system\",\"content\":";
    append_json_string(chat, instructions);
    chat += "}";
    if (!f.conversation.empty()) chat += ",";
  }
  chat += f.conversation + "]";

  // Function tools; hosted tools (web search, file search, computer use...) have no chat form.
  array tools;
  if (has(doc, "tools")) {
    if (doc["tools"].get_array().get(tools)) return invalid("'tools' must be an array", "tools", "invalid_type");
    std::string t = "[";
    size_t i = 0;
    for (element tool : tools) {
      const std::string param = "tools[" + std::to_string(i) + "]";
      std::string_view type = str(tool, "type");
      if (type != "function") return unsupported("tool type '" + std::string(type) + "'", param + ".type");
      std::string_view name = str(tool, "name");
      if (name.empty()) return invalid("a function tool needs a 'name'", param + ".name", "missing_required_parameter");
      if (i++) t += ",";
      t += "{\"type\":\"function\",\"function\":{\"name\":";
      append_json_string(t, name);
      if (auto d = str(tool, "description"); !d.empty()) member_str(t, "description", d);
      member_raw(t, "parameters", raw(tool, "parameters"));
      member_raw(t, "strict", raw(tool, "strict"));
      t += "}}";
    }
    t += "]";
    if (i) member_raw(chat, "tools", t);
    f.tools = raw(doc, "tools");
  }
  if (has(doc, "tool_choice")) {
    element tc = doc["tool_choice"].value_unsafe();
    std::string_view s;
    if (!tc.get_string().get(s)) {
      if (s != "auto" && s != "none" && s != "required")
        return invalid("'tool_choice' must be auto, none, required or a function", "tool_choice");
      member_raw(chat, "tool_choice", raw(doc, "tool_choice"));
    } else if (str(tc, "type") == "function" && !str(tc, "name").empty()) {
      std::string c = "{\"type\":\"function\",\"function\":{\"name\":";
      append_json_string(c, str(tc, "name"));
      member_raw(chat, "tool_choice", c + "}}");
    } else {
      return unsupported("this 'tool_choice'", "tool_choice");
    }
    f.tool_choice = raw(doc, "tool_choice");
  }
  if (has(doc, "parallel_tool_calls")) {
    f.parallel = raw(doc, "parallel_tool_calls");
    member_raw(chat, "parallel_tool_calls", f.parallel);
  }
  // Structured output: text.format -> response_format.
  if (has(doc, "text")) {
    element fmt;
    if (!doc["text"]["format"].get(fmt) && fmt.is_object()) {
      std::string_view type = str(fmt, "type");
      if (type == "json_object") {
        member_raw(chat, "response_format", "{\"type\":\"json_object\"}");
      } else if (type == "json_schema") {
        std::string rf = "{\"type\":\"json_schema\",\"json_schema\":{\"name\":";
        append_json_string(rf, str(fmt, "name").empty() ? std::string_view("response") : str(fmt, "name"));
        if (auto d = str(fmt, "description"); !d.empty()) member_str(rf, "description", d);
        member_raw(rf, "schema", raw(fmt, "schema"));
        member_raw(rf, "strict", raw(fmt, "strict"));
        member_raw(chat, "response_format", rf + "}}");
      } else if (type != "text") {
        return invalid("text.format.type must be text, json_object or json_schema", "text.format.type");
      }
    }
    f.text = raw(doc, "text");
  }
  if (has(doc, "max_output_tokens")) {
    int64_t n = 0;
    if (doc["max_output_tokens"].get_int64().get(n) || n < 1)
      return invalid("'max_output_tokens' must be a positive integer", "max_output_tokens");
    f.max_output_tokens = std::to_string(n);
    member_raw(chat, "max_tokens", f.max_output_tokens);
  }
  for (const char* k : {"temperature", "top_p"}) {
    std::string v = raw(doc, k);
    member_raw(chat, k, v);
    (std::string_view(k) == "temperature" ? f.temperature : f.top_p) = v;
  }
  f.user = raw(doc, "user");
  if (f.user.empty()) f.user = raw(doc, "safety_identifier");
  member_raw(chat, "user", f.user);
  f.metadata = raw(doc, "metadata");
  if (element reasoning; !doc["reasoning"].get(reasoning) && !str(reasoning, "effort").empty()) {
    member_str(chat, "reasoning_effort", str(reasoning, "effort"));
    f.reasoning = raw(doc, "reasoning");
  }
  member_raw(chat, "vars", raw(doc, "vars"));  // a release's prompt variables
  if (!doc["stream"].get_bool().get(flag) && flag) chat += ",\"stream\":true,\"stream_options\":{\"include_usage\":true}";
  chat += "}";
  opened.front = std::move(front);
  opened.chat_body = std::move(chat);
  return std::nullopt;
}

}  // namespace sluice::bridge
