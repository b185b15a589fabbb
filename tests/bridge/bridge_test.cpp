// Tests for the front doors (Responses, Anthropic Messages) and the Anthropic upstream:
// what each translation writes, read back with simdjson.
#include <gtest/gtest.h>
#include <simdjson.h>

#include "bridge/anthropic_upstream.hpp"
#include "bridge/front.hpp"
#include "cache/response_cache.hpp"

namespace sluice::bridge {
namespace {

using simdjson::dom::element;

std::string at(simdjson::dom::parser& p, const std::string& json, const char* pointer) {
  element doc;
  if (p.parse(json).get(doc)) return "<not json>";
  element v;
  if (doc.at_pointer(pointer).get(v)) return "<absent>";
  std::string_view s;
  if (!v.get_string().get(s)) return std::string(s);
  return simdjson::minify(v);
}

// The event names of an SSE text, in order.
std::vector<std::string> event_names(const std::string& sse) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = sse.find("event: ", pos)) != std::string::npos) {
    size_t end = sse.find('\n', pos);
    out.push_back(sse.substr(pos + 7, end - pos - 7));
    pos = end;
  }
  return out;
}

const char* kChatChunks[] = {
    R"({"id":"c","model":"m-1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})",
    R"({"id":"c","model":"m-1","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]})",
    R"({"id":"c","model":"m-1","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]})",
    R"({"id":"c","model":"m-1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})",
    R"({"id":"c","model":"m-1","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2}})",
};

const char* kToolChunks[] = {
    R"({"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]}}]})",
    R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}}]})",
    R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}}]})",
    R"({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})",
};

TEST(Responses, InstructionsAndItemsBecomeChatMessagesInOrder) {
  simdjson::dom::parser p;
  Opened o;
  auto err = open_responses(p, R"({"model":"bot","instructions":"Be brief.","input":[
      {"role":"user","content":[{"type":"input_text","text":"Weather?"},{"type":"input_image","image_url":"https://x/y.png"}]},
      {"type":"function_call","call_id":"c1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
      {"type":"function_call","call_id":"c2","name":"get_time","arguments":"{}"},
      {"type":"function_call_output","call_id":"c1","output":"18C"}],
      "tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}],
      "tool_choice":{"type":"function","name":"get_weather"},
      "text":{"format":{"type":"json_schema","name":"w","schema":{"type":"object"},"strict":true}},
      "max_output_tokens":50,"temperature":0.2,"stream":true,"vars":{"x":"1"}})",
                            OpenContext{"req_abc", "t", 0, {}}, o);
  ASSERT_FALSE(err) << err->message;
  const std::string& c = o.chat_body;
  EXPECT_EQ(at(p, c, "/messages/0"), R"({"role":"system","content":"Be brief."})");
  EXPECT_EQ(at(p, c, "/messages/1/content/1/image_url/url"), "https://x/y.png");
  // Two calls in a row are one assistant turn; the output follows it.
  EXPECT_EQ(at(p, c, "/messages/2/role"), "assistant");
  EXPECT_EQ(at(p, c, "/messages/2/tool_calls/1/function/name"), "get_time");
  EXPECT_EQ(at(p, c, "/messages/3"), R"({"role":"tool","tool_call_id":"c1","content":"18C"})");
  EXPECT_EQ(at(p, c, "/tools/0/function/name"), "get_weather");
  EXPECT_EQ(at(p, c, "/tool_choice/function/name"), "get_weather");
  EXPECT_EQ(at(p, c, "/response_format/json_schema/name"), "w");
  EXPECT_EQ(at(p, c, "/max_tokens"), "50");
  EXPECT_EQ(at(p, c, "/stream_options/include_usage"), "true");
  EXPECT_EQ(at(p, c, "/vars/x"), "1");  // a release's variables pass through
}

