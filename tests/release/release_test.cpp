#include <gtest/gtest.h>
#include <simdjson.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>

#include "release/canonical.hpp"
#include "release/compiled.hpp"
#include "release/diff.hpp"
#include "release/manifest.hpp"
#include "release/template.hpp"

namespace sluice::release {

namespace fs = std::filesystem;

namespace {
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("sluice-rel-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  void write(const std::string& name, const std::string& content) const {
    fs::create_directories((path / name).parent_path());
    std::ofstream(path / name, std::ios::binary) << content;
  }
  static inline int counter = 0;
};

const char* kManifest = R"(route: bot
model: {upstream: up, id: model-2024-05-13}
prompt: {file: p.yaml, mode: prepend_system}
tools: [tool.json]
params: {temperature: 0.2, max_tokens: 100, stop: ["\n\n"]}
overridable: [max_tokens]
labels: {team: a}
)";
const char* kPrompt = "system: \"You help {{who}}.\"\n";
const char* kTool = R"({"type":"function","function":{"name":"calc","parameters":{"type":"object"}}})";

std::optional<Manifest> load(const TempDir& d, std::vector<std::string>& errors) {
  return load_manifest((d.path / "m.yaml").string(), errors);
}
}  // namespace

TEST(ReleaseId, SameContentSameIdAnywhere) {
  TempDir a, b;
  for (const TempDir* d : {&a, &b}) {
    d->write("m.yaml", kManifest);
    d->write("p.yaml", kPrompt);
    d->write("tool.json", kTool);
  }
  std::vector<std::string> errors;
  auto ma = load(a, errors), mb = load(b, errors);
  ASSERT_TRUE(ma && mb) << (errors.empty() ? "" : errors[0]);
  EXPECT_EQ(ma->id, mb->id);
  EXPECT_EQ(ma->id.size(), 12u);
  EXPECT_EQ(ma->id.substr(0, 4), "rel_");
  // Pinned golden value: the canonical form must not drift between versions or machines.
  EXPECT_EQ(to_json(ma->tuple).substr(0, 60), R"({"adapter":null,"index":null,"labels":{"team":"a"},"model":{)");
}

TEST(ReleaseId, AnyChangedByteIsANewRelease) {
  TempDir d;
  d.write("m.yaml", kManifest);
  d.write("p.yaml", kPrompt);
  d.write("tool.json", kTool);
  std::vector<std::string> errors;
  std::string base = load(d, errors)->id;
  d.write("p.yaml", std::string(kPrompt) + " ");
  EXPECT_NE(load(d, errors)->id, base);
  d.write("p.yaml", kPrompt);
  EXPECT_EQ(load(d, errors)->id, base);
  d.write("tool.json", std::string(kTool).replace(std::string(kTool).find("calc"), 4, "calx"));
  EXPECT_NE(load(d, errors)->id, base);
  d.write("tool.json", kTool);
  std::string m = kManifest;
  d.write("m.yaml", m.replace(m.find("0.2"), 3, "0.3"));
  EXPECT_NE(load(d, errors)->id, base);
  // Formatting that does not change meaning does not change the id.
  d.write("m.yaml", std::string(kManifest) + "\n# a comment\n");
  EXPECT_EQ(load(d, errors)->id, base);
}

TEST(Manifest, RejectsFloatingAliasesBrokenTemplatesAndUnknownKeys) {
  TempDir d;
  d.write("p.yaml", kPrompt);
  d.write("tool.json", kTool);
  std::vector<std::string> errors;
  d.write("m.yaml", "route: r\nmodel: {upstream: u, id: gpt-4o-latest}\n");
  EXPECT_FALSE(load(d, errors));
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(errors[0].find("floating"), std::string::npos);
  EXPECT_NE(errors[0].find("m.yaml:2:"), std::string::npos) << errors[0];
  errors.clear();
  d.write("m.yaml", "route: r\nmodel: {upstream: u, id: gpt-4o-latest, floating: true}\n");
  EXPECT_TRUE(load(d, errors));
  d.write("bad.yaml", "system: \"{{#items}}x{{/items}}\"\n");
  d.write("m.yaml", "route: r\nmodel: {upstream: u, id: m1}\nprompt: {file: bad.yaml}\n");
  errors.clear();
  EXPECT_FALSE(load(d, errors));
  d.write("m.yaml", "route: r\nmodel: {upstream: u, id: m1}\nprompts: x\n");
  errors.clear();
  EXPECT_FALSE(load(d, errors));
  EXPECT_NE(errors[0].find("unknown key 'prompts'"), std::string::npos);
}

