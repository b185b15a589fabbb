#include "json/chat.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

namespace sluice::json {

namespace {
std::optional<RequestProblem> inspect(const std::string& body, RequestInfo& info) {
  simdjson::dom::parser p;
  return inspect_request(p, body, body.capacity(), info);
}
}  // namespace

TEST(InspectRequest, ExtractsPipelineFields) {
  RequestInfo info;
  auto err = inspect(R"({"model":"m","stream":true,"stream_options":{"include_usage":true},"user":"u1","n":2,
      "tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"hi"}],"x":{"y":1}})",
                     info);
  ASSERT_FALSE(err) << err->message;
  EXPECT_EQ(info.model, "m");
  EXPECT_TRUE(info.stream);
  EXPECT_TRUE(info.has_stream_options);
  EXPECT_TRUE(info.include_usage);
  EXPECT_EQ(info.user, "u1");
  EXPECT_EQ(info.n, 2);
  EXPECT_TRUE(info.has_tools);
  EXPECT_EQ(info.messages, 1);
}

TEST(InspectRequest, RejectsMalformedAndWrongTypes) {
  RequestInfo info;
  EXPECT_TRUE(inspect(R"({"model":"m","messages":[)", info));
  EXPECT_TRUE(inspect(R"([1,2,3])", info));
  EXPECT_TRUE(inspect(R"({"model":5})", info));
  EXPECT_TRUE(inspect(R"({"model":"m","stream":"yes"})", info));
  EXPECT_TRUE(inspect(R"({"model":"m","n":0})", info));
  EXPECT_TRUE(inspect(R"({"model":"m","messages":{}})", info));
  EXPECT_TRUE(inspect("{\"model\":\"\xff\xfe\"}", info));  // invalid UTF-8
  EXPECT_TRUE(inspect("", info));
  auto p = inspect(R"({"model":"m","stream":"yes"})", info);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->code, "invalid_type");
  EXPECT_EQ(p->param, "stream");
  EXPECT_EQ(inspect(R"({"model":)", info)->code, "invalid_json");
}

TEST(InspectChunk, ClassifiesStreamEvents) {
  simdjson::dom::parser p;
  auto c = inspect_chunk(p, R"({"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]})");
  EXPECT_TRUE(c.valid_json);
  EXPECT_TRUE(c.has_content);
  EXPECT_FALSE(c.usage_only);
  auto u = inspect_chunk(p, R"({"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5}})");
  EXPECT_TRUE(u.usage_only);
  EXPECT_EQ(u.usage.prompt_tokens, 3);
  EXPECT_EQ(u.usage.completion_tokens, 5);
  auto t = inspect_chunk(p, R"({"choices":[{"delta":{"tool_calls":[{"index":0}]}}]})");
  EXPECT_TRUE(t.has_content);
  auto f = inspect_chunk(p, R"({"choices":[{"delta":{},"finish_reason":"stop"}]})");
  EXPECT_FALSE(f.has_content);
  EXPECT_EQ(f.finish_reason, "stop");
  auto e = inspect_chunk(p, R"({"error":{"message":"x"}})");
  EXPECT_TRUE(e.is_error);
  EXPECT_FALSE(inspect_chunk(p, "{not json").valid_json);
}

TEST(ResponseUsage, DistinguishesMissingUsageFromGarbage) {
  simdjson::dom::parser p;
  auto a = response_usage(p, R"({"usage":{"prompt_tokens":1,"completion_tokens":2}})");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->completion_tokens, 2);
  auto b = response_usage(p, R"({"data":[]})");
  ASSERT_TRUE(b);
  EXPECT_FALSE(b->present());
  EXPECT_FALSE(response_usage(p, "<html>"));
  std::string text, finish;
  auto c = response_usage_and_answer(
      p, R"({"choices":[{"message":{"content":"I'm sorry, but no."},"finish_reason":"stop"}],"usage":{"completion_tokens":5}})",
      8, &text, &finish);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->completion_tokens, 5);
  EXPECT_EQ(text, "I'm sorr");  // bounded copy
  EXPECT_EQ(finish, "stop");
}

}  // namespace sluice::json