TEST(Responses, RefusesWhatChatCannotServeNamingTheField) {
  simdjson::dom::parser p;
  Opened o;
  auto e = open_responses(p, R"({"model":"bot","input":"hi","tools":[{"type":"web_search"}]})", {}, o);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, 400);
  EXPECT_EQ(e->code, "unsupported_parameter");
  EXPECT_EQ(e->param, "tools[0].type");
  e = open_responses(p, R"({"model":"bot","input":[{"type":"computer_call_output"}]})", {}, o);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param, "input[0].type");
  e = open_responses(p, R"({"input":"hi"})", {}, o);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "missing_model");
  e = open_responses(p, R"({"model":"bot","input":"hi","background":true})", {}, o);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param, "background");
  e = open_responses(p, R"({"model":"bot","input":"hi",)", {}, o);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "invalid_json");
}

TEST(Responses, AStreamIsTheEventSequenceAndEndsWithTheWholeResponse) {
  simdjson::dom::parser p;
  Opened o;
  ASSERT_FALSE(open_responses(p, R"({"model":"bot","input":"hi","stream":true})", OpenContext{"req_1", "", 1000, {}}, o));
  std::string out;
  for (const char* c : kChatChunks) o.front->chunk(p, c, out);
  o.front->chunk(p, "[DONE]", out);
  auto names = event_names(out);
  std::vector<std::string> want = {"response.created", "response.in_progress", "response.output_item.added",
                                   "response.content_part.added", "response.output_text.delta", "response.output_text.delta",
                                   "response.output_text.done", "response.content_part.done", "response.output_item.done",
                                   "response.completed"};
  EXPECT_EQ(names, want);
  const std::string last = out.substr(out.rfind("data: ") + 6);
  EXPECT_EQ(at(p, last, "/response/output/0/content/0/text"), "Hello");
  EXPECT_EQ(at(p, last, "/response/usage/total_tokens"), "9");
  EXPECT_EQ(at(p, last, "/sequence_number"), "9");
  EXPECT_EQ(at(p, last, "/response/id").size(), 5u + 32u);  // resp_ and 128 random bits
  // Nothing is written after the end.
  std::string after;
  o.front->chunk(p, kChatChunks[1], after);
  EXPECT_TRUE(after.empty());
}

TEST(Responses, StreamedToolCallsAreFunctionCallItemsWithArgumentDeltas) {
  simdjson::dom::parser p;
  Opened o;
  ASSERT_FALSE(open_responses(p, R"({"model":"bot","input":"hi","stream":true})", OpenContext{"req_2", "", 0, {}}, o));
  std::string out;
  for (const char* c : kToolChunks) o.front->chunk(p, c, out);
  o.front->done(out);
  auto names = event_names(out);
  EXPECT_EQ(std::count(names.begin(), names.end(), "response.function_call_arguments.delta"), 2);
  EXPECT_EQ(names.back(), "response.completed");
  const std::string last = out.substr(out.rfind("data: ") + 6);
  EXPECT_EQ(at(p, last, "/response/output/0/type"), "function_call");
  EXPECT_EQ(at(p, last, "/response/output/0/call_id"), "call_1");
  EXPECT_EQ(at(p, last, "/response/output/0/arguments"), R"({"city":"Paris"})");
}

TEST(Responses, ABrokenStreamEndsWithErrorAndResponseFailed) {
  simdjson::dom::parser p;
  Opened o;
  ASSERT_FALSE(open_responses(p, R"({"model":"bot","input":"hi","stream":true})", OpenContext{"req_3", "", 0, {}}, o));
  std::string out;
  o.front->chunk(p, kChatChunks[1], out);
  o.front->stream_error(error_of(ErrorKind::kStreamCut, "cut"), out);
  auto names = event_names(out);
  ASSERT_GE(names.size(), 2u);
  EXPECT_EQ(names[names.size() - 2], "error");
  EXPECT_EQ(names.back(), "response.failed");
  // The error event says what happened; response.failed uses the API's own codes.
  EXPECT_NE(out.find(R"("type":"error","sequence_number":8,"code":"stream_cut")"), std::string::npos);
  EXPECT_EQ(at(p, out.substr(out.rfind("data: ") + 6), "/response/error/code"), "server_error");
}

