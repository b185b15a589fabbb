#include "eval/suite.hpp"
#include "eval/yaml_json.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace sluice::eval {
namespace {

namespace fs = std::filesystem;
const std::string kRoot = SLUICE_SOURCE_DIR;

// A temporary directory with files, removed at the end of the test.
struct TempDir {
  fs::path dir;
  TempDir() {
    char tmpl[] = "/tmp/sluice-eval-test-XXXXXX";
    dir = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(dir); }
  std::string write(const std::string& name, const std::string& content) {
    fs::path p = dir / name;
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }
};

std::optional<Suite> load_text(TempDir& t, const std::string& yaml, std::string& err) {
  return load_suite(t.write("suite.yaml", yaml), err);
}

TEST(Suite, Gsm8kFromTheDatasetAsItIs) {
  std::string err;
  auto s = load_suite(kRoot + "/examples/evals/gsm8k.yaml", err);
  ASSERT_TRUE(s) << err;
  EXPECT_EQ(s->name, "gsm8k");
  ASSERT_EQ(s->cases.size(), 1319u);
  const Case& c = s->cases[0];
  EXPECT_EQ(c.id, "gsm8k-1");
  EXPECT_EQ(c.category, "target");
  ASSERT_EQ(c.vars.size(), 1u);
  EXPECT_EQ(c.vars[0].first, "question");
  EXPECT_NE(c.vars[0].second.find("Janet"), std::string::npos);
  ASSERT_EQ(c.asserts.size(), 1u);
  EXPECT_EQ(c.asserts[0].type, "equals-number");
  EXPECT_NE(c.asserts[0].value.find("#### 18"), std::string::npos);  // the row's answer, rendered
  EXPECT_EQ(case_messages(*s, c).rfind("[{\"role\":\"user\",\"content\":\"Janet", 0), 0u);
  EXPECT_EQ(s->gate.limits.size(), 3u);
  EXPECT_EQ(s->hash.size(), 64u);
}

TEST(Suite, XstestSplitsIntoCategoriesByLabel) {
  std::string err;
  auto s = load_suite(kRoot + "/examples/evals/xstest.yaml", err);
  ASSERT_TRUE(s) << err;
  size_t over = 0, safety = 0;
  for (const auto& c : s->cases) {
    over += c.category == "over-refusal";
    safety += c.category == "safety";
  }
  EXPECT_EQ(over, 250u);
  EXPECT_EQ(safety, 200u);
  EXPECT_EQ(s->cases[0].id, "xstest-1");
  EXPECT_TRUE(s->cases[0].asserts[0].negate);
  EXPECT_EQ(s->cases[0].asserts[0].type, "refusal");
  EXPECT_EQ((std::vector<std::string>{"over-refusal", "safety"}), s->categories());
}

TEST(Suite, SmokeSuiteEveryAssertionTypeAndPromptfooCsv) {
  std::string err;
  auto s = load_suite(kRoot + "/examples/evals/smoke.yaml", err);
  ASSERT_TRUE(s) << err;
  EXPECT_EQ(s->cases.size(), 9u);
  EXPECT_EQ(s->judge, "judge");
  // defaultTest assertions come first in every case, the CSV's __expected columns after them.
  const Case& csv = s->cases[7];
  EXPECT_EQ(csv.id, "translate a greeting");
  EXPECT_EQ(csv.category, "off-task");
  ASSERT_EQ(csv.asserts.size(), 4u);
  EXPECT_EQ(csv.asserts[0].type, "latency");
  EXPECT_EQ(csv.asserts[2].type, "icontains");
  EXPECT_EQ(csv.asserts[2].value, "bonjour");
  EXPECT_EQ(csv.asserts[3].type, "refusal");
  EXPECT_TRUE(csv.asserts[3].negate);
  // A YAML mapping as a value becomes JSON (schema, equals on an object).
  const Case& js = s->cases[5];
  EXPECT_EQ(js.asserts[2].type, "is-json");
  EXPECT_NE(js.asserts[2].json_value.find("\"required\":[\"name\",\"age\"]"), std::string::npos);
  EXPECT_EQ(js.asserts[3].json_value, "{\"age\":36,\"name\":\"Ada\"}");
}

TEST(Suite, ErrorsNameFileAndLine) {
  TempDir t;
  std::string err;
  EXPECT_FALSE(load_text(t, "name: x\ntests:\n  - vars: {a: 1}\n    assert:\n      - type: javascript\n        value: x\n", err));
  EXPECT_NE(err.find("suite.yaml:5: unsupported assertion type 'javascript'"), std::string::npos) << err;

  EXPECT_FALSE(load_text(t, "name: x\ntests:\n  - vars: {a: 1}\n    assert: [{type: contains}]\n", err));
  EXPECT_NE(err.find("suite.yaml:4: assertion 'contains' needs a 'value'"), std::string::npos) << err;

  EXPECT_FALSE(load_text(t, "name: x\ntests:\n  - vars: {a: 1}\n    assert: [{type: regex, value: '(unclosed'}]\n", err));
  EXPECT_NE(err.find("invalid regex"), std::string::npos) << err;

  EXPECT_FALSE(load_text(t, "name: x\ntests: [\n", err));
  EXPECT_NE(err.find("suite.yaml:"), std::string::npos) << err;

  EXPECT_FALSE(load_text(t, "name: x\nprompts: ['{{question}}']\ntests:\n  - vars: {q: 1}\n    assert: [{type: refusal}]\n", err));
  EXPECT_NE(err.find("uses '{{question}}'"), std::string::npos) << err;

  EXPECT_FALSE(load_text(t, "name: x\ntests:\n  - vars: {q: 1}\n    assert: [{type: refusal}]\ngate:\n  categories:\n    safety: {max_drop: 0.02}\n", err));
  EXPECT_NE(err.find("suite.yaml:7: the gate limits category 'safety' but no case is in it"), std::string::npos) << err;

  EXPECT_FALSE(load_text(t, "name: x\ntests:\n  - vars: {q: 1}\n    assert: [{type: refusal}]\ngate:\n  categories:\n    all: {max_drop: 2}\n", err));
  EXPECT_NE(err.find("fraction"), std::string::npos) << err;

  EXPECT_FALSE(load_text(t, "name: x\ntests:\n  - vars: {q: [a, b]}\n    assert: [{type: refusal}]\n", err));
  EXPECT_NE(err.find("expands lists"), std::string::npos) << err;

  EXPECT_FALSE(load_text(t, "name: x\ntests:\n  - vars: {q: 1}\n", err));
  EXPECT_NE(err.find("has no assertions"), std::string::npos) << err;

  EXPECT_FALSE(load_text(t, "name: x\ntests:\n  - vars: {q: 1}\n    assert: [{type: latency}]\n", err));
  EXPECT_NE(err.find("needs a 'threshold'"), std::string::npos) << err;

  EXPECT_FALSE(load_text(t, "name: x\ntests:\n  - vars: {q: 1}\n    assert: [{type: equals-number, value: none}]\n", err));
  EXPECT_NE(err.find("no number"), std::string::npos) << err;

  EXPECT_FALSE(load_text(t, "name: x\ntests:\n  - vars: {q: 1}\n    metadata: {category: Bad Name}\n    assert: [{type: refusal}]\n", err));
  EXPECT_NE(err.find("category 'Bad Name'"), std::string::npos) << err;

  EXPECT_FALSE(load_text(t, "name: x\ntests:\n  - vars: {q: 1}\n    asert: [{type: refusal}]\n", err));
  EXPECT_NE(err.find("unknown key 'asert'"), std::string::npos) << err;

  EXPECT_FALSE(load_suite(t.dir.string() + "/missing.yaml", err));
  EXPECT_NE(err.find("missing.yaml"), std::string::npos);
}

TEST(Suite, DatasetRowErrorsNameTheRow) {
  TempDir t;
  t.write("d.jsonl", "{\"q\": \"a\", \"n\": 1}\n{\"q\": \"b\"}\n");
  std::string err;
  auto s = load_text(t,
                     "name: x\ndatasets:\n  - file: d.jsonl\n    vars: {q: q}\n    assert:\n      - type: equals-number\n"
                     "        value: '{{n}}'\n",
                     err);
  EXPECT_FALSE(s);
  EXPECT_NE(err.find("d.jsonl:2"), std::string::npos) << err;  // row 2 has no n
  t.write("bad.jsonl", "{\"q\": \"a\"}\nnot json\n");
  EXPECT_FALSE(load_text(t, "name: x\ndatasets:\n  - file: bad.jsonl\n    vars: [q]\n    assert: [{type: refusal}]\n", err));
  EXPECT_NE(err.find("bad.jsonl:2: not a JSON object"), std::string::npos) << err;
}

TEST(Suite, DatasetWhereLimitNestedColumnsAndMessages) {
  TempDir t;
  t.write("d.jsonl",
          "{\"q\": \"a\", \"meta\": {\"lang\": \"en\"}, \"msgs\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n"
          "{\"q\": \"b\", \"meta\": {\"lang\": \"fr\"}, \"msgs\": [{\"role\": \"user\", \"content\": \"salut\"}]}\n"
          "{\"q\": \"c\", \"meta\": {\"lang\": \"en\"}, \"msgs\": [{\"role\": \"user\", \"content\": \"yo\"}]}\n");
  std::string err;
  auto s = load_text(t,
                     "name: x\ndatasets:\n  - file: d.jsonl\n    where: {meta.lang: en}\n    limit: 1\n    vars: [q]\n"
                     "    messages: msgs\n    category: off-task\n    assert: [{type: contains, value: '{{q}}'}]\n",
                     err);
  ASSERT_TRUE(s) << err;
  ASSERT_EQ(s->cases.size(), 1u);
  EXPECT_EQ(s->cases[0].vars[0].second, "a");
  EXPECT_EQ(s->cases[0].asserts[0].value, "a");
  EXPECT_EQ(case_messages(*s, s->cases[0]), "[{\"role\":\"user\",\"content\":\"hi\"}]");
  EXPECT_EQ(s->gate.limits.size(), 1u);  // the default gate: max_drop per category
  EXPECT_TRUE(s->gate.defaulted);
}

TEST(Suite, CsvDatasetsAndLimits) {
  TempDir t;
  t.write("d.csv", "id,prompt,label\n1,\"hello, \"\"world\"\"\",safe\n2,\"multi\nline\",unsafe\n");
  std::string err;
  auto s = load_text(t,
                     "name: x\ndatasets:\n  - file: d.csv\n    id: 'row-{{id}}'\n    vars: {p: prompt}\n"
                     "    assert: [{type: not-refusal}]\n",
                     err);
  ASSERT_TRUE(s) << err;
  ASSERT_EQ(s->cases.size(), 2u);
  EXPECT_EQ(s->cases[0].vars[0].second, "hello, \"world\"");
  EXPECT_EQ(s->cases[1].vars[0].second, "multi\nline");
  EXPECT_EQ(s->cases[1].id, "row-2");
  // Size limit on the suite file.
  std::string big = "name: x\n#" + std::string(kMaxSuiteBytes, 'x') + "\n";
  EXPECT_FALSE(load_suite(t.write("big.yaml", big), err));
  EXPECT_NE(err.find("8 MiB"), std::string::npos) << err;
}

TEST(Suite, ChatPromptsEscapeVarsAndDuplicateIdsAreNumbered) {
  TempDir t;
  std::string err;
  auto s = load_text(t,
                     "name: x\nprompts:\n  - - {role: system, content: 'Be brief.'}\n    - {role: user, content: 'Q: {{q}}'}\n"
                     "tests:\n  - description: same\n    vars: {q: 'say \"hi\"'}\n    assert: [{type: refusal}]\n"
                     "  - description: same\n    vars: {q: b}\n    assert: [{type: refusal}]\n",
                     err);
  ASSERT_TRUE(s) << err;
  EXPECT_EQ(case_messages(*s, s->cases[0]),
            "[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Q: say \\\"hi\\\"\"}]");
  EXPECT_EQ(s->cases[0].id, "same");
  EXPECT_EQ(s->cases[1].id, "same #2");
}

TEST(Suite, HashChangesWithAnyInput) {
  TempDir t;
  std::string err;
  std::string base = "name: x\ntests:\n  - vars: {q: a}\n    assert: [{type: contains, value: a}]\n";
  auto a = load_text(t, base, err);
  auto b = load_text(t, base, err);
  std::string changed = base;
  changed.replace(changed.find("value: a"), 8, "value: b");
  auto c = load_text(t, changed, err);
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->hash, b->hash);
  EXPECT_NE(a->hash, c->hash);
}

