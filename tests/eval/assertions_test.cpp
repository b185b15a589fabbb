#include "eval/assertions.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace sluice::eval {
namespace {

Assertion A(std::string type, std::string value = "") {
  Assertion a;
  if (type.rfind("not-", 0) == 0) {
    a.negate = true;
    type = type.substr(4);
  }
  a.type = type;
  a.value = std::move(value);
  return a;
}

Output O(std::string text, std::string finish = "stop") {
  Output o;
  o.text = std::move(text);
  o.finish_reason = std::move(finish);
  return o;
}

bool pass(const Assertion& a, const Output& o, const JudgeLookup& j = nullptr) { return evaluate(a, o, j).pass; }

TEST(Assertions, StringTypes) {
  EXPECT_TRUE(pass(A("equals", "Paris"), O("Paris")));
  EXPECT_FALSE(pass(A("equals", "Paris"), O("Paris.")));
  EXPECT_TRUE(pass(A("contains", "ar"), O("Paris")));
  EXPECT_FALSE(pass(A("contains", "AR"), O("Paris")));
  EXPECT_TRUE(pass(A("icontains", "AR"), O("Paris")));
  EXPECT_TRUE(pass(A("starts-with", "Pa"), O("Paris")));
  EXPECT_FALSE(pass(A("starts-with", "ris"), O("Paris")));
  EXPECT_TRUE(pass(A("not-contains", "London"), O("Paris")));
  EXPECT_FALSE(pass(A("not-icontains", "paris"), O("Paris")));
  // Case-insensitive as JavaScript's toLowerCase (promptfoo), not only ASCII.
  EXPECT_TRUE(pass(A("icontains", "ÜBER STRAßE"), O("über straße")));
  EXPECT_TRUE(pass(A("icontains", "ПРИВЕТ"), O("привет, мир")));
  EXPECT_TRUE(pass(A("icontains", "ΑΘΉΝΑ"), O("αθήνα")));
  EXPECT_TRUE(pass(A("icontains", "łódź"), O("ŁÓDŹ")));
  EXPECT_FALSE(pass(A("icontains", "é"), O("E")));
  EXPECT_TRUE(pass(A("icontains", "ΟΔΥΣΣΕΥΣ ΣΕ"), O("οδυσσευς σε")));  // final sigma, as JavaScript
  EXPECT_TRUE(pass(A("icontains", "ႠᎠ𐐀ǄȺ"), O("ⴀꭰ𐐨ǆⱥ")));  // Georgian, Cherokee, Deseret, Latin Extended-B
  EXPECT_TRUE(pass(A("icontains", "İ"), O("i\xCC\x87")));
  EXPECT_TRUE(pass(A("icontains", "a\xFF"), O("A\xFF")));  // not UTF-8: bytes kept
  // A regex matches characters, as JavaScript's RegExp does, not UTF-8 bytes.
  EXPECT_TRUE(pass(A("regex", "^caf.$"), O("café")));
  EXPECT_TRUE(pass(A("regex", "^[àé]{2}$"), O("éà")));
  EXPECT_FALSE(pass(A("regex", "^[àé]{2}$"), O("é")));
  Assertion any = A("contains-any");
  any.values = {"x", "ri"};
  EXPECT_TRUE(pass(any, O("Paris")));
  any.values = {"x", "y"};
  EXPECT_FALSE(pass(any, O("Paris")));
  Assertion all = A("contains-all");
  all.values = {"Pa", "is"};
  EXPECT_TRUE(pass(all, O("Paris")));
  all.values = {"Pa", "IS"};
  EXPECT_FALSE(pass(all, O("Paris")));
  all.type = "icontains-all";
  EXPECT_TRUE(pass(all, O("Paris")));
  auto r = evaluate(A("equals", "Paris"), O("London"), nullptr);
  EXPECT_NE(r.reason.find("expected \"Paris\""), std::string::npos);
}

TEST(Assertions, Regex) {
  EXPECT_TRUE(pass(A("regex", "^\\d{3}-\\d{4}$"), O("555-1234")));
  EXPECT_FALSE(pass(A("regex", "^\\d{3}-\\d{4}$"), O("555-12345")));
  EXPECT_TRUE(pass(A("not-regex", "error"), O("all good")));
  // Long outputs do not overflow the stack (std::regex recurses per character).
  std::string long_text(90 << 10, 'a');
  long_text += "foo";
  EXPECT_TRUE(pass(A("regex", ".*foo"), O(long_text)));
  // Above the limit: a failed assertion with a reason, never a crash.
  auto r = evaluate(A("regex", "a"), O(std::string(kMaxRegexSubject + 1, 'a')), nullptr);
  EXPECT_FALSE(r.pass);
  EXPECT_NE(r.reason.find("100 KiB"), std::string::npos);
}

TEST(Assertions, CatastrophicRegexTimesOut) {
  std::string err;
  auto t0 = std::chrono::steady_clock::now();
  auto m = regex_search_bounded("(a+)+$", std::string(40, 'a') + "b", err);
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!m) {
    EXPECT_NE(err.find("did not finish"), std::string::npos) << err;
    EXPECT_LT(secs, 7);
  }  // (a fast regex engine may also just answer)
}

