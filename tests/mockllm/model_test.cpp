#include "mockllm/model.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

namespace sluice::mockllm {

namespace {
ChatRequest req(const std::string& body) {
  simdjson::dom::parser p;
  ChatRequest r;
  auto err = parse_chat(p, body, r);
  EXPECT_FALSE(err) << *err;
  return r;
}
}  // namespace

TEST(SplitPieces, ConcatenatesBackToTheText) {
  std::string t = "Hello,  wörld! supercalifragilistic\nnext";
  auto pieces = split_pieces(t);
  std::string joined;
  for (const auto& p : pieces) {
    EXPECT_LE(p.size(), 9u + 2u);
    joined += p;
  }
  EXPECT_EQ(joined, t);
}

TEST(MockPlan, DeterministicGivenSeedAndPrompt) {
  MockState a(7), b(7), c(8);
  auto r = req(R"({"model":"m","messages":[{"role":"user","content":"tell me"}]})");
  EXPECT_EQ(a.plan(r).text, b.plan(r).text);
  EXPECT_NE(a.plan(r).text, c.plan(r).text);
  auto p = a.plan(r);
  EXPECT_EQ(p.completion_tokens, static_cast<int64_t>(p.pieces.size()));
  EXPECT_GE(p.completion_tokens, 16);
  EXPECT_LE(p.completion_tokens, 64);
}

TEST(MockPlan, LatencyGrowsWithPromptLength) {
  MockState s(1);
  Options o;
  o.defaults.ttft_ms = 10;
  o.defaults.ttft_per_1k_prompt_ms = 100;
  ASSERT_EQ(s.load(o), "");
  auto shortp = s.plan(req(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})"));
  auto longp = s.plan(req(R"({"model":"m","messages":[{"role":"user","content":")" + std::string(8000, 'a') + "\"}]}"));
  EXPECT_GT(longp.ttft_ms, shortp.ttft_ms + 150);
}

TEST(MockPlan, FaultsSwitchAtRunTime) {
  MockState s(1);
  simdjson::dom::parser p;
  auto r = req(R"({"model":"m","messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(s.plan(r).fault, Fault::kNone);
  ASSERT_EQ(s.set_faults(p, R"({"model":"m","error_rate":1})"), "");
  EXPECT_EQ(s.plan(r).fault, Fault::kError);
  EXPECT_EQ(s.plan(req(R"({"model":"other","messages":[{"role":"user","content":"x"}]})")).fault, Fault::kNone);
  ASSERT_EQ(s.set_faults(p, R"({"refusal_rate":1,"refusal_content_filter":true})"), "");
  s.clear_faults();
  EXPECT_EQ(s.plan(r).fault, Fault::kNone);
  ASSERT_EQ(s.set_faults(p, R"({"refusal_rate":1,"refusal_content_filter":true})"), "");
  auto refused = s.plan(r);
  EXPECT_EQ(refused.finish_reason, "content_filter");
  EXPECT_NE(refused.text.find("sorry"), std::string::npos);
}

TEST(MockPlan, ToolCallsAndMaxTokens) {
  MockState s(1);
  auto t = s.plan(req(R"({"model":"m","messages":[{"role":"user","content":"weather?"}],
    "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","required":["city"]}}}]})"));
  EXPECT_EQ(t.tool_name, "get_weather");
  EXPECT_EQ(t.tool_args, "{\"city\":\"mock\"}");
  EXPECT_EQ(t.finish_reason, "tool_calls");
  auto l = s.plan(req(R"({"model":"m","max_tokens":2,"messages":[{"role":"user","content":"x"}]})"));
  EXPECT_EQ(l.completion_tokens, 2);
  EXPECT_EQ(l.finish_reason, "length");
}

TEST(MockJson, CompletionIsValidOpenAiShape) {
  MockState s(1);
  auto p = s.plan(req(R"({"model":"m","messages":[{"role":"user","content":"x"}]})"));
  std::string body = completion_json("id1", "m", p, 2);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_FALSE(parser.parse(body).get(doc));
  EXPECT_EQ(doc["choices"].get_array().size(), 2u);
  int64_t total = 0;
  ASSERT_FALSE(doc["usage"]["total_tokens"].get_int64().get(total));
  EXPECT_EQ(total, p.prompt_tokens + 2 * p.completion_tokens);
}

}  // namespace sluice::mockllm

namespace sluice::mockllm {
namespace {

TEST(PrefixCache, CountsLeadingBlocksSharedWithEarlierPrompts) {
  PrefixCache c(100, 4);
  EXPECT_EQ(c.lookup_insert("system: be nice. user: hi"), (std::pair<size_t, size_t>{0, 6}));
  // Same system prompt, another question: the shared leading blocks hit.
  auto [hit, blocks] = c.lookup_insert("system: be nice. user: yo!!");
  EXPECT_EQ(blocks, 6u);
  EXPECT_EQ(hit, 5u);
  // A different start shares nothing, even with identical later blocks (chained hashes).
  EXPECT_EQ(c.lookup_insert("SYSTEM: be nice. user: hi").first, 0u);
}

TEST(PrefixCache, IsBoundedLeastRecentlyUsedFirst) {
  PrefixCache c(2, 4);
  c.lookup_insert("aaaabbbb");   // 2 blocks
  c.lookup_insert("ccccdddd");   // evicts both of the first
  EXPECT_EQ(c.lookup_insert("aaaabbbb").first, 0u);
}

}  // namespace
}  // namespace sluice::mockllm