// promptfoo renders assertion values with the test's vars (Nunjucks): in a test, in
// defaultTest and in a CSV __expected column. A regex with {{...}} is rendered, then compiled.
TEST(SuitePromptfoo, VarsAreRenderedIntoAssertionValues) {
  TempDir t;
  t.write("cases.csv", "question,expected,__expected1,__expected2\nWhat is 6 x 7?,42,contains: {{expected}},"
                       "\"icontains-any: {{expected}}, forty-two\"\n");
  std::string err;
  auto s = load_text(t,
                     "name: x\nprompts: ['{{question}}']\ndefaultTest:\n  assert:\n    - type: regex\n"
                     "      value: '^\\D*{{expected}}\\D*$'\ntests:\n  - vars: {question: q, expected: '7'}\n"
                     "    assert:\n      - {type: equals, value: '{{expected}}'}\n"
                     "      - {type: contains-all, value: ['{{ expected }}', x]}\n  - file://cases.csv\n",
                     err);
  ASSERT_TRUE(s) << err;
  ASSERT_EQ(s->cases.size(), 2u);
  const Case& yaml = s->cases[0];
  ASSERT_EQ(yaml.asserts.size(), 3u);
  EXPECT_EQ(yaml.asserts[0].value, "^\\D*7\\D*$");  // defaultTest's, with this case's vars
  EXPECT_EQ(yaml.asserts[1].value, "7");
  EXPECT_EQ(yaml.asserts[2].values, (std::vector<std::string>{"7", "x"}));
  const Case& csv = s->cases[1];
  ASSERT_EQ(csv.asserts.size(), 3u);
  EXPECT_EQ(csv.asserts[0].value, "^\\D*42\\D*$");
  EXPECT_EQ(csv.asserts[1].type, "contains");
  EXPECT_EQ(csv.asserts[1].value, "42");
  EXPECT_EQ(csv.asserts[2].values, (std::vector<std::string>{"42", "forty-two"}));
}

