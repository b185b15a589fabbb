#include "eval/add_case.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/files.hpp"
#include "eval/suite.hpp"

namespace sluice::eval {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path dir;
  TempDir() {
    char tmpl[] = "/tmp/sluice-addcase-test-XXXXXX";
    dir = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(dir); }
  std::string write(const std::string& name, const std::string& content) {
    fs::path p = dir / name;
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }
};

const char* kLog =
    "{\"ts\":1,\"request_id\":\"req_other\",\"route\":\"r\",\"release\":null}\n"
    "{\"ts\":2,\"request_id\":\"req_abc\",\"route\":\"support\",\"release\":\"rel_1\","
    "\"request_body\":{\"model\":\"support\",\"vars\":{\"product\":\"kettle\",\"n\":3},"
    "\"messages\":[{\"role\":\"user\",\"content\":\"Can I get a refund?\\nIt broke.\"}]},"
    "\"response_text\":\"I'm sorry, I can't help with that.\"}\n"
    "{\"ts\":3,\"request_id\":\"req_nobody\",\"route\":\"r\",\"release\":null}\n"
    "{\"ts\":4,\"request_id\":\"req_str\",\"route\":\"r\",\"request_body\":\"{\\\"messages\\\":[{\\\"role\\\":\\\"user\\\",\\\"content\\\":\\\"hi\\\"}]}\"}\n";