TEST(Assertions, Json) {
  Assertion isj = A("is-json");
  EXPECT_TRUE(pass(isj, O("{\"a\": 1}")));
  EXPECT_TRUE(pass(isj, O("[1,2]")));
  EXPECT_FALSE(pass(isj, O("Sure! {\"a\": 1}")));
  isj.json_value = R"({"type":"object","required":["a"],"properties":{"a":{"type":"integer"}}})";
  EXPECT_TRUE(pass(isj, O("{\"a\": 1}")));
  EXPECT_FALSE(pass(isj, O("{\"a\": \"x\"}")));
  EXPECT_FALSE(pass(isj, O("{\"b\": 1}")));

  Assertion cj = A("contains-json");
  // promptfoo counts braces without reading strings, and closes what is left open: checked
  // against its extractJsonObjects (node, promptfoo 0.123).
  EXPECT_FALSE(pass(cj, O("Here: {\"a\": {\"b\": [1, \"}\"]}} done")));
  EXPECT_TRUE(pass(cj, O("Here: {\"a\": {\"b\": [1, 2]}} done")));
  EXPECT_TRUE(pass(cj, O("no json { here")));  // {here: null} to promptfoo
  cj.json_value = R"({"type":"object","required":["name"]})";
  EXPECT_TRUE(pass(cj, O("first {\"x\": 1} then {\"name\": \"Ada\"}")));
  EXPECT_FALSE(pass(cj, O("only {\"x\": 1}")));
  // As promptfoo extracts JSON: objects only (inside an array too), leniently, an unclosed one closed.
  EXPECT_TRUE(pass(cj, O("[{\"name\": \"Ada\"}]")));
  EXPECT_TRUE(pass(cj, O("record: {name: Ada, age: 36")));
  EXPECT_FALSE(pass(A("contains-json"), O("[1, 2, 3]")));
  EXPECT_TRUE(pass(A("not-contains-json"), O("no braces [1]")));

  Assertion eq = A("equals");
  eq.json_value = R"({"a":1,"b":[1,2]})";
  EXPECT_TRUE(pass(eq, O("{\"b\": [1, 2], \"a\": 1.0}")));
  EXPECT_FALSE(pass(eq, O("{\"b\": [2, 1], \"a\": 1}")));
}

