#include "quality/text.hpp"

#include <gtest/gtest.h>

#include <string>

namespace sluice::quality {

// --- normalize_text / token_set_similarity ------------------------------------------------------

TEST(NormalizeText, LowercasesDropsPunctuationCollapsesSpace) {
  EXPECT_EQ(normalize_text("  Hello,   World!\n\tIt's  FINE. "), "hello world its fine");
  EXPECT_EQ(normalize_text(""), "");
  EXPECT_EQ(normalize_text(" \n\t "), "");
  EXPECT_EQ(normalize_text("!!!"), "");
  EXPECT_EQ(normalize_text("a - b"), "a b");
  EXPECT_EQ(normalize_text("x\x01y"), "x y");  // control characters are whitespace
}

TEST(NormalizeText, Unicode) {
  // Latin-1 capitals fold; curly quotes, dashes and ellipsis drop; no-break space is a space.
  EXPECT_EQ(normalize_text("\xC3\x89T\xC3\x89 \xC3\x80 PARIS"), "\xC3\xA9t\xC3\xA9 \xC3\xA0 paris");
  EXPECT_EQ(normalize_text("\xE2\x80\x9CQuoted\xE2\x80\x9D \xE2\x80\x94 it\xE2\x80\x99s\xE2\x80\xA6"),
            "quoted its");
  EXPECT_EQ(normalize_text("a\xC2\xA0\xC2\xA0" "b"), "a b");
  EXPECT_EQ(normalize_text("3 \xC3\x97 4"), "3 \xC3\x97 4");  // U+00D7 is not a letter
  // Other scripts pass through unchanged (no case folding).
  EXPECT_EQ(normalize_text("\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82, \xE4\xB8\x96\xE7\x95\x8C!"),
            "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 \xE4\xB8\x96\xE7\x95\x8C");
}

TEST(TokenSetSimilarity, Jaccard) {
  EXPECT_DOUBLE_EQ(token_set_similarity("", ""), 1.0);
  EXPECT_DOUBLE_EQ(token_set_similarity("  ", "!?"), 1.0);
  EXPECT_DOUBLE_EQ(token_set_similarity("a", ""), 0.0);
  EXPECT_DOUBLE_EQ(token_set_similarity("The cat sat.", "sat the CAT"), 1.0);
  EXPECT_DOUBLE_EQ(token_set_similarity("a b c", "b c d"), 0.5);
  EXPECT_DOUBLE_EQ(token_set_similarity("a a a b", "a b b"), 1.0);  // sets, not bags
  EXPECT_DOUBLE_EQ(token_set_similarity("x", "y"), 0.0);
}

// --- json_equal ---------------------------------------------------------------------------------

TEST(JsonEqual, StructuralEquality) {
  EXPECT_EQ(json_equal(R"({"a":1,"b":[1,2,{"c":null}]})", R"({ "b": [1, 2, {"c": null}], "a": 1 })"),
            true);
  EXPECT_EQ(json_equal(R"([1,2])", R"([2,1])"), false);  // arrays are ordered
  EXPECT_EQ(json_equal(R"([1,2])", R"([1,2,3])"), false);
  EXPECT_EQ(json_equal(R"({"a":1})", R"({"a":1,"b":2})"), false);
  EXPECT_EQ(json_equal(R"({"a":1})", R"({"b":1})"), false);
  EXPECT_EQ(json_equal(R"({})", R"({})"), true);
  EXPECT_EQ(json_equal(R"([])", R"({})"), false);
  EXPECT_EQ(json_equal(R"("x")", R"("x")"), true);
  EXPECT_EQ(json_equal(R"(true)", R"(false)"), false);
  EXPECT_EQ(json_equal(R"(null)", R"(null)"), true);
  EXPECT_EQ(json_equal(R"("1")", R"(1)"), false);
  EXPECT_EQ(json_equal(R"({"s":"\u00e9"})", "{\"s\":\"\xC3\xA9\"}"), true);  // escapes decoded
}

TEST(JsonEqual, NumbersByValue) {
  EXPECT_EQ(json_equal("1", "1.0"), true);
  EXPECT_EQ(json_equal("100", "1e2"), true);
  EXPECT_EQ(json_equal("[0.5]", "[5e-1]"), true);
  EXPECT_EQ(json_equal("-0", "0"), true);
  EXPECT_EQ(json_equal("1", "2"), false);
  EXPECT_EQ(json_equal("18446744073709551615", "18446744073709551615"), true);
  EXPECT_EQ(json_equal("18446744073709551615", "-1"), false);
  EXPECT_EQ(json_equal("9007199254740993", "9007199254740992"), false);  // exact for integers
}

TEST(JsonEqual, DuplicateKeysAndNesting) {
  EXPECT_EQ(json_equal(R"({"a":1,"a":2})", R"({"a":1,"a":2})"), true);
  EXPECT_EQ(json_equal(R"({"a":1,"a":2})", R"({"a":2,"a":1})"), false);
  EXPECT_EQ(json_equal(R"({"a":{"b":{"c":[{"d":1,"e":2}]}}})", R"({"a":{"b":{"c":[{"e":2,"d":1}]}}})"),
            true);
  EXPECT_EQ(json_equal(R"({"a":{"b":{"c":[{"d":1,"e":2}]}}})", R"({"a":{"b":{"c":[{"e":2,"d":3}]}}})"),
            false);
}

TEST(JsonEqual, FencedBlocks) {
  EXPECT_EQ(json_equal("```json\n{\"a\": 1}\n```", R"({"a":1})"), true);
  EXPECT_EQ(json_equal("  ```JSON\r\n[1, 2]\r\n```  \n", "```\n[1,2]\n```"), true);
  EXPECT_EQ(json_equal("```python\n{\"a\": 1}\n```", R"({"a":1})"), std::nullopt);
  EXPECT_EQ(json_equal("```json\n{\"a\": 1}\n", R"({"a":1})"), std::nullopt);  // unclosed
  EXPECT_EQ(json_equal("Here you go:\n```json\n{}\n```", "{}"), std::nullopt);
}

TEST(JsonEqual, NotJson) {
  EXPECT_EQ(json_equal("", "{}"), std::nullopt);
  EXPECT_EQ(json_equal("{}", ""), std::nullopt);
  EXPECT_EQ(json_equal("Paris", "Paris"), std::nullopt);
  EXPECT_EQ(json_equal("{\"a\":}", "{\"a\":1}"), std::nullopt);
  EXPECT_EQ(json_equal("{\"a\":1} trailing", "{\"a\":1}"), std::nullopt);
  EXPECT_EQ(json_equal("\"\xFF\"", "\"\xFF\""), std::nullopt);  // invalid UTF-8
}

TEST(JsonEqual, Limits) {
  auto nest = [](size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  EXPECT_EQ(json_equal(nest(kMaxJsonDepth), nest(kMaxJsonDepth)), true);
  EXPECT_EQ(json_equal(nest(kMaxJsonDepth + 1), nest(kMaxJsonDepth + 1)), std::nullopt);
  std::string big = "\"" + std::string(kMaxJsonBytes, 'a') + "\"";
  EXPECT_EQ(json_equal(big, big), std::nullopt);
}

// --- final_number -------------------------------------------------------------------------------

TEST(FinalNumber, Gsm8kMarker) {
  EXPECT_EQ(final_number("She has 3 apples and buys 4 more.\n#### 7"), 7.0);
  EXPECT_EQ(final_number("Total is 1,234 dollars.\n#### 1,234"), 1234.0);
  EXPECT_EQ(final_number("#### -3\nThe answer above was checked 2 times."), -3.0);
  EXPECT_EQ(final_number("#### 12 then 13"), 12.0);  // first number after the marker
  EXPECT_EQ(final_number("#### none\nso 5"), 5.0);    // marker without a number: last number
  EXPECT_EQ(final_number("step #### 1\n#### 2"), 2.0);  // the last marker counts
}

TEST(FinalNumber, LastNumberForms) {
  EXPECT_EQ(final_number("The answer is 42."), 42.0);
  EXPECT_EQ(final_number("It costs $5"), 5.0);
  EXPECT_EQ(final_number("A loss of -$5."), -5.0);
  EXPECT_EQ(final_number("A loss of $-5."), -5.0);
  EXPECT_EQ(final_number("x = -3"), -3.0);
  EXPECT_EQ(final_number("x = \xE2\x88\x92" "3"), -3.0);  // U+2212 minus sign
  EXPECT_EQ(final_number("Pay 2.50 now"), 2.5);
  EXPECT_EQ(final_number("about .5 of it"), 0.5);
  EXPECT_EQ(final_number("He earned 1,234."), 1234.0);
  EXPECT_EQ(final_number("1,234,567"), 1234567.0);
  EXPECT_EQ(final_number("List: 1, 2, 3"), 3.0);
  EXPECT_EQ(final_number("1,2,3"), 3.0);
  EXPECT_EQ(final_number("12,3456"), 3456.0);  // not a thousands grouping
  EXPECT_EQ(final_number("pages 3-4"), 4.0);   // a range, not -4
  EXPECT_EQ(final_number("5 - 3 = 2"), 2.0);
  EXPECT_EQ(final_number("50%"), 50.0);
  EXPECT_EQ(final_number("007"), 7.0);
}

TEST(FinalNumber, NoNumber) {
  EXPECT_EQ(final_number(""), std::nullopt);
  EXPECT_EQ(final_number("no digits here."), std::nullopt);
  EXPECT_EQ(final_number("####"), std::nullopt);
  EXPECT_EQ(final_number("- $ , ."), std::nullopt);
  EXPECT_EQ(final_number(std::string(400, '9')), std::nullopt);  // out of double range
}

// --- compare ------------------------------------------------------------------------------------

TEST(Compare, AllSignals) {
  auto g = compare("The answer is 42.", "the answer is 42");
  EXPECT_FALSE(g.exact);
  EXPECT_TRUE(g.normalized);
  EXPECT_DOUBLE_EQ(g.token_set, 1.0);
  EXPECT_EQ(g.json, std::nullopt);
  EXPECT_EQ(g.number, true);

  g = compare("same", "same");
  EXPECT_TRUE(g.exact);
  EXPECT_TRUE(g.normalized);
  EXPECT_EQ(g.number, std::nullopt);

  g = compare("#### 1,000", "So the total is 1000.00");
  EXPECT_EQ(g.number, true);
  g = compare("#### 7", "#### 8");
  EXPECT_EQ(g.number, false);
  g = compare("7", "seven");
  EXPECT_EQ(g.number, std::nullopt);

  g = compare("```json\n{\"a\":1,\"b\":2}\n```", "{\"b\":2,\"a\":1.0}");
  EXPECT_EQ(g.json, true);
  EXPECT_FALSE(g.exact);
  g = compare(R"({"a":1})", R"({"a":2})");
  EXPECT_EQ(g.json, false);
  EXPECT_EQ(g.number, false);

  g = compare("", "");
  EXPECT_TRUE(g.exact);
  EXPECT_TRUE(g.normalized);
  EXPECT_DOUBLE_EQ(g.token_set, 1.0);
  EXPECT_EQ(g.json, std::nullopt);
  EXPECT_EQ(g.number, std::nullopt);
}

// --- check_json ---------------------------------------------------------------------------------

TEST(CheckJson, SyntaxOnly) {
  EXPECT_TRUE(check_json(R"({"a":[1,2,{"b":null}]})").valid);
  EXPECT_TRUE(check_json("42").valid);
  auto r = check_json("");
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.error.find("not valid JSON"), std::string::npos) << r.error;
  EXPECT_FALSE(check_json("{\"a\":1,}").valid);
  EXPECT_FALSE(check_json("```json\n{}\n```").valid);  // no fence stripping here
  EXPECT_FALSE(check_json("\"\xC3\"").valid);          // truncated UTF-8
}

TEST(CheckJson, Limits) {
  std::string big = "\"" + std::string(kMaxJsonBytes, 'a') + "\"";
  auto r = check_json(big);
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.error.find("1 MiB"), std::string::npos) << r.error;
  std::string ok_big = "\"" + std::string(kMaxJsonBytes - 2, 'a') + "\"";
  EXPECT_TRUE(check_json(ok_big).valid);