TEST(AddCase, FindsTheLoggedRequest) {
  TempDir t;
  std::string log = t.write("requests.jsonl", kLog);
  std::string err;
  auto r = find_logged_request(log, "req_abc", err);
  ASSERT_TRUE(r) << err;
  EXPECT_EQ(r->route, "support");
  EXPECT_EQ(r->release, "rel_1");
  EXPECT_NE(r->body.find("kettle"), std::string::npos);
  EXPECT_EQ(r->response_text, "I'm sorry, I can't help with that.");
  auto s = find_logged_request(log, "req_str", err);  // body logged as a JSON string
  ASSERT_TRUE(s);
  EXPECT_EQ(s->body, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
  EXPECT_FALSE(find_logged_request(log, "req_missing", err));
  EXPECT_NE(err.find("req_missing"), std::string::npos);
  EXPECT_FALSE(find_logged_request(t.dir.string() + "/none.jsonl", "req_abc", err));
  // A line above the limit is skipped, never held; a last line without a newline is read.
  std::string huge = "{\"request_id\":\"req_big\",\"pad\":\"" + std::string(kMaxLogLineBytes + 10, 'x') + "\"}\n";
  std::string log2 = t.write("big.jsonl", huge + "{\"request_id\":\"req_tail\",\"route\":\"t\"}");
  EXPECT_FALSE(find_logged_request(log2, "req_big", err));
  auto tail = find_logged_request(log2, "req_tail", err);
  ASSERT_TRUE(tail) << err;
  EXPECT_EQ(tail->route, "t");
}

TEST(AddCase, IntoEveryLayoutOfTests) {
  const std::string item = "- id: new\n  vars: {q: x}\n  assert:\n    - type: refusal\n";
  std::string err;
  // tests indented, followed by another key with a comment
  std::string a = "name: s\ntests:\n  - vars: {q: a}\n    assert: [{type: refusal}]\n\n# the gate\ngate:\n  categories:\n    all: {max_drop: 0.1}\n";
  std::string out = insert_case(a, item, err);
  EXPECT_EQ(out, "name: s\ntests:\n  - vars: {q: a}\n    assert: [{type: refusal}]\n  - id: new\n    vars: {q: x}\n"
                 "    assert:\n      - type: refusal\n\n# the gate\ngate:\n  categories:\n    all: {max_drop: 0.1}\n")
      << out;
  // tests at column 0, last key, no trailing newline
  std::string b = "name: s\ntests:\n- vars: {q: a}\n  assert: [{type: refusal}]";
  out = insert_case(b, item, err);
  EXPECT_EQ(out, "name: s\ntests:\n- vars: {q: a}\n  assert: [{type: refusal}]\n" + item);
  // no tests at all
  out = insert_case("name: s\ndatasets: []\n", item, err);
  EXPECT_EQ(out, "name: s\ndatasets: []\ntests:\n  - id: new\n    vars: {q: x}\n    assert:\n      - type: refusal\n");
  // flow style: refused
  EXPECT_EQ(insert_case("name: s\ntests: [{vars: {q: a}, assert: [{type: refusal}]}]\n", item, err), "");
  EXPECT_NE(err.find("block list"), std::string::npos);
}

TEST(AddCase, EndToEndKeepsTheSuiteLoadable) {
  TempDir t;
  t.write("requests.jsonl", kLog);
  std::string suite = t.write("suite.yaml",
                              "name: support\n# cases\ntests:\n  - description: first\n    vars: {product: a}\n"
                              "    assert:\n      - type: not-refusal\ngate:\n  categories:\n    target: {max_drop: 0.05}\n");
  AddCaseOptions o;
  o.suite_path = suite;
  o.request_id = "req_abc";
  o.expect = {"not-refusal", "icontains:refund", "latency:5000"};
  o.data_dir = t.dir.string();
  std::ostringstream out, err;
  ASSERT_EQ(add_case(o, out, err), 0) << err.str();
  EXPECT_NE(out.str().find("2 cases"), std::string::npos);
  std::string e;
  auto s = load_suite(suite, e);
  ASSERT_TRUE(s) << e;
  const Case& c = s->cases[1];
  EXPECT_EQ(c.id, "prod-req_abc");
  EXPECT_EQ(c.messages_json, "[{\"role\":\"user\",\"content\":\"Can I get a refund?\\nIt broke.\"}]");
  ASSERT_EQ(c.vars.size(), 2u);
  EXPECT_EQ(c.vars[1].second, "3");
  ASSERT_EQ(c.asserts.size(), 3u);
  EXPECT_TRUE(c.asserts[0].negate);
  EXPECT_EQ(c.asserts[1].value, "refund");
  EXPECT_EQ(*c.asserts[2].threshold, 5000);
  auto text = read_file(suite);
  EXPECT_NE(text->find("logged_response: |"), std::string::npos);
  EXPECT_NE(text->find("# cases"), std::string::npos);  // comments kept
  // Twice: refused. Without --expect, without a body, with a bad assertion: refused, file unchanged.
  std::ostringstream o2, e2;
  EXPECT_EQ(add_case(o, o2, e2), 1);
  EXPECT_NE(e2.str().find("already has"), std::string::npos);
  o.request_id = "req_nobody";
  EXPECT_EQ(add_case(o, o2, e2), 1);
  EXPECT_NE(e2.str().find("request_body"), std::string::npos);
  o.request_id = "req_str";
  o.expect = {};
  EXPECT_EQ(add_case(o, o2, e2), 1);
  o.expect = {"javascript:1"};
  EXPECT_EQ(add_case(o, o2, e2), 2);
  EXPECT_NE(e2.str().find("is unchanged"), std::string::npos);
  EXPECT_EQ(*read_file(suite), *text);
}

TEST(AddCase, TestsFromAReferencedYamlFile) {
  TempDir t;
  t.write("requests.jsonl", kLog);
  std::string cases = t.write("cases.yaml", "- vars: {q: a}\n  assert: [{type: refusal}]\n");
  std::string suite = t.write("suite.yaml", "name: s\ntests: file://cases.yaml\n");
  AddCaseOptions o;
  o.suite_path = suite;
  o.request_id = "req_str";
  o.expect = {"contains:hello"};
  o.category = "off-task";
  o.data_dir = t.dir.string();
  std::ostringstream out, err;
  ASSERT_EQ(add_case(o, out, err), 0) << err.str();
  std::string e;
  auto s = load_suite(suite, e);
  ASSERT_TRUE(s) << e;
  ASSERT_EQ(s->cases.size(), 2u);
  EXPECT_EQ(s->cases[1].category, "off-task");
  EXPECT_NE(read_file(cases)->find("prod-req_str"), std::string::npos);
}

}  // namespace
}  // namespace sluice::eval