TEST(Responses, PreviousResponseIdContinuesTheTenantsOwnConversation) {
  simdjson::dom::parser p;
  cache::ResponseCache store(1 << 20);
  OpenContext oc{"req_10", "acme", 1000, Store{&store, 60000}};
  Opened first;
  ASSERT_FALSE(open_responses(p, R"({"model":"bot","instructions":"Sys.","input":"Q1"})", oc, first));
  std::string whole = first.front->whole(
      p, R"({"model":"m","choices":[{"message":{"role":"assistant","content":"A1"},"finish_reason":"stop"}]})");
  EXPECT_EQ(at(p, whole, "/output/0/content/0/text"), "A1");
  const std::string id = at(p, whole, "/id");
  ASSERT_TRUE(stored_response(p, oc.store, store_key("acme", id), 2000));
  const std::string again = R"({"model":"bot","previous_response_id":")" + id + R"(","input":"Q2"})";

  Opened second;
  oc.request_id = "req_11";
  ASSERT_FALSE(open_responses(p, again, oc, second));
  // Instructions are not carried over; the conversation is.
  EXPECT_EQ(at(p, second.chat_body, "/messages/0/content"), "Q1");
  EXPECT_EQ(at(p, second.chat_body, "/messages/1/content"), "A1");
  EXPECT_EQ(at(p, second.chat_body, "/messages/2/content"), "Q2");

  OpenContext other = oc;
  other.tenant = "intruder";
  Opened third;
  auto e = open_responses(p, again, other, third);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param, "previous_response_id");

  Opened unkept;
  oc.request_id = "req_12";
  ASSERT_FALSE(open_responses(p, R"({"model":"bot","store":false,"input":"Q"})", oc, unkept));
  const std::string unkept_whole = unkept.front->whole(p, R"({"choices":[{"message":{"content":"A"},"finish_reason":"stop"}]})");
  EXPECT_FALSE(stored_response(p, oc.store, store_key("acme", at(p, unkept_whole, "/id")), 2000));
}

TEST(Messages, BlocksBecomeChatMessagesWithToolResultsRightAfterTheCalls) {
  simdjson::dom::parser p;
  Opened o;
  auto err = open_messages(p, R"({"model":"claude","max_tokens":10,"system":[{"type":"text","text":"S1"},{"type":"text","text":"S2"}],
      "messages":[{"role":"user","content":"Weather?"},
                  {"role":"assistant","content":[{"type":"text","text":"Let me check."},{"type":"tool_use","id":"t1","name":"w","input":{"city":"Oslo"}}]},
                  {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"cold"}]},{"type":"text","text":"Thanks"}]}],
      "tools":[{"name":"w","input_schema":{"type":"object"}}],"tool_choice":{"type":"any","disable_parallel_tool_use":true},
      "stop_sequences":["END"],"metadata":{"user_id":"u1"}})",
                           OpenContext{"req_x", "", 0, {}}, o);
  ASSERT_FALSE(err) << err->message;
  const std::string& c = o.chat_body;
  EXPECT_EQ(at(p, c, "/messages/0"), R"({"role":"system","content":"S1\nS2"})");
  EXPECT_EQ(at(p, c, "/messages/2/content"), "Let me check.");
  EXPECT_EQ(at(p, c, "/messages/2/tool_calls/0/function/arguments"), R"({"city":"Oslo"})");
  EXPECT_EQ(at(p, c, "/messages/3"), R"({"role":"tool","tool_call_id":"t1","content":"cold"})");
  EXPECT_EQ(at(p, c, "/messages/4"), R"({"role":"user","content":"Thanks"})");
  EXPECT_EQ(at(p, c, "/tool_choice"), "required");
  EXPECT_EQ(at(p, c, "/parallel_tool_calls"), "false");
  EXPECT_EQ(at(p, c, "/stop"), R"(["END"])");
  EXPECT_EQ(at(p, c, "/user"), "u1");
  EXPECT_EQ(at(p, c, "/max_tokens"), "10");

  auto e = open_messages(p, R"({"model":"claude","messages":[{"role":"user","content":"hi"}]})", {}, o);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param, "max_tokens");
  EXPECT_EQ(error_json(Api::kMessages, *e),
            R"({"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}})");
}

