#include "pipeline/synth.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

namespace sluice::pipeline {
namespace {

RequestContext ctx_for(bool stream, bool usage = false) {
  RequestContext c;
  c.request_id = "req_1";
  c.info.model = "bot";
  c.info.stream = stream;
  c.info.include_usage = usage;
  return c;
}

TEST(Synth, StaticAnswerIsAChatCompletion) {
  simdjson::dom::parser p;
  std::string whole = static_answer(ctx_for(false), "busy \"now\"");
  simdjson::dom::element doc;
  ASSERT_FALSE(p.parse(whole).get(doc)) << whole;
  std::string_view content, finish, object;
  EXPECT_FALSE(doc["object"].get_string().get(object));
  EXPECT_EQ(object, "chat.completion");
  EXPECT_FALSE(doc["choices"].at(0)["message"]["content"].get_string().get(content));
  EXPECT_EQ(content, "busy \"now\"");
  EXPECT_FALSE(doc["choices"].at(0)["finish_reason"].get_string().get(finish));
  EXPECT_EQ(finish, "stop");
}

TEST(Synth, StreamedAnswerEndsWithDoneAndCarriesUsageWhenAsked) {
  std::string s = static_answer(ctx_for(true, true), "hi");
  EXPECT_EQ(s.rfind("data: [DONE]\n\n"), s.size() - 14);
  EXPECT_NE(s.find("\"usage\""), std::string::npos);
  EXPECT_EQ(static_answer(ctx_for(true, false), "hi").find("\"usage\""), std::string::npos);
}

TEST(Synth, OnlyDeterministicRequestsAreCacheable) {
  simdjson::dom::parser p;
  EXPECT_TRUE(deterministic(p, R"({"temperature":0,"messages":[]})"));
  EXPECT_TRUE(deterministic(p, R"({"temperature":0.9,"seed":7})"));
  EXPECT_FALSE(deterministic(p, R"({"temperature":0.2})"));
  EXPECT_FALSE(deterministic(p, R"({"messages":[]})")) << "no temperature: the provider's default samples";
  EXPECT_FALSE(deterministic(p, "not json"));
}

TEST(Synth, ReplaysACachedCompletionAsAStream) {
  simdjson::dom::parser p;
  const std::string cached =
      R"({"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"4"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}})";
  std::string s = replay_as_stream(p, ctx_for(true, true), cached);
  EXPECT_NE(s.find("{\"content\":\"4\"}"), std::string::npos) << s;
  EXPECT_NE(s.find("\"completion_tokens\":1"), std::string::npos);
  const std::string tools =
      R"({"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[]},"finish_reason":"tool_calls"}]})";
  EXPECT_EQ(replay_as_stream(p, ctx_for(true), tools), "") << "tool calls are not replayed";
}

}  // namespace
TEST(Synth, AContinuationCarriesTheAnswerSoFarAsTheAssistantsMessage) {
  simdjson::dom::parser p;
  const std::string body = R"({"model":"m","stream":true,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Capital?"}]})";
  auto c = continuation_request(p, body, "The capital \"is\"");
  ASSERT_TRUE(c);
  EXPECT_EQ(*c,
            R"({"model":"m","stream":true,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Capital?"},{"role":"assistant","content":"The capital \"is\""}],"continue_final_message":true,"add_generation_prompt":false})");
  EXPECT_FALSE(continuation_request(p, R"({"model":"m"})", "x"));
  EXPECT_FALSE(continuation_request(p, "not json", "x"));
}

}  // namespace sluice::pipeline