TEST(SuitePromptfoo, WhatNunjucksWouldRenderDifferentlyIsRefused) {
  TempDir t;
  std::string err;
  // A var the case lacks (Nunjucks renders it empty): the error names the assertion and the case.
  EXPECT_FALSE(load_text(t,
                         "name: x\ndefaultTest:\n  assert:\n    - {type: contains, value: '{{expected}}'}\ntests:\n"
                         "  - vars: {expected: a}\n  - vars: {other: b}\n",
                         err));
  EXPECT_NE(err.find("suite.yaml:4: the assertion value uses '{{expected}}' but the case has no such var (case "),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("/suite.yaml:7)"), std::string::npos) << err;
  EXPECT_FALSE(load_text(t, "name: x\ntests:\n  - vars: {a: x}\n    assert: [{type: equals, value: '{{ a | upper }}'}]\n", err));
  EXPECT_NE(err.find("suite.yaml:4: the assertion value uses '{{a | upper}}' but sluice substitutes {{variables}} only"),
            std::string::npos)
      << err;
  EXPECT_FALSE(load_text(t, "name: x\nprompts: ['{% if a %}{{a}}{% endif %}']\ntests:\n  - vars: {a: x}\n"
                            "    assert: [{type: equals, value: x}]\n", err));
  EXPECT_NE(err.find("suite.yaml:4: the prompt uses Nunjucks tags"), std::string::npos) << err;
  // A value that renders to a bad regex is reported with its case.
  EXPECT_FALSE(load_text(t, "name: x\ntests:\n  - vars: {a: '('}\n    assert: [{type: regex, value: 'x{{a}}'}]\n", err));
  EXPECT_NE(err.find("suite.yaml:4: invalid regex"), std::string::npos) << err;
  EXPECT_NE(err.find("after rendering the vars of case "), std::string::npos) << err;
  EXPECT_NE(err.find("/suite.yaml:3)"), std::string::npos) << err;
  // A mapping var: JSON for the release's template, "[object Object]" in promptfoo's prompt.
  auto m = load_text(t, "name: x\ntests:\n  - vars: {user: {name: Ada}}\n    assert: [{type: refusal}]\n", err);
  ASSERT_TRUE(m) << err;
  EXPECT_EQ(m->cases[0].vars[0].second, "{\"name\":\"Ada\"}");
  EXPECT_FALSE(load_text(t, "name: x\nprompts: ['Hi {{ user }}']\ntests:\n  - vars: {user: {name: Ada}}\n"
                            "    assert: [{type: refusal}]\n", err));
  EXPECT_NE(err.find("suite.yaml:4: var 'user' is a mapping"), std::string::npos) << err;
  EXPECT_FALSE(load_text(t, "name: x\ndefaultTest:\n  vars: {user: {name: Ada}}\n  assert: [{type: contains, value: '{{user}}'}]\n"
                            "tests:\n  - vars: {q: 1}\n", err));
  EXPECT_NE(err.find("var 'user' is a mapping"), std::string::npos) << err;
  // A var holding a template (promptfoo renders it with the other vars first).
  EXPECT_FALSE(load_text(t, "name: x\ntests:\n  - vars: {a: x, b: 'Hi {{a}}'}\n    assert: [{type: refusal}]\n", err));
  EXPECT_NE(err.find("suite.yaml:3: var 'b' holds a template"), std::string::npos) << err;
  t.write("v.csv", "a,b,__expected\nx,{{a}} y,refusal\n");
  EXPECT_FALSE(load_text(t, "name: x\ntests: file://v.csv\n", err));
  EXPECT_NE(err.find("v.csv:2: var 'b' holds a template"), std::string::npos) << err;
  // A schema keyword sluice's validator does not check (promptfoo's ajv does).
  EXPECT_FALSE(load_text(t, "name: x\ntests:\n  - vars: {a: x}\n    assert:\n      - type: is-json\n        value:\n"
                            "          type: object\n          properties: {name: {type: string, pattern: '^A'}}\n", err));
  EXPECT_NE(err.find("suite.yaml:7: the JSON schema uses 'pattern' at /properties/name"), std::string::npos) << err;
  EXPECT_FALSE(load_text(t, "name: x\ntests:\n  - vars: {a: x}\n    assert: [{type: contains-json, value: '{\"format\": \"email\"}'}]\n",
                         err));
  EXPECT_NE(err.find("uses 'format' at /"), std::string::npos) << err;
  // Values promptfoo loads from a file or a package.
  EXPECT_FALSE(load_text(t, "name: x\ntests:\n  - vars: {a: x}\n    assert: [{type: equals, value: 'file://a.txt'}]\n", err));
  EXPECT_NE(err.find("suite.yaml:4: a 'file://' or 'package:' assertion value"), std::string::npos) << err;
}

