// Unit tests of flags/: the numbers that must equal the JavaScript reference (imurmurhash,
// node-semver, ECMAScript's conversions) were computed with node and the packages
// @openfeature/flagd-core 4.0.1 uses; tests/integration/flags_differential.test.mjs compares
// whole evaluations with flagd-core itself.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

#include "flags/flagd.hpp"
#include "flags/logic.hpp"
#include "flags/value.hpp"

namespace sluice::flags {

namespace {

Value json(const std::string& text) {
  std::string error;
  auto v = parse_json(text, error);
  EXPECT_TRUE(v) << error << " in " << text;
  return v ? *v : Value::null();
}

FlagFile file(const std::string& text) {
  std::string error;
  auto f = parse_flag_file(text, error);
  EXPECT_TRUE(f) << error;
  return f ? *f : FlagFile{};
}

std::string refusal(const std::string& text) {
  std::string error;
  EXPECT_FALSE(parse_flag_file(text, error)) << text;
  return error;
}

// One flag "f" with these variants and this targeting.
std::string one_flag(const std::string& targeting, const std::string& variants = R"({"on": true, "off": false})",
                     const std::string& default_variant = R"("off")") {
  return R"({"flags": {"f": {"state": "ENABLED", "variants": )" + variants + R"(, "defaultVariant": )" +
         default_variant + R"(, "targeting": )" + targeting + "}}}";
}

// What a rule gives for a context: its value as JSON, or "throws".
std::string run(const std::string& rule, const std::string& context = "{}") {
  std::string error;
  auto logic = Logic::compile(json(rule), error);
  EXPECT_TRUE(logic) << error << " compiling " << rule;
  if (!logic) return "refused: " + error;
  Value out;
  if (!logic->evaluate(json(context), out)) return "throws";
  return to_json(out);
}

std::string refused(const std::string& rule) {
  std::string error;
  EXPECT_FALSE(Logic::compile(json(rule), error)) << rule << " compiled";
  return error;
}

int semver_cmp(const std::string& a, const std::string& b) {
  auto x = parse_semver(a), y = parse_semver(b);
  if (!x || !y) return -2;
  return compare_semver(*x, *y);
}

}  // namespace

// ------------------------------------------------------------------ murmur3 and fractional

TEST(Murmur3, EqualsImurmurhash) {
  // new (require('imurmurhash'))(s).result() >>> 0, imurmurhash 0.1.4
  const std::map<std::string, uint32_t> vectors = {
      {"", 0u},
      {"a", 1009084850u},
      {"ab", 2613040991u},
      {"abc", 3017643002u},
      {"abcd", 1139631978u},
      {"hello world", 1586663183u},
      {"flag-keyuser-123", 3728993082u},
      {"\xC3\xA9", 1153881266u},                       // é
      {"\xC3\xBC", 3226243446u},                       // ü
      {"\xF0\x9F\x98\x80", 306838748u},                // 😀 (a surrogate pair)
      {"\xE4\xB8\xAD\xE6\x96\x87", 167485310u},        // 中文
      {"\xEF\xBD\xB6", 2219712046u},                   // ｶ (U+FF76)
      {"\xCE\xA9team\xF0\x9F\x98\x80" "bob", 455173114u},  // Ωteam😀bob
      {"\xE8\x80\x80" "ab", 3643989056u},              // U+8000 a b: a tail with its top bit set
      {"\xEF\xBF\xBFx", 2589790458u},                  // U+FFFF x
      {"abc\xE8\x80\x80", 2235786967u},
  };
  for (const auto& [s, h] : vectors) EXPECT_EQ(flagd_murmur3(s), h) << s;
}

TEST(Fractional, SameBucketsAsFlagdCore) {
  auto f = file(one_flag(R"({"fractional": [["a", 50], ["b", 30], ["c", 20]]})", R"({"a": "a", "b": "b", "c": "c"})",
                         R"("a")"));
  ASSERT_EQ(f.flags.size(), 1u);
  auto variant = [&](const std::string& key) {
    return evaluate(f.flags[0], Value::object({{"targetingKey", Value::string(key)}}), 0).variant;
  };
  // flagd-core's resolveStringEvaluation("f", ...) for these targeting keys.
  EXPECT_EQ(variant("user-1"), "a");
  EXPECT_EQ(variant("user-2"), "a");
  EXPECT_EQ(variant("user-3"), "c");
  EXPECT_EQ(variant("alice"), "b");
  EXPECT_EQ(variant("bob"), "b");
  EXPECT_EQ(variant("\xF0\x9F\x98\x80"), "b");
  EXPECT_EQ(variant("\xD0\xBA\xD0\xBB\xD1\x8E\xD1\x87"), "a");  // ключ
}

TEST(Fractional, DistributionFollowsTheWeights) {
  auto f = file(one_flag(R"({"fractional": [["a", 50], ["b", 30], ["c", 20]]})", R"({"a": "a", "b": "b", "c": "c"})",
                         R"("a")"));
  std::map<std::string, int> counts;
  for (int i = 0; i < 10000; ++i)
    ++counts[evaluate(f.flags[0], Value::object({{"targetingKey", Value::string("user-" + std::to_string(i))}}), 0)
                 .variant];
  // Exactly flagd-core's counts for user-0 ... user-9999, within 1% of the weights.
  EXPECT_EQ(counts["a"], 4983);
  EXPECT_EQ(counts["b"], 2994);
  EXPECT_EQ(counts["c"], 2023);
}

TEST(Fractional, WeightsAndBucketingExpressions) {
  // A weight of 0 never matches; all zero: no bucket (the default).
  EXPECT_EQ(run(R"({"fractional": [["a", 0], ["b", 1], ["c", 0]]})", R"({"targetingKey": "k", "$flagd": {"flagKey": "f"}})"),
            R"("b")");
  EXPECT_EQ(run(R"({"fractional": [["a", 0], ["b", 0]]})", R"({"targetingKey": "k", "$flagd": {"flagKey": "f"}})"),
            "null");
  // No targeting key, a float weight, a bucket that is not a list, a total over 2^31-1: null.
  EXPECT_EQ(run(R"({"fractional": [["a", 1], ["b", 1]]})", R"({"$flagd": {"flagKey": "f"}})"), "null");
  EXPECT_EQ(run(R"({"fractional": [["a", 1.5], ["b", 1]]})", R"({"targetingKey": "k", "$flagd": {}})"), "null");
  EXPECT_EQ(run(R"({"fractional": [["a", 1], "b"]})", R"({"targetingKey": "k", "$flagd": {}})"), "null");
  EXPECT_EQ(run(R"({"fractional": [["a", 2147483647], ["b", 1]]})", R"({"targetingKey": "k", "$flagd": {}})"), "null");
  // A bucketing expression replaces flagKey + targetingKey; a negative weight counts as 0.
  EXPECT_EQ(run(R"({"fractional": [{"var": "email"}, ["a", -5], ["b", 1]]})", R"({"email": "x@y", "$flagd": {}})"),
            R"("b")");
  // Outside the rule's own context (in an iterator) flagd's operators throw, as in flagd-core.
  EXPECT_EQ(run(R"({"map": [[1], {"fractional": [["a", 1]]}]})", R"({"targetingKey": "k", "$flagd": {}})"), "throws");
}

// ------------------------------------------------------------------ semver

TEST(SemVer, ParsesAsFlagdCore) {
  auto v = parse_semver("v1.2.3-beta.2+build.7");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->major, 1u);
  EXPECT_EQ(v->minor, 2u);
  EXPECT_EQ(v->patch, 3u);
  EXPECT_EQ(v->pre, (std::vector<std::string>{"beta", "2"}));
  for (const char* ok : {"1.2.3", "V1.2.3", "Vv1.2.3", "vv1.2.3", " 1.2.3 ", "\t2.0.0\n", "\xC2\xA0" "1.2.3", "v 1.2.3", "1", "1.2",
                         "0.0.0-0", "1.2.3-x.7.z.92", "1.2.3-0a", "1.2.3-9007199254740993", "9007199254740991.0.0",
                         "12345678901234567.5", "1.12345678901234567"})
    EXPECT_TRUE(parse_semver(ok)) << ok;
  for (const char* bad : {"", "abc", "vV1.2.3", "01.2.3", "1.02.3", "01", "1.02", "1.2.3.4", "1.2.x", "1.2.3-", "1.2.3-01",
                          "1.2.3+", "1.2.3+a..b", "=1.2.3", "1.", ".1", "myVersion_1", "9007199254740992.0.0",
                          "12345678901234567", "1.2.3-\xCE\xB2"})
    EXPECT_FALSE(parse_semver(bad)) << bad;
  EXPECT_FALSE(parse_semver("1.2.3-" + std::string(260, 'a')));  // over 256 characters
  auto coerced = parse_semver("12345678901234567.5");  // node-semver's coerce skips the 17-digit run
  ASSERT_TRUE(coerced);
  EXPECT_EQ(coerced->major, 5u);
}