TEST(Messages, AnswersAreMessagesWithToolUseInputAsObjects) {
  simdjson::dom::parser p;
  Opened o;
  ASSERT_FALSE(open_messages(p, R"({"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"hi"}]})",
                             OpenContext{"req_y", "", 0, {}}, o));
  std::string m = o.front->whole(p, R"({"choices":[{"message":{"content":null,"tool_calls":[
      {"id":"c1","type":"function","function":{"name":"w","arguments":"{\"city\":\"Oslo\"}"}},
      {"id":"c2","type":"function","function":{"name":"w","arguments":"not json"}}]},"finish_reason":"tool_calls"}],
      "usage":{"prompt_tokens":3,"completion_tokens":4}})");
  EXPECT_EQ(at(p, m, "/content/0/input"), R"({"city":"Oslo"})");
  EXPECT_EQ(at(p, m, "/content/1/input"), "{}");
  EXPECT_EQ(at(p, m, "/stop_reason"), "tool_use");
  EXPECT_EQ(at(p, m, "/usage/output_tokens"), "4");
  EXPECT_EQ(at(p, m, "/model"), "claude");
}

TEST(Messages, AStreamIsAnthropicsEventSequence) {
  simdjson::dom::parser p;
  Opened o;
  ASSERT_FALSE(open_messages(p, R"({"model":"claude","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]})",
                             OpenContext{"req_z", "", 0, {}}, o));
  std::string out;
  for (const char* c : kChatChunks) o.front->chunk(p, c, out);
  o.front->chunk(p, "[DONE]", out);
  std::vector<std::string> want = {"message_start", "content_block_start", "content_block_delta", "content_block_delta",
                                   "content_block_stop", "message_delta", "message_stop"};
  EXPECT_EQ(event_names(out), want);
  EXPECT_NE(out.find(R"("delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":7)"), std::string::npos);
}

TEST(AnthropicUpstream, ChatRequestsBecomeAlternatingTurns) {
  simdjson::dom::parser p;
  std::string out;
  auto e = anthropic_request(p, R"({"model":"claude","messages":[{"role":"system","content":"Sys"},
      {"role":"user","content":[{"type":"text","text":"Q"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},
      {"role":"assistant","content":null,"tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}},
                                                       {"id":"b","type":"function","function":{"name":"f","arguments":"{}"}}]},
      {"role":"tool","tool_call_id":"a","content":"1"},{"role":"tool","tool_call_id":"b","content":"2"},
      {"role":"user","content":"and?"}],
      "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"required",
      "parallel_tool_calls":false,"stop":"END","user":"u","stream":true})",
                             out);
  ASSERT_FALSE(e) << e->message;
  EXPECT_EQ(at(p, out, "/system"), "Sys");
  EXPECT_EQ(at(p, out, "/max_tokens"), std::to_string(kAnthropicDefaultMaxTokens));
  EXPECT_EQ(at(p, out, "/messages/0/content/1/source/media_type"), "image/png");
  EXPECT_EQ(at(p, out, "/messages/1/content/0/input"), R"({"x":1})");
  // Both results and the next question are one user turn.
  EXPECT_EQ(at(p, out, "/messages/2/content/0/tool_use_id"), "a");
  EXPECT_EQ(at(p, out, "/messages/2/content/1/tool_use_id"), "b");
  EXPECT_EQ(at(p, out, "/messages/2/content/2/text"), "and?");
  EXPECT_EQ(at(p, out, "/messages/3"), "<absent>");
  EXPECT_EQ(at(p, out, "/tool_choice"), R"({"type":"any","disable_parallel_tool_use":true})");
  EXPECT_EQ(at(p, out, "/stop_sequences"), R"(["END"])");
  EXPECT_EQ(at(p, out, "/metadata/user_id"), "u");
  auto n = anthropic_request(p, R"({"model":"c","n":2,"messages":[]})", out);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->param, "n");
}