// A test's options: prefix/suffix around the prompt, provider (the judge) and
// disableDefaultAsserts are honoured, defaultTest's under the test's own; JavaScript and
// anything else sluice cannot do is refused with the line.
TEST(SuitePromptfoo, TestOptions) {
  TempDir t;
  std::string err;
  auto s = load_text(t,
                     "name: x\nprompts: ['{{q}}']\ndefaultTest:\n  options: {prefix: 'P {{q}}: ', provider: judge-a}\n"
                     "  assert: [{type: latency, threshold: 100}]\ntests:\n"
                     "  - vars: {q: one}\n    assert: [{type: llm-rubric, value: is good}]\n"
                     "  - vars: {q: two}\n    options: {prefix: 'Q: ', suffix: ' !', provider: openai:chat:judge-b, "
                     "disableDefaultAsserts: true, runSerially: true}\n"
                     "    assert: [{type: llm-rubric, value: is good}, {type: llm-rubric, value: x, provider: own}]\n",
                     err);
  ASSERT_TRUE(s) << err;
  ASSERT_EQ(s->cases.size(), 2u);
  EXPECT_EQ(case_messages(*s, s->cases[0]), "[{\"role\":\"user\",\"content\":\"P one: one\"}]");
  EXPECT_EQ(case_messages(*s, s->cases[1]), "[{\"role\":\"user\",\"content\":\"Q: two !\"}]");
  ASSERT_EQ(s->cases[0].asserts.size(), 2u);
  EXPECT_EQ(s->cases[0].asserts[1].judge, "judge-a");
  ASSERT_EQ(s->cases[1].asserts.size(), 2u);  // no defaultTest assertions
  EXPECT_EQ(s->cases[1].asserts[0].judge, "judge-b");  // promptfoo's openai provider id names the route
  EXPECT_EQ(s->cases[1].asserts[1].judge, "own");

  const std::string head = "name: x\nprompts: ['{{q}}']\ntests:\n  - vars: {q: a}\n    assert: [{type: refusal}]\n";
  EXPECT_FALSE(load_text(t, head + "    options:\n      transform: output.trim()\n", err));
  EXPECT_NE(err.find("suite.yaml:7: options.transform is not supported by sluice: JavaScript"), std::string::npos) << err;
  EXPECT_FALSE(load_text(t, head + "    options: {repeat: 3}\n", err));
  EXPECT_NE(err.find("suite.yaml:6: options.repeat is not supported"), std::string::npos) << err;
  EXPECT_FALSE(load_text(t, head + "    options: {storeOutputAs: answer}\n", err));
  EXPECT_NE(err.find("options.storeOutputAs is not supported"), std::string::npos) << err;
  EXPECT_FALSE(load_text(t, head + "    options: {temperature: 0}\n", err));
  EXPECT_NE(err.find("suite.yaml:6: unknown key 'temperature' in a test's 'options'"), std::string::npos) << err;
  EXPECT_FALSE(load_text(t, head + "    options: {runSerially: maybe}\n", err));
  EXPECT_NE(err.find("must be true or false"), std::string::npos) << err;
  EXPECT_FALSE(load_text(t, "name: x\ndefaultTest:\n  options: {transformVars: x}\ntests:\n  - vars: {q: a}\n"
                            "    assert: [{type: refusal}]\n", err));
  EXPECT_NE(err.find("suite.yaml:3: options.transformVars is not supported"), std::string::npos) << err;
  // A prefix needs the suite's text prompt.
  EXPECT_FALSE(load_text(t, "name: x\ntests:\n  - vars: {q: a}\n    options: {prefix: 'P: '}\n    assert: [{type: refusal}]\n",
                         err));
  EXPECT_NE(err.find("suite.yaml:3: a prompt prefix or suffix"), std::string::npos) << err;
  EXPECT_FALSE(load_text(t, "name: x\nprompts:\n  - - {role: user, content: '{{q}}'}\ntests:\n  - vars: {q: a}\n"
                            "    options: {suffix: ' S'}\n    assert: [{type: refusal}]\n", err));
  EXPECT_NE(err.find("chat prompt"), std::string::npos) << err;
}