TEST(SemVer, ComparesAsNodeSemver) {
  EXPECT_EQ(semver_cmp("1.2.3", "1.2.3+build"), 0);  // build metadata does not count
  EXPECT_EQ(semver_cmp("1", "1.0.0"), 0);
  EXPECT_EQ(semver_cmp("1.2", "1.2.0"), 0);
  EXPECT_EQ(semver_cmp("1.2.3-alpha", "1.2.3"), -1);  // a prerelease comes first
  EXPECT_EQ(semver_cmp("1.2.3-alpha.10", "1.2.3-alpha.2"), 1);  // numeric identifiers as numbers
  EXPECT_EQ(semver_cmp("1.2.3-1", "1.2.3-alpha"), -1);  // numeric before alphanumeric
  EXPECT_EQ(semver_cmp("1.2.3-alpha", "1.2.3-alpha.1"), -1);  // fewer identifiers first
  EXPECT_EQ(semver_cmp("1.2.3-B", "1.2.3-a"), -1);  // ASCII order
  EXPECT_EQ(semver_cmp("1.2.3-9007199254740993", "1.2.3-9007199254740992"), 0);  // equal as doubles
  EXPECT_EQ(semver_cmp("2.0.0", "10.0.0"), -1);
  EXPECT_EQ(semver_cmp("x", "1.0.0"), -2);
}

