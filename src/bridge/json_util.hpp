// bridge/json_util.hpp: small readers and writers the translators share (simdjson DOM in,
// plain strings out). Internal to the bridge module.
#pragma once
#include <simdjson.h>

#include <string>
#include <string_view>

#include "bridge/front.hpp"
#include "core/error.hpp"

namespace sluice::bridge {

// obj[key] as a string; "" when absent, null or not a string.
inline std::string_view str(simdjson::dom::element obj, std::string_view key) {
  std::string_view v;
  if (obj.is_object() && !obj.get_object()[key].get_string().get(v)) return v;
  return {};
}

// Whether obj has `key` (null counts as absent).
inline bool has(simdjson::dom::element obj, std::string_view key) {
  simdjson::dom::element v;
  return obj.is_object() && !obj.get_object()[key].get(v) && !v.is_null();
}

// obj[key] as minified JSON ("" when absent or null).
inline std::string raw(simdjson::dom::element obj, std::string_view key) {
  simdjson::dom::element v;
  if (!obj.is_object() || obj.get_object()[key].get(v) || v.is_null()) return {};
  return simdjson::minify(v);
}

// Usage of a chat completion or of a stream's usage chunk.
inline void read_usage(simdjson::dom::element doc, Answer& a) {
  simdjson::dom::element u;
  if (doc.get_object()["usage"].get(u) || !u.is_object()) return;
  int64_t v = 0;
  if (!u["prompt_tokens"].get_int64().get(v)) a.input_tokens = v;
  if (!u["completion_tokens"].get_int64().get(v)) a.output_tokens = v;
  if (!u["prompt_tokens_details"]["cached_tokens"].get_int64().get(v)) a.cached_tokens = v;
  if (!u["completion_tokens_details"]["reasoning_tokens"].get_int64().get(v)) a.reasoning_tokens = v;
}

// A JSON member `"key":` followed by a string value, with a leading comma.
inline void member_str(std::string& out, std::string_view key, std::string_view value) {
  out.push_back(',');
  append_json_string(out, key);
  out.push_back(':');
  append_json_string(out, value);
}
// ... with a raw JSON value (skipped when empty).
inline void member_raw(std::string& out, std::string_view key, std::string_view json) {
  if (json.empty()) return;
  out.push_back(',');
  append_json_string(out, key);
  out.push_back(':');
  out.append(json);
}

// One chat completions tool call, comma-separated onto `calls`: {"id","type":"function",
// "function":{"name","arguments"}}; arguments "{}" when there are none.
inline void append_tool_call(std::string& calls, std::string_view id, std::string_view name, std::string_view args) {
  if (!calls.empty()) calls.push_back(',');
  calls += "{\"id\":";
  append_json_string(calls, id);
  calls += ",\"type\":\"function\",\"function\":{\"name\":";
  append_json_string(calls, name);
  calls += ",\"arguments\":";
  append_json_string(calls, args.empty() ? std::string_view("{}") : args);
  calls += "}}";
}

// One SSE event with a name: "event: NAME\ndata: JSON\n\n".
inline void sse_event(std::string& out, std::string_view name, std::string_view json) {
  out += "event: ";
  out += name;
  out += "\ndata: ";
  out += json;
  out += "\n\n";
}

// Whether `s` parses as a JSON object (tool arguments must be one).
inline bool json_object_text(simdjson::dom::parser& p, std::string_view s) {
  simdjson::dom::element e;
  return !p.parse(s.data(), s.size()).get(e) && e.is_object();
}

}  // namespace sluice::bridge