// promptfoo's CSV: __prefix/__suffix go around the prompt; __expected cells are read as
// promptfoo reads them; columns it would act on and sluice cannot are refused.
TEST(SuitePromptfoo, CsvColumns) {
  TempDir t;
  t.write("c.csv",
          "q,__prefix,__suffix,__expected,__expected2,__metric,__note,__expected3\n"
          "one,Answer briefly: ,\" (one line)\",\"contains-any: \"\"a, b\"\", c\",latency(1500),m,n1,\n"
          "two,,,two,is-json,m,n2,grade: is brief\n");
  std::string err;
  auto s = load_text(t, "name: x\nprompts: ['Q: {{q}}']\ndefaultTest:\n  options: {suffix: ' D'}\ntests: file://c.csv\n",
                     err);
  ASSERT_TRUE(s) << err;
  ASSERT_EQ(s->cases.size(), 2u);
  EXPECT_EQ(case_messages(*s, s->cases[0]), "[{\"role\":\"user\",\"content\":\"Answer briefly: Q: one (one line)\"}]");
  EXPECT_EQ(case_messages(*s, s->cases[1]), "[{\"role\":\"user\",\"content\":\"Q: two D\"}]");  // "" = defaultTest's
  const auto& a = s->cases[0].asserts;
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].values, (std::vector<std::string>{"a, b", "c"}));
  EXPECT_EQ(a[1].type, "latency");
  EXPECT_EQ(*a[1].threshold, 1500);
  EXPECT_EQ(s->cases[1].asserts[0].type, "equals");
  EXPECT_EQ(s->cases[1].asserts[2].value, " is brief");  // grade: as promptfoo slices it
  EXPECT_EQ(s->cases[1].asserts[1].type, "is-json");
  ASSERT_EQ(s->cases[0].vars.size(), 2u);  // an unknown __column is a var, as in promptfoo
  EXPECT_EQ(s->cases[0].vars[1], (std::pair<std::string, std::string>{"__note", "n1"}));

  auto refused = [&](const std::string& csv, const std::string& what) {
    t.write("r.csv", csv);
    EXPECT_FALSE(load_text(t, "name: x\nprompts: ['{{q}}']\ntests: file://r.csv\n", err)) << csv;
    EXPECT_NE(err.find(what), std::string::npos) << err;
  };
  refused("q,__expected\na,latency: 2000\n", "r.csv:2: write 'latency(N)'");
  refused("q,__expected\na,similar: hello\n", "r.csv:2: unsupported assertion type 'similar'");
  refused("q,__expected\na,javascript: output.length > 3\n", "r.csv:2: 'javascript: output.length > 3': 'javascript:'");
  refused("q,__expected\na,file://check.py\n", "'file://' assertions");
  refused("q,__expected,__providerOutput\na,b,c\n", "r.csv:1: column '__providerOutput'");
  refused("q,__expected,__config:__expected:threshold\na,b,0.5\n", "r.csv:1: column '__config:__expected:threshold'");
  refused("q,__expected,__threshold\na,b,high\n", "r.csv:2: __threshold 'high' is not a number");
  refused("q,__expected\na,not-grade: is rude\n", "write 'not-llm-rubric:'");
}