TEST(Template, VariablesCommentsAndStrictMissing) {
  std::string err;
  auto t = Template::compile("Hi {{ name }}{{! note }}, {{{raw}}} & {{& amp}}!", err);
  ASSERT_TRUE(t) << err;
  EXPECT_EQ(t->variables(), (std::vector<std::string>{"name", "raw", "amp"}));
  std::string out, missing;
  EXPECT_TRUE(t->render({{"name", "Zoë \"<b>\""}, {"raw", "x"}, {"amp", "y"}}, out, missing));
  EXPECT_EQ(out, "Hi Zoë \"<b>\", x & y!");  // no HTML escaping: prompts are not HTML
  out.clear();
  EXPECT_FALSE(t->render({{"name", "a"}}, out, missing));
  EXPECT_EQ(missing, "raw");
  EXPECT_FALSE(Template::compile("{{unclosed", err));
  EXPECT_FALSE(Template::compile("{{> partial}}", err));
}

TEST(Render, PrependsPromptPinsModelAppliesParamsAndStripsVars) {
  TempDir d;
  d.write("m.yaml", kManifest);
  d.write("p.yaml", kPrompt);
  d.write("tool.json", kTool);
  std::vector<std::string> errors;
  auto m = load(d, errors);
  ASSERT_TRUE(m);
  std::string err;
  auto c = compile(m->id, to_json(m->tuple), [&](const std::string& h) -> std::optional<std::string> {
    for (const auto& b : m->blobs)
      if (b.sha256 == h) return b.content;
    return std::nullopt;
  }, err);
  ASSERT_TRUE(c) << err;
  simdjson::dom::parser p;
  std::string body = R"({"model":"bot","messages":[{"role":"user","content":"hi"}],"max_tokens":7,"temperature":1.5,)"
                     R"("vars":{"who":"Ana \"the\"\nfirst ✓"},"x":1})";
  auto e = render(*c, body, "", p);
  ASSERT_FALSE(e) << e->message;
  simdjson::dom::element doc;
  ASSERT_FALSE(p.parse(body).get(doc)) << body;
  EXPECT_EQ(std::string_view(doc["model"]), "model-2024-05-13");
  EXPECT_EQ(std::string_view(doc["messages"].at(0)["content"]), "You help Ana \"the\"\nfirst ✓.");
  EXPECT_EQ(std::string_view(doc["messages"].at(1)["content"]), "hi");
  EXPECT_EQ(int64_t(doc["max_tokens"]), 7);       // overridable: the caller's value stays
  EXPECT_EQ(double(doc["temperature"]), 0.2);     // pinned
  EXPECT_EQ(doc["vars"].error(), simdjson::NO_SUCH_FIELD);
  EXPECT_EQ(std::string_view(doc["tools"].at(0)["function"]["name"]), "calc");
  EXPECT_EQ(int64_t(doc["x"]), 1);

  std::string no_vars = R"({"model":"bot","messages":[{"role":"user","content":"hi"}]})";
  auto missing = render(*c, no_vars, "", p);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 400);
  EXPECT_EQ(missing->code, "missing_variable");
  EXPECT_EQ(missing->param, "vars.who");
  EXPECT_FALSE(render(*c, no_vars, R"({"who":"header"})", p));
}

TEST(Diff, FieldsAndPromptLines) {
  auto a = from_json(R"({"model":{"id":"a"},"prompt":{"hash":"h1"},"labels":{}})");
  auto b = from_json(R"({"model":{"id":"b"},"prompt":{"hash":"h2"},"labels":{"x":"1"}})");
  std::string out = diff(*a, *b, [](const std::string& h) -> std::optional<std::string> {
    return h == "h1" ? "line one\nline two\n" : "line one\nline 2\n";
  });
  EXPECT_NE(out.find("~ model.id: \"a\" -> \"b\""), std::string::npos) << out;
  EXPECT_NE(out.find("- line two"), std::string::npos) << out;
  EXPECT_NE(out.find("+ line 2"), std::string::npos) << out;
  EXPECT_NE(out.find("+ labels.x"), std::string::npos) << out;
  EXPECT_EQ(diff(*a, *a, nullptr), "no differences\n");
}

TEST(Canonical, YamlTypesAndKeyOrder) {
  auto v = from_yaml(YAML::Load("b: 1.50\na: '1.5'\nc: [true, null, x]\n"));
  EXPECT_EQ(to_json(v), R"({"a":"1.5","b":1.5,"c":[true,null,"x"]})");
}

}  // namespace sluice::release