TEST(Assertions, NumbersRefusalLatencyCost) {
  EXPECT_TRUE(pass(A("equals-number", "Janet sells ... #### 18"), O("She makes 9 * 2 = $18\nA: 18")));
  EXPECT_FALSE(pass(A("equals-number", "#### 18"), O("A: 224")));
  EXPECT_TRUE(pass(A("equals-number", "1234"), O("The total is 1,234.")));
  EXPECT_FALSE(pass(A("equals-number", "5"), O("no number at all")));
  Assertion tol = A("equals-number", "3.14");
  tol.threshold = 0.01;
  EXPECT_TRUE(pass(tol, O("about 3.141")));

  EXPECT_TRUE(pass(A("refusal"), O("I'm sorry, but I can't help with that.")));
  EXPECT_FALSE(pass(A("refusal"), O("Sure, here is how you do it.")));
  EXPECT_TRUE(pass(A("not-refusal"), O("Sure, here is how you do it.")));
  EXPECT_TRUE(pass(A("refusal"), O("", "content_filter")));
  // is-refusal is promptfoo's check (its phrases), not sluice's detector.
  EXPECT_TRUE(pass(A("is-refusal"), O("  I\u2019m sorry, but no.")));
  EXPECT_TRUE(pass(A("is-refusal"), O("Here goes. As an AI, I would rather not.")));
  EXPECT_FALSE(pass(A("is-refusal"), O("As an AIRLINE pilot I say: yes.")));
  EXPECT_FALSE(pass(A("is-refusal"), O("Sure, here is how you kill a Python process.")));
  EXPECT_TRUE(pass(A("not-is-refusal"), O("Sure, here is how you kill a Python process.")));
  auto empty = evaluate(A("is-refusal"), O("  "), nullptr);  // promptfoo: a refusal, scored 0
  EXPECT_TRUE(empty.pass);
  EXPECT_EQ(empty.score, 0);
  EXPECT_FALSE(pass(A("not-is-refusal"), O("")));

  Output o = O("x");
  o.latency_ms = 120;
  o.cost = 0.002;
  Assertion lat = A("latency");
  lat.threshold = 100;
  EXPECT_FALSE(pass(lat, o));
  lat.threshold = 150;
  EXPECT_TRUE(pass(lat, o));
  Assertion cost = A("cost");
  cost.threshold = 0.001;
  EXPECT_FALSE(pass(cost, o));
}

TEST(Assertions, LlmRubricThroughTheJudgeLookup) {
  Assertion a = A("llm-rubric", "is polite");
  a.judge = "judge";
  std::string seen_judge, seen_rubric, seen_output;
  JudgeLookup j = [&](const std::string& judge, const std::string& rubric, const std::string& out) {
    seen_judge = judge, seen_rubric = rubric, seen_output = out;
    return std::optional<JudgeVerdict>(JudgeVerdict{true, 0.7, "polite enough"});
  };
  auto r = evaluate(a, O("Thanks!"), j);
  EXPECT_TRUE(r.pass);
  EXPECT_DOUBLE_EQ(r.score, 0.7);
  EXPECT_EQ(seen_judge, "judge");
  EXPECT_EQ(seen_rubric, "is polite");
  EXPECT_EQ(seen_output, "Thanks!");
  a.threshold = 0.8;  // with a threshold the score must reach it too
  EXPECT_FALSE(evaluate(a, O("Thanks!"), j).pass);
  a.threshold = 0.5;
  EXPECT_TRUE(evaluate(a, O("Thanks!"), j).pass);
  JudgeLookup no = [](const std::string&, const std::string&, const std::string&) {
    return std::optional<JudgeVerdict>(JudgeVerdict{false, 0.9, "not polite"});
  };
  EXPECT_FALSE(evaluate(a, O("Thanks!"), no).pass);  // promptfoo: pass && score >= threshold
  Assertion n = A("not-llm-rubric", "is rude");
  auto nr = evaluate(n, O("Thanks!"), j);
  EXPECT_FALSE(nr.pass);
  EXPECT_NEAR(nr.score, 0.3, 1e-12);
  // No verdict: an error (the case is left out), not a failure.
  JudgeLookup none = [](const std::string&, const std::string&, const std::string&) {
    return std::optional<JudgeVerdict>();
  };
  EXPECT_FALSE(evaluate(a, O("x"), none).error.empty());
}