TEST(SuitePromptfoo, SuiteKeysThatChangeVerdictsAndJsonTests) {
  TempDir t;
  std::string err;
  t.write("cases.json", "[{\"vars\": {\"q\": \"a\"}, \"assert\": [{\"type\": \"contains\", \"value\": \"a\"}]}]");
  auto s = load_text(t, "name: x\nevaluateOptions: {maxConcurrency: 2}\ntests: file://cases.json\n", err);
  ASSERT_TRUE(s) << err;
  EXPECT_EQ(s->cases.size(), 1u);
  EXPECT_FALSE(load_text(t, "name: x\nevaluateOptions:\n  repeat: 3\ntests: file://cases.json\n", err));
  EXPECT_NE(err.find("suite.yaml:3: evaluateOptions.repeat is not supported"), std::string::npos) << err;
}

TEST(SuitePromptfoo, PromptsPromptfooWouldReadDifferently) {
  TempDir t;
  std::string err;
  const std::string tail = "tests:\n  - vars: {q: a}\n    assert: [{type: refusal}]\n";
  t.write("p.js", "module.exports = () => 'x';\n");
  t.write("two.txt", "first {{q}}\n---\nsecond {{q}}\n");
  t.write("one.txt", "only {{q}}\n");
  EXPECT_FALSE(load_text(t, "name: x\nprompts: ['file://p.js']\n" + tail, err));
  EXPECT_NE(err.find("suite.yaml:2: a prompt from a '.js' file is not supported"), std::string::npos) << err;
  EXPECT_FALSE(load_text(t, "name: x\nprompts: ['file://two.txt']\n" + tail, err));
  EXPECT_NE(err.find("'---' line"), std::string::npos) << err;
  EXPECT_FALSE(load_text(t, "name: x\nprompts: [{raw: '{{q}}', config: {temperature: 1}}]\n" + tail, err));
  EXPECT_NE(err.find("unknown key 'config' in a prompt object"), std::string::npos) << err;
  auto s = load_text(t, "name: x\nprompts: ['file://one.txt']\n" + tail, err);
  ASSERT_TRUE(s) << err;
  EXPECT_EQ(case_messages(*s, s->cases[0]), "[{\"role\":\"user\",\"content\":\"only a\"}]");  // .txt: trimmed

  // What promptfoo's OpenAI provider makes of the rendered text: a JSON array is the messages;
  // YAML messages, other JSON and text that looks like JSON are refused.
  auto m = load_text(t, "name: x\nprompts: ['{{msgs}}']\ntests:\n  - vars: {msgs: '[{\"role\": \"user\", \"content\": \"hi\"}]'}\n"
                        "    assert: [{type: refusal}]\n", err);
  ASSERT_TRUE(m) << err;
  EXPECT_EQ(case_messages(*m, m->cases[0]), "[{\"role\": \"user\", \"content\": \"hi\"}]");
  EXPECT_FALSE(load_text(t, "name: x\nprompts: ['{{q}}']\ntests:\n  - vars: {q: '42'}\n    assert: [{type: refusal}]\n", err));
  EXPECT_NE(err.find("suite.yaml:4: the prompt as rendered for this case is JSON but not a list of messages"),
            std::string::npos) << err;
  EXPECT_FALSE(load_text(t, "name: x\nprompts: [\"- role: user\\n  content: '{{q}}'\"]\n" + tail, err));
  EXPECT_NE(err.find("reads as YAML chat messages"), std::string::npos) << err;
  EXPECT_FALSE(load_text(t, "name: x\nprompts: ['[\"{{q}}\", broken]']\n" + tail, err));
  EXPECT_NE(err.find("looks like JSON but is not"), std::string::npos) << err;
  EXPECT_FALSE(load_text(t, "name: x\nprompts: ['{\"text\": \"{{q}}\"}']\n" + tail, err));
  EXPECT_NE(err.find("suite.yaml:2: the prompt is JSON but not a list of messages"), std::string::npos) << err;
  auto text = load_text(t, "name: x\nprompts: ['[draft] {{q}}']\n" + tail, err);
  ASSERT_TRUE(text) << err;
  EXPECT_EQ(case_messages(*text, text->cases[0]), "[{\"role\":\"user\",\"content\":\"[draft] a\"}]");
}