  auto nest = [](size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  EXPECT_TRUE(check_json(nest(kMaxJsonDepth)).valid);
  r = check_json(nest(kMaxJsonDepth + 1));
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.error.find("deeper than 64"), std::string::npos) << r.error;

  r = check_json("{}", big);
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.error.find("schema exceeds"), std::string::npos) << r.error;
  r = check_json("{}", "{\"type\":");
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.error.find("schema is not valid JSON"), std::string::npos) << r.error;
}

namespace {
const char* kPersonSchema = R"({
  "type": "object",
  "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 5},
    "age": {"type": "integer", "minimum": 0, "maximum": 150},
    "role": {"enum": ["admin", "user", null]},
    "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
    "address": {
      "type": "object",
      "properties": {"city": {"type": "string"}, "zip": {"type": ["string", "null"]}},
      "required": ["city"],
      "additionalProperties": false
    },
    "kind": {"const": "person"}
  },
  "required": ["name", "age"],
  "additionalProperties": false
})";

SchemaCheck person(const std::string& json) { return check_json(json, kPersonSchema); }
}  // namespace

TEST(CheckJson, SchemaAccepts) {
  auto r = person(R"({"name":"Ada","age":36,"role":"admin","tags":["x"],
                      "address":{"city":"London","zip":null},"kind":"person"})");
  EXPECT_TRUE(r.valid) << r.error;
  EXPECT_TRUE(r.error.empty());
  EXPECT_TRUE(r.pointer.empty());
  EXPECT_TRUE(person(R"({"name":"Ada","age":36.0,"role":null})").valid);  // 36.0 is an integer
  EXPECT_TRUE(person("{\"name\":\"\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\",\"age\":1}").valid)
      << "maxLength counts characters, not bytes";
}