TEST(SemVer, Operators) {
  const std::string ctx = R"({"v": "1.4.0-rc.1"})";
  EXPECT_EQ(run(R"({"sem_ver": [{"var": "v"}, "<", "1.4.0"]})", ctx), "true");
  EXPECT_EQ(run(R"({"sem_ver": [{"var": "v"}, "^", "1.0.0"]})", ctx), "true");
  EXPECT_EQ(run(R"({"sem_ver": [{"var": "v"}, "~", "1.3.9"]})", ctx), "false");
  EXPECT_EQ(run(R"({"sem_ver": [{"var": "v"}, "!=", "v1.4.0-rc.1+b"]})", ctx), "false");
  EXPECT_EQ(run(R"({"sem_ver": [{"var": "v"}, "==", "1.4.0"]})", ctx), "null");  // not an operator
  EXPECT_EQ(run(R"({"sem_ver": [{"var": "v"}, ">="]})", ctx), "null");
  EXPECT_EQ(run(R"({"sem_ver": [1.5, "=", "1.5.0"]})"), "true");  // numbers as their strings
}

// ------------------------------------------------------------------ JavaScript conversions

TEST(JsConversions, StringToNumber) {
  EXPECT_EQ(js_string_to_number(""), 0);
  EXPECT_EQ(js_string_to_number(" \n\t"), 0);
  EXPECT_EQ(js_string_to_number("0x1F"), 31);
  EXPECT_EQ(js_string_to_number("0b11"), 3);
  EXPECT_EQ(js_string_to_number("0o17"), 15);
  EXPECT_EQ(js_string_to_number("1e3"), 1000);
  EXPECT_EQ(js_string_to_number(".5"), 0.5);
  EXPECT_EQ(js_string_to_number("5."), 5);
  EXPECT_EQ(js_string_to_number("+3"), 3);
  EXPECT_EQ(js_string_to_number("\xC2\xA0" "5\n"), 5);  // NBSP is JavaScript whitespace
  EXPECT_EQ(js_string_to_number("-Infinity"), -INFINITY);
  for (const char* nan : {"abc", "1e", "12abc", "1,000", "-0x10", "0x", "Infinityx", "infinity", "."})
    EXPECT_TRUE(std::isnan(js_string_to_number(nan))) << nan;
}