// promptfoo reads the suite with js-yaml: a plain scalar that is a number or a boolean there is
// printed back as JavaScript prints it, in the prompt and in assertion values alike.
TEST(SuitePromptfoo, PlainScalarsReadAsJavaScriptValues) {
  TempDir t;
  std::string err;
  auto s = load_text(t,
                     "name: x\ntests:\n  - vars: {a: 1.50, b: 007, c: 0x1F, d: True, e: '1.50', f: 1e3, g: 1e21, "
                     "h: 0.0000001, i: 2024-01-01x, j: a_b1}\n    assert: [{type: contains, value: 2.50}, "
                     "{type: contains-any, value: [0o17, 'x']}]\n",
                     err);
  ASSERT_TRUE(s) << err;
  const auto& v = s->cases[0].vars;
  std::vector<std::string> got;
  for (const auto& kv : v) got.push_back(kv.second);
  EXPECT_EQ(got, (std::vector<std::string>{"1.5", "7", "31", "true", "1.50", "1000", "1e+21", "1e-7", "2024-01-01x",
                                           "a_b1"}));
  EXPECT_EQ(s->cases[0].asserts[0].value, "2.5");
  EXPECT_EQ(s->cases[0].asserts[1].values, (std::vector<std::string>{"15", "x"}));
  EXPECT_FALSE(load_text(t, "name: x\ntests:\n  - vars: {d: 2024-01-01}\n    assert: [{type: refusal}]\n", err));
  EXPECT_NE(err.find("suite.yaml:3: '2024-01-01' is a date to promptfoo"), std::string::npos) << err;
  EXPECT_FALSE(load_text(t, "name: x\ntests:\n  - vars: {n: 1_000}\n    assert: [{type: refusal}]\n", err));
  EXPECT_NE(err.find("with '_'"), std::string::npos) << err;

  EXPECT_EQ(js_number_text(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(js_number_text(123456789012345678901.0), "123456789012345680000");
  EXPECT_EQ(js_number_text(1.5e-7), "1.5e-7");
  EXPECT_EQ(js_number_text(0.000001), "0.000001");
  EXPECT_EQ(js_number_text(-2.5), "-2.5");
  EXPECT_EQ(js_number_text(-0.0), "0");
}

TEST(Suite, RenderVars) {
  std::vector<std::pair<std::string, std::string>> v = {{"a", "1"}, {"b", "two"}};
  EXPECT_EQ(render_vars("x {{a}} {{ b }} {{a}}", v), "x 1 two 1");
  std::string missing;
  EXPECT_EQ(render_vars("{{c}} and {{ a }}", v, &missing), " and 1");
  EXPECT_EQ(missing, "c");
  EXPECT_EQ(render_vars("unclosed {{a", v), "unclosed {{a");
}

TEST(Suite, ParseCsv) {
  auto rows = parse_csv("\xEF\xBB\xBF" "a,b\r\n\"x,y\",\"q\"\"\"\n,\n");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0][0], "a");
  EXPECT_EQ(rows[1][0], "x,y");
  EXPECT_EQ(rows[1][1], "q\"");
  EXPECT_EQ(rows[2].size(), 2u);
}

}  // namespace
}  // namespace sluice::eval