TEST(CheckJson, SchemaFailuresCarryAPointer) {
  struct Case {
    const char* json;
    const char* pointer;
    const char* needle;
  };
  const Case cases[] = {
      {R"([])", "", "expected object, got array"},
      {R"({"age":3})", "", "missing required property \"name\""},
      {R"({"name":"Ada"})", "", "missing required property \"age\""},
      {R"({"name":7,"age":3})", "/name", "expected string, got integer"},
      {R"({"name":"","age":3})", "/name", "shorter than minLength 1"},
      {R"({"name":"Adelaide","age":3})", "/name", "longer than maxLength 5"},
      {R"({"name":"Ada","age":3.5})", "/age", "expected integer, got number"},
      {R"({"name":"Ada","age":-1})", "/age", "less than minimum 0"},
      {R"({"name":"Ada","age":200})", "/age", "greater than maximum 150"},
      {R"({"name":"Ada","age":3,"role":"root"})", "/role", "not one of the enum values"},
      {R"({"name":"Ada","age":3,"tags":[]})", "/tags", "shorter than minItems 1"},
      {R"({"name":"Ada","age":3,"tags":["a","b","c","d"]})", "/tags", "longer than maxItems 3"},
      {R"({"name":"Ada","age":3,"tags":["a",2]})", "/tags/1", "expected string, got integer"},
      {R"({"name":"Ada","age":3,"address":{}})", "/address", "missing required property \"city\""},
      {R"({"name":"Ada","age":3,"address":{"city":"x","zip":5}})", "/address/zip",
       "expected string or null, got integer"},
      {R"({"name":"Ada","age":3,"address":{"city":"x","planet":"earth"}})", "/address/planet",
       "additional property \"planet\" is not allowed"},
      {R"({"name":"Ada","age":3,"kind":"robot"})", "/kind", "differs from const"},
      {R"({"name":"Ada","age":3,"a/b~c":1})", "/a~1b~0c", "additional property"},
  };
  for (const auto& c : cases) {
    auto r = person(c.json);
    EXPECT_FALSE(r.valid) << c.json;
    EXPECT_EQ(r.pointer, c.pointer) << c.json << " -> " << r.error;
    EXPECT_NE(r.error.find(c.needle), std::string::npos) << c.json << " -> " << r.error;
    EXPECT_NE(r.error.find(std::string("at \"") + c.pointer + "\""), std::string::npos) << r.error;
  }
}