TEST(JsConversions, NumberText) {
  EXPECT_EQ(js_string(Value::number(1e21)), "1e+21");
  EXPECT_EQ(js_string(Value::number(1e20)), "100000000000000000000");
  EXPECT_EQ(js_string(Value::number(1e-7)), "1e-7");
  EXPECT_EQ(js_string(Value::number(0.000001)), "0.000001");
  EXPECT_EQ(js_string(Value::number(0.1 + 0.2)), "0.30000000000000004");
  EXPECT_EQ(js_string(Value::number(-0.0)), "0");
  EXPECT_EQ(js_string(Value::number(123456789.123)), "123456789.123");
  EXPECT_EQ(js_string(Value::number(9007199254740992.0)), "9007199254740992");
  EXPECT_EQ(js_string(Value::number(-1.5e300)), "-1.5e+300");
  EXPECT_EQ(js_string(Value::number(NAN)), "NaN");
  EXPECT_EQ(js_string(json(R"([1, [2, null], "a", {}])")), "1,2,,a,[object Object]");
  EXPECT_EQ(js_string(Value::null()), "null");
}

TEST(JsConversions, StringOrderIsUtf16) {
  // U+FF76 < U+1F600 as code points, but 😀 is the pair D83D DE00, and 0xD83D < 0xFF76.
  EXPECT_TRUE(js_string_less("\xF0\x9F\x98\x80", "\xEF\xBD\xB6"));
  EXPECT_FALSE(js_string_less("\xEF\xBD\xB6", "\xF0\x9F\x98\x80"));
  EXPECT_TRUE(js_string_less("ab", "abc"));
  EXPECT_TRUE(js_string_less("B", "a"));
  EXPECT_FALSE(js_string_less("a", "a"));
  EXPECT_EQ(run(R"({"<": [{"var": "a"}, {"var": "b"}]})", "{\"a\": \"\xF0\x9F\x98\x80\", \"b\": \"\xEF\xBD\xB6\"}"), "true");
}

// ------------------------------------------------------------------ compiled semantics

TEST(Logic, ComparisonsAsCompiled) {
  // The compiled comparison checks its right operand against `prev`, which a var operand
  // overwrites: var against var never throws, var against a literal does.
  EXPECT_EQ(run(R"({"==": [{"var": "x"}, 1]})", R"({"x": "abc"})"), "throws");
  EXPECT_EQ(run(R"({"==": [1, {"var": "x"}]})", R"({"x": "abc"})"), "false");
  EXPECT_EQ(run(R"({"<": [{"var": "x"}, {"var": "y"}]})", R"({"x": "abc", "y": 1})"), "false");
  EXPECT_EQ(run(R"({"==": [{"var": "x"}, 0]})", R"({"x": null})"), "true");
  EXPECT_EQ(run(R"({"===": [{"var": "x"}, 0]})", R"({"x": null})"), "false");
  EXPECT_EQ(run(R"({"<": [{"var": "x"}, [1]]})", R"({"x": 0})"), "throws");
  EXPECT_EQ(run(R"({"<": [0, {"var": "x"}, 10]})", R"({"x": "5"})"), "true");
  EXPECT_EQ(run(R"({"<=": [1, {"var": "x"}, 1]})", R"({"x": 2})"), "false");
  // An `if` of two arguments is interpreted, where nothing overwrites the left operand.
  EXPECT_EQ(run(R"({"if": [{"==": [1, {"var": "x"}]}, "yes"]})", R"({"x": "abc"})"), "throws");
}