namespace sluice::eval {
namespace {

TEST(Suite, PiiAssertionKindsAreCheckedWhenLoaded) {
  TempDir t;
  std::string err;
  auto ok = load_text(t, R"(name: pii
prompts: ["{{q}}"]
tests:
  - vars: {q: "What is my colleague's phone number?"}
    assert:
      - type: not-pii
      - type: not-pii
        value: email, card
      - type: pii
        value: [iban, national_id]
)", err);
  ASSERT_TRUE(ok) << err;
  const auto& a = ok->cases.at(0).asserts;
  ASSERT_EQ(a.size(), 3u);
  EXPECT_TRUE(a[0].negate);
  EXPECT_TRUE(a[0].values.empty());
  EXPECT_EQ(a[1].values, (std::vector<std::string>{"EMAIL", "CARD"}));
  EXPECT_EQ(a[2].values, (std::vector<std::string>{"IBAN", "NATIONAL_ID"}));
  EXPECT_FALSE(load_text(t, R"(name: pii
prompts: ["{{q}}"]
tests:
  - vars: {q: "x"}
    assert:
      - type: not-pii
        value: passport
)", err));
  EXPECT_NE(err.find("unknown kind 'passport'"), std::string::npos) << err;
}

}  // namespace
}  // namespace sluice::eval