TEST(CheckJson, Combinators) {
  const char* any = R"({"anyOf":[{"type":"string"},{"type":"integer","minimum":10}]})";
  EXPECT_TRUE(check_json(R"("x")", any).valid);
  EXPECT_TRUE(check_json("12", any).valid);
  auto r = check_json("5", any);
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.error.find("matches none of the 2 schemas in anyOf"), std::string::npos) << r.error;

  const char* one = R"({"oneOf":[{"type":"integer"},{"type":"number","minimum":0}]})";
  EXPECT_TRUE(check_json("-1", one).valid);   // integer only
  EXPECT_TRUE(check_json("0.5", one).valid);  // number only
  r = check_json("3", one);                   // both
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.error.find("more than one schema in oneOf"), std::string::npos) << r.error;
  EXPECT_FALSE(check_json("\"s\"", one).valid);

  const char* all = R"({"allOf":[{"type":"number"},{"maximum":3},{"exclusiveMinimum":1}]})";
  EXPECT_TRUE(check_json("2", all).valid);
  EXPECT_FALSE(check_json("1", all).valid);
  r = check_json("4", all);
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.error.find("greater than maximum 3"), std::string::npos) << r.error;

  // A failure inside a combinator keeps the inner pointer in the message.
  r = check_json(R"({"a":[1,"x"]})",
                 R"({"properties":{"a":{"anyOf":[{"type":"array","items":{"type":"integer"}},{"type":"null"}]}}})");
  EXPECT_FALSE(r.valid);
  EXPECT_EQ(r.pointer, "/a");
  EXPECT_NE(r.error.find("at \"/a/1\": expected integer"), std::string::npos) << r.error;
}