TEST(Logic, ArithmeticAsCompiled) {
  EXPECT_EQ(run(R"({"+": [{"var": "x"}, "2.5"]})", R"({"x": "1"})"), "3.5");
  EXPECT_EQ(run(R"({"*": [{"var": "x"}, 2]})", R"({"x": "a"})"), "throws");
  EXPECT_EQ(run(R"({"/": [{"var": "x"}, {"var": "y"}]})", R"({"x": 1, "y": 0})"), "throws");
  EXPECT_EQ(run(R"({"%": [{"var": "x"}, 3]})", R"({"x": -7})"), "-1");
  EXPECT_EQ(run(R"({"-": [{"var": "x"}]})", R"({"x": null})"), "0");
  // Over one rule's array the engine reduces in JavaScript: the last step's NaN is returned.
  EXPECT_EQ(run(R"({"cat": [{"+": {"var": "xs"}}]})", R"({"xs": [1, "a"]})"), R"("NaN")");
  EXPECT_EQ(run(R"({"+": {"var": "xs"}})", R"({"xs": [1, "2", true]})"), "4");
  EXPECT_EQ(run(R"({"max": [{"var": "x"}, 3]})", R"({"x": "4"})"), "throws");
  // substr's negative length, and its string concatenation when the length is a string.
  EXPECT_EQ(run(R"({"substr": ["abcdef", 1, -2]})"), R"("bcd")");
  EXPECT_EQ(run(R"({"substr": [{"var": "s"}, 1, {"var": "n"}]})", R"({"s": "abcdef", "n": "-2"})"), R"("")");
}

TEST(Logic, IteratorsAndStrings) {
  EXPECT_EQ(run(R"({"all": [{"var": "xs"}, {">": [{"var": ""}, 0]}]})", R"({"xs": []})"), "false");
  EXPECT_EQ(run(R"({"all": [{"var": "xs"}, {">": [{"var": ""}, 0]}]})", "{}"), "true");  // all of null
  EXPECT_EQ(run(R"({"reduce": [{"var": "xs"}, {"+": [{"var": "accumulator"}, {"var": "current"}]}, 0]})",
                R"({"xs": [1, 2, 3]})"),
            "6");
  EXPECT_EQ(run(R"({"map": [{"var": "xs"}, {"var": "id"}]})", R"({"xs": [{"id": 1}, {}]})"), "[1,null]");
  EXPECT_EQ(run(R"({"map": [{"var": "s"}, 1]})", R"({"s": "abc"})"), "throws");
  EXPECT_EQ(run(R"({"cat": ["a", null, {"var": "x"}]})", "{}"), R"("anullnull")");  // compiled cat writes null
  EXPECT_EQ(run(R"({"cat": ["a", null, "b"]})"), R"("ab")");  // folded by the interpreter, which skips null
  EXPECT_EQ(run(R"({"in": [{"var": "x"}, "hello"]})", R"({"x": ["ell"]})"), "true");
  EXPECT_EQ(run(R"({"in": ["a", {"var": "x"}]})", R"({"x": 5})"), "throws");
  EXPECT_EQ(run(R"({"var": "s.length"})", "{\"s\": \"\xF0\x9F\x98\x80\"}"), "2");  // UTF-16 units
  EXPECT_EQ(run(R"({"missing": ["a.b", "c"]})", R"({"a": "", "c": null})"), R"(["a.b"])");
  EXPECT_EQ(run(R"({"missing_some": [1, ["a", "b"]]})", R"({"b": 1})"), "[]");
}

