#include "eval/report.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

namespace sluice::eval {
namespace {

// A two-case suite, candidate vs baseline: case a regressed, case b fails in both.
struct Fixture {
  Suite suite;
  ArmRun cand, base;
  RunReport rep;
  Fixture() {
    suite.name = "demo";
    suite.hash = "h";
    for (const char* id : {"a <&> \"quoted\"", "b"}) {
      Case c;
      c.id = id;
      c.category = "target";
      c.origin = "demo.yaml:3";
      c.vars = {{"q", "what?"}};
      suite.cases.push_back(c);
    }
    suite.gate.limits = {{"target", "max_drop", Metric::kPassRate, LimitKind::kMaxDrop, 0.02}};
    auto answer = [](const std::string& text, bool pass, const std::string& reason) {
      Output o;
      o.text = text;
      o.latency_ms = 20;
      CaseVerdict v;
      v.pass = pass;
      v.reason = reason;
      return std::make_pair(o, v);
    };
    cand.release = "rel_cand";
    base.release = "rel_base";
    for (auto* arm : {&cand, &base}) {
      arm->outputs.resize(2);
      arm->verdicts.resize(2);
    }
    auto put = [](ArmRun& a, size_t i, std::pair<Output, CaseVerdict> x) {
      a.outputs[i].push_back(x.first);
      a.verdicts[i].push_back(x.second);
    };
    put(cand, 0, answer("bad \x01 answer \xff with | pipe\nand newline", false, "contains: does not contain \"42\""));
    put(base, 0, answer("good 42", true, ""));
    put(cand, 1, answer("wrong", false, "equals: nope"));
    put(base, 1, answer("wrong too", false, "equals: nope"));
    rep.run_id = "ev_test";
    rep.suite = &suite;
    rep.cand = &cand;
    rep.base = &base;
    rep.included = {true, true};
    rep.case_errors = {"", ""};
    rep.gate.passed = false;
    LimitResult l;
    l.spec = suite.gate.limits[0];
    l.name = "target: max_drop 2 pts";
    l.verdict = Verdict::kInconclusive;
    l.blocks = true;
    l.quantity = "diff";
    l.estimate = -0.5, l.lo = -0.9, l.hi = 0.2, l.limit = -0.02;
    l.detail = "not sure";
    rep.gate.limits.push_back(l);
    rep.gate.decided = 1;
    CategoryStats cs;
    cs.category = "target";
    cs.n = 2;
    cs.base_pass = 0.5, cs.cand_pass = 0;
    cs.base_only = 1, cs.neither = 1;
    rep.gate.categories = {cs};
  }
};

TEST(Report, JunitCountsAndEscaping) {
  Fixture f;
  std::string x = report_junit(f.rep);
  EXPECT_NE(x.find("<testsuites name=\"sluice eval demo\" tests=\"3\" failures=\"2\" errors=\"0\" skipped=\"1\""),
            std::string::npos)
      << x;
  EXPECT_NE(x.find("name=\"a &lt;&amp;&gt; &quot;quoted&quot;\""), std::string::npos);
  EXPECT_NE(x.find("type=\"regression\""), std::string::npos);
  EXPECT_NE(x.find("type=\"gate-not-enough-evidence\""), std::string::npos);
  EXPECT_NE(x.find("<skipped message=\"known failure"), std::string::npos);
  EXPECT_EQ(x.find('\x01'), std::string::npos);  // not allowed in XML 1.0
  EXPECT_EQ(x.find('\xff'), std::string::npos);  // not UTF-8
  f.rep.junit_all_failures = true;
  x = report_junit(f.rep);
  EXPECT_NE(x.find("failures=\"3\""), std::string::npos);
}

TEST(Report, XmlEscape) {
  EXPECT_EQ(xml_escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
  EXPECT_EQ(xml_escape("é€😀"), "é€😀");
  EXPECT_EQ(xml_escape("\xC0\xAF"), "??");      // overlong
  EXPECT_EQ(xml_escape("\xED\xA0\x80"), "???");  // surrogate
  EXPECT_EQ(xml_escape(std::string("a\0b", 3)), "a\xEF\xBF\xBD" "b");
}

TEST(Report, JsonParsesAndMarkdownHasTheTables) {
  Fixture f;
  simdjson::dom::parser p;
  for (bool with_cases : {true, false}) {
    std::string j = report_json(f.rep, with_cases);
    simdjson::dom::element d;
    ASSERT_FALSE(p.parse(j).get(d)) << j;
    EXPECT_EQ(std::string_view(d["run_id"]), "ev_test");
    EXPECT_EQ(bool(d["passed"]), false);
    EXPECT_EQ(std::string_view(d["gate"]["limits"].at(0)["verdict"]), "not enough evidence");
    EXPECT_EQ(std::string_view(d["regressions"].at(0)), "a <&> \"quoted\"");
    EXPECT_EQ(d["cases"].error() == simdjson::SUCCESS, with_cases);
  }
  std::string m = report_markdown(f.rep);
  EXPECT_NE(m.find("# Eval `demo`: **FAIL**"), std::string::npos);
  EXPECT_NE(m.find("| limit | baseline | candidate | estimate | 95% interval | bound | verdict |"), std::string::npos);
  EXPECT_NE(m.find("❌ not enough evidence"), std::string::npos);
  EXPECT_NE(m.find("## Worst regressions"), std::string::npos);
  EXPECT_NE(m.find("| good 42 | bad"), std::string::npos);  // side by side
  EXPECT_NE(m.find("with \\| pipe<br>and newline"), std::string::npos);
  std::string t = report_text(f.rep);
  EXPECT_NE(t.find("gate: FAIL"), std::string::npos);
}

}  // namespace
}  // namespace sluice::eval