TEST(Assertions, JudgeReplies) {
  auto v = parse_judge_reply("Sure. {\"reason\": \"ok\", \"pass\": true, \"score\": 0.9} Hope it helps.");
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->pass);
  EXPECT_DOUBLE_EQ(v->score, 0.9);
  EXPECT_EQ(v->reason, "ok");
  // As promptfoo reads them: no pass is a pass, the score is not clamped, strings are read.
  v = parse_judge_reply("{\"score\": 0.2}");
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->pass);
  EXPECT_DOUBLE_EQ(v->score, 0.2);
  v = parse_judge_reply("{\"pass\": false}");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->score, 0);
  v = parse_judge_reply("{\"pass\": true, \"score\": 7}");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->score, 7);
  v = parse_judge_reply("{pass: 'Yes', score: '0.4', reason: unquoted}");
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->pass);
  EXPECT_DOUBLE_EQ(v->score, 0.4);
  EXPECT_EQ(v->reason, "unquoted");
  v = parse_judge_reply("{\"pass\": \"no\"}");
  ASSERT_TRUE(v);
  EXPECT_FALSE(v->pass);
  // The first object, not the last; an unclosed one is closed.
  v = parse_judge_reply("{\"pass\": true} or rather {\"pass\": false}");
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->pass);
  v = parse_judge_reply("{\"pass\": false, \"score\": 0.1");
  ASSERT_TRUE(v);
  EXPECT_FALSE(v->pass);
  v = parse_judge_reply("{\"verdict\": \"yes\"}");
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->pass);
  EXPECT_FALSE(parse_judge_reply("I think it passes."));
  std::string m = judge_messages("rubric \"q\"", "out\nput");
  EXPECT_NE(m.find("<Rubric>\\nrubric \\\"q\\\"\\n</Rubric>"), std::string::npos);
}

TEST(Assertions, CaseScoringFollowsPromptfoo) {
  Case c;
  c.asserts = {A("contains", "a"), A("contains", "b")};
  auto v = evaluate_case(c, O("a"), nullptr);
  EXPECT_FALSE(v.pass);
  EXPECT_DOUBLE_EQ(v.score, 0.5);
  EXPECT_NE(v.reason.find("contains"), std::string::npos);
  // weight 0: reported, not counted
  c.asserts[1].weight = 0;
  v = evaluate_case(c, O("a"), nullptr);
  EXPECT_TRUE(v.pass);
  EXPECT_DOUBLE_EQ(v.score, 1);
  // weights and a test threshold on the weighted score
  c.asserts = {A("contains", "a"), A("contains", "b")};
  c.asserts[0].weight = 3;
  c.threshold = 0.75;
  v = evaluate_case(c, O("a"), nullptr);
  EXPECT_TRUE(v.pass);
  EXPECT_DOUBLE_EQ(v.score, 0.75);
  c.threshold = 0.8;
  EXPECT_FALSE(evaluate_case(c, O("a"), nullptr).pass);
}

}  // namespace
}  // namespace sluice::eval

namespace sluice::eval {
namespace {

// pii / not-pii (issue 18): the guard's detectors as an assertion; the kinds are labels
// (the suite loader turns "email, card" into them).
TEST(Assertions, PersonalDataAndSecrets) {
  const Output leak = O("Sure: write to jane.doe@example.com, card 4111 1111 1111 1111.");
  const Output clean = O("I cannot share anyone's contact details.");
  EXPECT_TRUE(pass(A("pii"), leak));
  EXPECT_FALSE(pass(A("pii"), clean));
  EXPECT_TRUE(pass(A("not-pii"), clean));
  AssertResult r = evaluate(A("not-pii"), leak, nullptr);
  EXPECT_FALSE(r.pass);
  EXPECT_NE(r.reason.find("EMAIL at byte 15"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("CARD"), std::string::npos) << r.reason;
  Assertion cards = A("not-pii");
  cards.values = {"CARD"};
  EXPECT_FALSE(pass(cards, leak));
  EXPECT_TRUE(pass(cards, O("write to jane.doe@example.com")));  // only cards were asked for
  EXPECT_FALSE(pass(A("pii"), O("The order 4111 1111 1111 1112 failed.")));  // Luhn fails: not a card
}

}  // namespace
}  // namespace sluice::eval