TEST(Logic, CompileRefusesWhatTheEngineRefuses) {
  EXPECT_NE(refused(R"({"regex": ["a", "b"]})").find("unknown operator 'regex'"), std::string::npos);
  EXPECT_NE(refused(R"({"==": [1, 1], "!=": [1, 2]})").find("exactly one operator"), std::string::npos);
  EXPECT_NE(refused(R"({"max": ["a", 1]})").find("fails for every context"), std::string::npos);
  EXPECT_NE(refused(R"({"/": [1, 0]})").find("divides by 0"), std::string::npos);
  EXPECT_NE(refused(R"({"+": [[1], {"var": "x"}]})").find("array"), std::string::npos);
  EXPECT_NE(refused(R"({"*": [{"var": "x"}, "abc"]})").find("not a number"), std::string::npos);
  EXPECT_NE(refused(R"({"/": [{"var": "x"}, "0"]})").find("divides by 0"), std::string::npos);
  EXPECT_NE(refused(R"({"%": [{"var": "x"}]})").find("two operands"), std::string::npos);
  EXPECT_NE(refused(R"({"map": {"var": "x"}})").find("takes a list"), std::string::npos);
  EXPECT_NE(refused(R"({"try": [1]})").find("not supported"), std::string::npos);
}

// ------------------------------------------------------------------ flag files

TEST(FlagFile, ErrorsCarryLineAndColumn) {
  // The unknown operator's object starts on line 5, column 18.
  const std::string text =
      "{\n"
      "  \"flags\": {\n"
      "    \"f\": {\n"
      "      \"state\": \"ENABLED\", \"variants\": {\"on\": true}, \"defaultVariant\": \"on\",\n"
      "      \"targeting\": {\"nope\": [1]}\n"
      "    }\n"
      "  }\n"
      "}\n";
  EXPECT_EQ(refusal(text).rfind("5:20: unknown operator 'nope'", 0), 0u) << refusal(text);
  EXPECT_EQ(refusal("{\"flags\": {\n  \"f\": {\"state\": \"ON\"}}}").rfind("2:18:", 0), 0u);
  EXPECT_EQ(refusal("{\"flags\": {\"f\": {\"state\": \"ENABLED\",, }}}").rfind("1:", 0), 0u);
  EXPECT_EQ(refusal("{\"flags\": {\n  \"f\xBA\": {}}}"), "2:5: not UTF-8");  // would not read back after export
  EXPECT_EQ(refusal("{\"flags\": {\"\xED\xA0\x80\": {}}}"), "1:13: not UTF-8");  // a surrogate
  // YAML's \N and \_ escapes are NEL and NBSP, in UTF-8 (yaml-cpp makes them Latin-1 bytes).
  auto f = file("flags: {\"f\\N\\_\": {state: ENABLED, variants: {on: true}, defaultVariant: on}}");
  ASSERT_EQ(f.flags.size(), 1u);
  EXPECT_EQ(f.flags[0].key, "f\xC2\x85\xC2\xA0");
  EXPECT_NE(refusal(one_flag("{}", R"({"on": 1e999})", R"("on")")).find("1:57: number out of range: 1e999"), std::string::npos);
  // Keys that could not be read back once exported (escaped past YAML's 1024-character keys).
  EXPECT_NE(refusal(one_flag("{}", R"({"on": true})", R"("on")")).find("without control characters"), std::string::npos);
  EXPECT_NE(refusal(one_flag("{}", "{\"" + std::string(257, 'v') + "\": true}", R"("on")")).find("at most 256 bytes"),
            std::string::npos);
  const std::string not_a_variant = one_flag("{}", R"({"on": true})", R"("maybe")");
  EXPECT_NE(refusal(not_a_variant).find("defaultVariant 'maybe' is not one of its variants"), std::string::npos);
  EXPECT_NE(refusal(std::string(kMaxFlagFileBytes + 1, ' ')).find("at most 4194304"), std::string::npos);
}