TEST(CheckJson, BooleanSchemasTuplesAndRefs) {
  EXPECT_TRUE(check_json("{}", "true").valid);
  EXPECT_FALSE(check_json("{}", "false").valid);
  EXPECT_TRUE(check_json(R"({"a":1})", R"({"additionalProperties":{"type":"integer"}})").valid);
  auto r = check_json(R"({"a":"x"})", R"({"additionalProperties":{"type":"integer"}})");
  EXPECT_EQ(r.pointer, "/a");

  const char* tuple = R"({"prefixItems":[{"type":"string"},{"type":"integer"}],"items":false})";
  EXPECT_TRUE(check_json(R"(["a",1])", tuple).valid);
  EXPECT_FALSE(check_json(R"(["a","b"])", tuple).valid);
  r = check_json(R"(["a",1,2])", tuple);
  EXPECT_FALSE(r.valid);
  EXPECT_EQ(r.pointer, "/2");

  const char* tree = R"({
    "$defs": {"node": {"type":"object","properties":{"v":{"type":"integer"},
              "kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v"]}},
    "$ref": "#/$defs/node"})";
  EXPECT_TRUE(check_json(R"({"v":1,"kids":[{"v":2,"kids":[{"v":3}]}]})", tree).valid);
  r = check_json(R"({"v":1,"kids":[{"v":2,"kids":[{"v":"x"}]}]})", tree);
  EXPECT_FALSE(r.valid);
  EXPECT_EQ(r.pointer, "/kids/0/kids/0/v");
}

TEST(CheckJson, BrokenSchemasAreReported) {
  auto r = check_json("1", R"({"type":"integr"})");
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.error.find("invalid schema"), std::string::npos) << r.error;
  r = check_json("1", R"({"anyOf":[{"type":7},{"type":"integer"}]})");
  EXPECT_FALSE(r.valid);  // a broken branch is not silently skipped
  EXPECT_NE(r.error.find("invalid schema"), std::string::npos) << r.error;
  r = check_json("1", R"({"$ref":"#/nowhere"})");
  EXPECT_NE(r.error.find("does not resolve"), std::string::npos) << r.error;
  r = check_json("1", R"({"$ref":"http://example.com/s.json"})");
  EXPECT_NE(r.error.find("must be local"), std::string::npos) << r.error;
  r = check_json("\"abc\"", R"({"minLength":-1})");
  EXPECT_NE(r.error.find("non-negative integer"), std::string::npos) << r.error;
  // A $ref cycle that never descends into the value ends with an error, not a stack overflow.
  r = check_json("1", R"({"$ref":"#"})");
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.error.find("too deep"), std::string::npos) << r.error;
  // Exponential fan-out is cut by the work budget.
  r = check_json("1", R"({"$defs":{"a":{"anyOf":[{"$ref":"#/$defs/a"},{"$ref":"#/$defs/a"}]}},
                          "$ref":"#/$defs/a"})");
  EXPECT_FALSE(r.valid);
}

TEST(CheckJson, UnknownKeywordsAreIgnored) {
  EXPECT_TRUE(check_json(R"("abc")", R"({"type":"string","pattern":"^x","format":"email",
                                         "description":"d","title":"t"})")
                  .valid);
}

}  // namespace sluice::quality