TEST(AnthropicUpstream, AStreamSplitAnywhereIsTheSameChatStream) {
  const std::string sse =
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude\","
      "\"usage\":{\"input_tokens\":5,\"cache_read_input_tokens\":2,\"output_tokens\":1}}}\n\n"
      "event: ping\ndata: {\"type\":\"ping\"}\n\n"
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n"
      "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"tu\",\"name\":\"f\",\"input\":{}}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n"
      "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":9}}\n\n"
      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
  simdjson::dom::parser p;
  AnthropicAnswer whole(1 << 20);
  const std::string once(whole.stream(p, sse));
  for (size_t step : {1u, 7u, 64u}) {
    AnthropicAnswer split(1 << 20);
    std::string got;
    for (size_t i = 0; i < sse.size(); i += step) got += split.stream(p, std::string_view(sse).substr(i, step));
    EXPECT_EQ(got, once) << "step " << step;
  }
  EXPECT_NE(once.find(R"("delta":{"content":"Hi"})"), std::string::npos);
  EXPECT_NE(once.find(R"("tool_calls":[{"index":0,"id":"tu","type":"function","function":{"name":"f","arguments":""}}])"),
            std::string::npos);
  EXPECT_NE(once.find(R"("finish_reason":"tool_calls")"), std::string::npos);
  EXPECT_NE(once.find(R"("usage":{"prompt_tokens":7,"completion_tokens":9,"total_tokens":16,"prompt_tokens_details":{"cached_tokens":2}})"),
            std::string::npos);
  EXPECT_EQ(once.substr(once.size() - 14), "data: [DONE]\n\n");
}

TEST(AnthropicUpstream, CacheWritesCountAndAToolWithoutArgumentsGetsAnEmptyObject) {
  const std::string sse =
      "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":5,"
      "\"cache_creation_input_tokens\":100}}}\n\n"
      "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"now\",\"input\":{}}}\n\n"
      "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
      "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"input_tokens\":5,\"output_tokens\":3}}\n\n"
      "data: {\"type\":\"message_stop\"}\n\n";
  simdjson::dom::parser p;
  AnthropicAnswer a(1 << 20);
  const std::string out(a.stream(p, sse));
  EXPECT_NE(out.find(R"("function":{"arguments":"{}"})"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("prompt_tokens":105,"completion_tokens":3)"), std::string::npos) << out;
  std::string req;
  ASSERT_FALSE(anthropic_request(p, R"({"model":"c","messages":[{"role":"user","content":"q"}],"temperature":1.7,"top_p":0.5})", req));
  EXPECT_EQ(at(p, req, "/temperature"), "1");
  EXPECT_EQ(at(p, req, "/top_p"), "<absent>");
}

TEST(AnthropicUpstream, AnswersAndErrorsBecomeChatShapes) {
  simdjson::dom::parser p;
  AnthropicAnswer a(1 << 20);
  std::string c = a.whole(p, R"({"id":"msg_1","model":"claude","content":[{"type":"text","text":"Hi "},{"type":"text","text":"there"},
      {"type":"tool_use","id":"tu","name":"f","input":{"a":1}}],"stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":4}})",
                          200);
  EXPECT_EQ(at(p, c, "/choices/0/message/content"), "Hi there");
  EXPECT_EQ(at(p, c, "/choices/0/message/tool_calls/0/function/arguments"), R"({"a":1})");
  EXPECT_EQ(at(p, c, "/choices/0/finish_reason"), "tool_calls");
  EXPECT_EQ(at(p, c, "/usage/total_tokens"), "7");
  std::string e = a.whole(p, R"({"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 300000 tokens > 200000 maximum"}})",
                          400);
  EXPECT_EQ(at(p, e, "/error/code"), "context_length_exceeded");
  EXPECT_EQ(at(p, e, "/error/type"), "invalid_request_error");
  e = a.whole(p, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})", 529);
  EXPECT_EQ(at(p, e, "/error/message"), "Overloaded");
}

}  // namespace
}  // namespace sluice::bridge