TEST(FlagFile, RefsResolveNestedAndRefuseCycles) {
  auto f = file(R"({"$evaluators": {"inner": {"==": [{"var": "x"}, 1]}, "outer": {"!": {"$ref": "inner"}}},
                    "flags": {"f": {"state": "ENABLED", "variants": {"true": true, "false": false},
                                    "defaultVariant": "false", "targeting": {"$ref": "outer"}}}})");
  ASSERT_EQ(f.flags.size(), 1u);
  EXPECT_EQ(evaluate(f.flags[0], json(R"({"x": 1})"), 0).variant, "false");
  EXPECT_EQ(evaluate(f.flags[0], json(R"({"x": 2})"), 0).variant, "true");
  const std::string cycle = refusal(R"({"$evaluators": {"a": {"or": [{"$ref": "b"}]}, "b": {"$ref": "a"}},
      "flags": {"f": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on", "targeting": {"$ref": "a"}}}})");
  EXPECT_NE(cycle.find("a cycle of $refs: a -> b -> a"), std::string::npos) << cycle;
  EXPECT_NE(refusal(one_flag(R"({"$ref": "missing"})")).find("which $evaluators does not define"), std::string::npos);
}

TEST(FlagFile, EvaluationReasons) {
  auto f = file(R"({"flags": {
    "static": {"state": "ENABLED", "variants": {"a": 1, "b": 2}, "defaultVariant": "b"},
    "off": {"state": "DISABLED", "variants": {"a": 1}, "defaultVariant": "a"},
    "match": {"state": "ENABLED", "variants": {"a": "A", "b": "B"}, "defaultVariant": "a",
              "targeting": {"if": [{"==": [{"var": "plan"}, "pro"]}, "b", null]}},
    "none": {"state": "ENABLED", "variants": {"a": "A"}, "defaultVariant": null},
    "bools": {"state": "ENABLED", "variants": {"true": "yes", "false": "no"}, "defaultVariant": "false",
              "targeting": {">": [{"var": "age"}, 17]}},
    "nowhere": {"state": "ENABLED", "variants": {"a": "A"}, "defaultVariant": "a", "targeting": {"var": "plan"}},
    "throws": {"state": "ENABLED", "variants": {"a": "A"}, "defaultVariant": "a", "targeting": {"*": [{"var": "plan"}, 2]}},
    "key": {"state": "ENABLED", "variants": {"key": "K"}, "defaultVariant": null, "targeting": {"var": "$flagd.flagKey"}},
    "time": {"state": "ENABLED", "variants": {"true": 1, "false": 0}, "defaultVariant": "false",
             "targeting": {">": [{"var": "$flagd.timestamp"}, 1700000000]}}}})");
  ASSERT_EQ(f.flags.size(), 9u);
  const Value pro = json(R"({"plan": "pro", "age": 30, "$flagd": {"flagKey": "spoofed", "timestamp": 0}})");
  const Value free = json(R"({"plan": "free", "age": 3})");
  auto check = [&](size_t i, const Value& ctx, Reason reason, const std::string& variant, ErrorCode code = ErrorCode::kNone) {
    Evaluation e = evaluate(f.flags[i], ctx, 1750000000);
    EXPECT_EQ(reason_name(e.reason), reason_name(reason)) << f.flags[i].key;
    EXPECT_EQ(e.variant, variant) << f.flags[i].key;
    EXPECT_EQ(e.has_value, !variant.empty()) << f.flags[i].key;
    EXPECT_EQ(error_name(e.error), error_name(code)) << f.flags[i].key;
  };
  check(0, pro, Reason::kStatic, "b");
  check(1, pro, Reason::kDisabled, "");
  check(2, pro, Reason::kTargetingMatch, "b");
  check(2, free, Reason::kDefault, "a");
  check(3, pro, Reason::kDefault, "");  // no default variant: the caller's default applies
  check(4, pro, Reason::kTargetingMatch, "true");
  check(4, free, Reason::kTargetingMatch, "false");
  check(5, pro, Reason::kError, "", ErrorCode::kGeneral);  // "pro" is not a variant
  check(6, pro, Reason::kError, "", ErrorCode::kGeneral);  // "pro" * 2 throws
  check(6, json(R"({"plan": 2})"), Reason::kError, "", ErrorCode::kGeneral);  // 4 is not a variant
  check(7, pro, Reason::kTargetingMatch, "key");  // flagd's $flagd replaces the caller's
  check(8, pro, Reason::kTargetingMatch, "true");
  EXPECT_EQ(evaluate(f.flags[8], pro, 1600000000).variant, "false");
}

}  // namespace sluice::flags
