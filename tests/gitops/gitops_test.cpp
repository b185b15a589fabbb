// The declared state against a real SQLite store: diff is what apply does, apply is
// idempotent, bad files and literal secrets are refused whole, --prune removes what the files
// fully own, and the apply lease serializes applies.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/clock.hpp"
#include "core/crypto.hpp"
#include "gitops/documents.hpp"
#include "gitops/plan.hpp"
#include "store/store.hpp"

namespace sluice::gitops {
namespace {

namespace fs = std::filesystem;

class Gitops : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-gitops-test-XXXXXX";
    root = mkdtemp(tmpl);
    fs::create_directories(root / "state");
    std::string err;
    s = store::open_sqlite((root / "sluice.db").string(), err);
    ASSERT_TRUE(s) << err;
    for (const char* id : {"rel_aaa111", "rel_bbb222"}) {
      store::ReleaseRecord r;
      r.id = id;
      r.full_hash = std::string(id) + "-full";
      r.route = "chat";
      r.tuple = "{}";
      r.created_by = "test";
      bool created = false;
      ASSERT_TRUE(s->create_release(r, {}, created).ok());
    }
    ASSERT_TRUE(s->promote("chat", "rel_aaa111", "test", "setup").ok());
    setenv("GITOPS_TEST_KEY", "sk-test-0123456789abcdef", 1);
  }
  void TearDown() override {
    s.reset();
    fs::remove_all(root);
  }
  void write(const std::string& name, const std::string& text) {
    fs::create_directories((root / "state" / name).parent_path());
    std::ofstream(root / "state" / name, std::ios::binary) << text;
  }
  // The plan for the files now; no errors expected.
  Plan plan(bool prune = false) {
    std::vector<std::string> errors;
    Desired d = load_dir((root / "state").string(), errors);
    Plan p;
    if (errors.empty()) p = make_plan(*s, d, prune, errors);
    EXPECT_TRUE(errors.empty()) << errors.front();
    return p;
  }
  std::vector<std::string> errors_of() {
    std::vector<std::string> errors;
    Desired d = load_dir((root / "state").string(), errors);
    if (errors.empty()) make_plan(*s, d, false, errors);
    return errors;
  }
  fs::path root;
  std::unique_ptr<store::Store> s;
};

const char* kState = R"(kind: RoutePolicy
name: chat
spec:
  require_approval_above: 50
  eval_suite: smoke
---
kind: RouteRelease
name: chat
spec:
  stable: rel_bbb222
---
kind: Flag
name: new-prompt
spec:
  state: ENABLED
  variants: {on: true, off: false}
  defaultVariant: off
)";

const char* kTenant = R"(kind: Tenant
name: acme
spec:
  rpm: 600
  tier: standard
  keys:
    - key_ref: env:GITOPS_TEST_KEY
      label: ci
)";

TEST_F(Gitops, DiffIsWhatApplyDoesAndASecondApplyChangesNothing) {
  write("routes.yaml", kState);
  write("tenants/acme.yml", kTenant);
  Plan p = plan();
  EXPECT_EQ(summary(p), "Plan: 3 to create, 1 to change, 0 to remove.");
  const std::string text = render(p);
  EXPECT_NE(text.find("~ RouteRelease chat"), std::string::npos) << text;
  EXPECT_NE(text.find("stable: \"rel_aaa111\" -> \"rel_bbb222\""), std::string::npos) << text;
  EXPECT_NE(text.find("+ Tenant acme"), std::string::npos) << text;
  EXPECT_EQ(text.find("sk-test-0123456789abcdef"), std::string::npos) << "the secret never shows";

  Applied a = apply_plan(*s, p, "alice", "test at git abc");
  ASSERT_TRUE(a.ok()) << a.error;
  EXPECT_EQ(a.done.size(), p.changes.size());
  EXPECT_EQ(s->get_route("chat")->stable_release, "rel_bbb222");
  EXPECT_EQ(s->get_route_policy("chat")->require_approval_above, 50);
  EXPECT_EQ(s->get_route_policy("chat")->eval_suite, "smoke");
  ASSERT_TRUE(s->get_flag("new-prompt"));
  auto keys = s->list_api_keys("acme");
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].key_sha256, sha256_hex("sk-test-0123456789abcdef"));
  bool audited = false;
  for (const auto& e : s->list_audit(50)) audited = audited || (e.actor == "alice" && e.reason == "test at git abc");
  EXPECT_TRUE(audited);

  Plan again = plan();
  EXPECT_TRUE(again.empty()) << render(again);
  EXPECT_EQ(summary(again), "Plan: 0 to create, 0 to change, 0 to remove.");

  // Drift: a change made outside the files shows as a field-level change back.
  store::RoutePolicy pol = *s->get_route_policy("chat");
  pol.require_approval_above = 80;
  ASSERT_TRUE(s->set_route_policy(pol, "by hand").ok());
  Plan drift = plan();
  ASSERT_EQ(drift.changes.size(), 1u);
  EXPECT_NE(render(drift).find("require_approval_above: 80 -> 50"), std::string::npos) << render(drift);
}

TEST_F(Gitops, ABadFileIsRefusedWithFileLineColumnAndNothingApplies) {
  write("a.yaml", kState);
  write("b.yaml", "kind: Flag\nname: broken\nspec:\n  state: ENABLED\n  variants: {on: true}\n  defaultVariant: nope\n");
  write("c.yaml", "kind: RoutePolicy\nname: chat\nspec:\n  require_approval_above: [1\n");
  auto errors = errors_of();
  ASSERT_EQ(errors.size(), 2u);
  const std::string b = (root / "state" / "b.yaml").string(), c = (root / "state" / "c.yaml").string();
  EXPECT_EQ(errors[0], b + ":6:19: flags.broken: defaultVariant 'nope' is not one of its variants");
  EXPECT_EQ(errors[1].rfind(c + ":5:1:", 0), 0u) << errors[1];
  EXPECT_EQ(s->get_route("chat")->stable_release, "rel_aaa111");

  // A release that is not in the store, found when planning.
  write("b.yaml", "");
  write("c.yaml", "kind: RouteRelease\nname: other\nspec:\n  stable: rel_missing\n");
  errors = errors_of();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].rfind(c + ":1:1: RouteRelease other: no release 'rel_missing'", 0), 0u) << errors[0];
}

TEST_F(Gitops, LiteralSecretsAreRefused) {
  write("t.yaml", "kind: Tenant\nname: acme\nspec:\n  keys:\n    - key: sk-sluice-literal-secret-value\n");
  auto errors = errors_of();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("t.yaml:5:7: a literal secret is refused"), std::string::npos) << errors[0];
  write("t.yaml", "kind: Tenant\nname: acme\nspec:\n  keys:\n    - key_ref: sk-sluice-literal-secret-value\n");
  errors = errors_of();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("t.yaml:5:16: a literal secret is refused"), std::string::npos) << errors[0];
  write("t.yaml", "kind: Tenant\nname: acme\nspec:\n  api_key: sk-sluice-literal\n");
  errors = errors_of();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("a literal secret is refused"), std::string::npos) << errors[0];
  write("t.yaml", "kind: Tenant\nname: acme\nspec:\n  keys:\n    - key_ref: env:GITOPS_TEST_UNSET_VARIABLE\n");
  errors = errors_of();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("environment variable is not set"), std::string::npos) << errors[0];
}

TEST_F(Gitops, PruneRemovesOnlyWhatTheFilesOwn) {
  write("a.yaml", kState);
  ASSERT_TRUE(apply_plan(*s, plan(), "alice", "r").ok());
  // Things made by hand: a flag, a kill switch, a policy of another route.
  ASSERT_TRUE(s->write_flags({{"hand-made", R"({"state":"ENABLED","variants":{"on":true},"defaultVariant":"on"})", "bob", 0, 0, 0},
                              {"kill.rollouts", R"({"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"on"})", "bob", 0, 0, 0}},
                             {}, {})
                  .ok());
  store::ReleaseRecord r;
  r.id = "rel_ccc333";
  r.full_hash = "c";
  r.route = "search";
  r.tuple = "{}";
  bool created = false;
  ASSERT_TRUE(s->create_release(r, {}, created).ok());
  store::RoutePolicy pol;
  pol.route = "search";
  pol.require_approval_above = 10;
  ASSERT_TRUE(s->set_route_policy(pol, "by hand").ok());

  EXPECT_TRUE(plan(false).empty()) << "without --prune nothing is removed";
  Plan p = plan(true);
  EXPECT_EQ(summary(p), "Plan: 0 to create, 0 to change, 2 to remove.") << render(p);
  EXPECT_NE(render(p).find("- Flag hand-made"), std::string::npos);
  EXPECT_NE(render(p).find("- RoutePolicy search"), std::string::npos);
  ASSERT_TRUE(apply_plan(*s, p, "alice", "prune").ok());
  EXPECT_FALSE(s->get_flag("hand-made"));
  EXPECT_TRUE(s->get_flag("kill.rollouts")) << "kill switches are never pruned";
  EXPECT_EQ(s->get_route_policy("search")->require_approval_above, store::kDefaultApprovalAbove);
  EXPECT_TRUE(plan(true).empty()) << render(plan(true));
}

TEST_F(Gitops, DeclaredKeysAreOwnedOnlyWithPruneAndEvidenceRequirementsRoundTrip) {
  write("t.yaml", std::string(kTenant) +
                      "---\nkind: RoutePolicy\nname: chat\nspec:\n  evidence_environment: staging\n"
                      "  evidence_suites: [gsm8k, smoke]\n");
  ASSERT_TRUE(apply_plan(*s, plan(), "alice", "r").ok());
  auto pol = s->get_route_policy("chat");
  ASSERT_TRUE(pol);
  EXPECT_EQ(pol->evidence_environment, "staging");
  EXPECT_EQ(pol->evidence_suites, (std::vector<std::string>{"gsm8k", "smoke"}));
  store::ApiKeyRecord extra;
  extra.id = "key_byhand";
  extra.tenant = "acme";
  extra.key_sha256 = sha256_hex("sk-made-by-hand-0123456789");
  extra.prefix = "sk-made";
  extra.created_by = "bob";
  ASSERT_TRUE(s->create_api_key(extra, "by hand").ok());
  EXPECT_TRUE(plan(false).empty()) << render(plan(false));
  Plan p = plan(true);
  ASSERT_EQ(p.changes.size(), 1u) << render(p);
  EXPECT_EQ(p.changes[0].revoke_key_ids, std::vector<std::string>{"key_byhand"});
  ASSERT_TRUE(apply_plan(*s, p, "alice", "prune").ok());
  EXPECT_NE(s->get_api_key("key_byhand")->revoked_at, 0);
  EXPECT_EQ(s->list_api_keys("acme").size(), 2u);
  EXPECT_TRUE(plan(true).empty()) << render(plan(true));
  // A key whose secret changed is a new key; the old one stays until pruned.
  setenv("GITOPS_TEST_KEY", "sk-test-rotated-0123456789", 1);
  Plan rotated = plan(false);
  ASSERT_EQ(rotated.changes.size(), 1u);
  EXPECT_EQ(rotated.changes[0].new_keys.size(), 1u);
  EXPECT_TRUE(rotated.changes[0].revoke_key_ids.empty());
}

TEST_F(Gitops, TheApplyLeaseHasOneHolder) {
  auto first = std::make_unique<ApplyLease>(*s, 0);
  ASSERT_TRUE(first->held());
  ApplyLease second(*s, 0);
  EXPECT_FALSE(second.held());
  EXPECT_FALSE(second.other().empty());
  first.reset();
  auto third = std::make_unique<ApplyLease>(*s, 0);
  EXPECT_TRUE(third->held());
  third.reset();
  // An apply of this host that died holding it (no such process) does not block the next.
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  const std::string dead = std::string("apply:") + host + ":2147483600:x";
  ASSERT_TRUE(s->acquire_lease(kApplyLease, dead, 600000, unix_millis()).held);
  ApplyLease fourth(*s, 0);
  EXPECT_TRUE(fourth.held());
}

}  // namespace
}  // namespace sluice::gitops

namespace sluice::gitops {
namespace {

// One transaction: a write the store refuses at apply time (here the promote of a route that
// a rollout started on since the plan was made) leaves nothing of the plan behind: not the
// policy written before it, not the gitops.apply audit entry.
TEST_F(Gitops, ARefusedWriteRollsBackTheWholePlan) {
  write("chat.yaml", kState);
  Plan p = plan();
  ASSERT_FALSE(p.empty());
  store::RolloutRecord r;
  r.id = "ro_1";
  r.route = "chat";
  r.stable_release = "rel_aaa111";
  r.candidate_release = "rel_bbb222";
  r.spec = "{}";
  r.state = "{\"new\":true}";
  r.created_by = "someone";
  ASSERT_TRUE(s->create_rollout(r, "started by hand").ok());
  const size_t audit_before = s->list_audit(1000).size();
  Applied a = apply_plan(*s, p, "ci", "test");
  EXPECT_FALSE(a.ok());
  EXPECT_NE(a.error.find("RouteRelease chat"), std::string::npos) << a.error;
  EXPECT_TRUE(a.done.empty());
  EXPECT_FALSE(s->get_route_policy("chat")) << "the policy written before the refusal was rolled back";
  EXPECT_EQ(s->get_route("chat")->stable_release, "rel_aaa111");
  EXPECT_EQ(s->list_audit(1000).size(), audit_before);
  // Once the rollout is gone the same plan applies whole.
  auto ro = s->get_rollout("ro_1");
  ASSERT_TRUE(ro);
  ro->status = "aborted";
  ASSERT_TRUE(s->update_rollout(*ro, false, nullptr).ok());
  EXPECT_TRUE(apply_plan(*s, plan(), "ci", "test").ok());
  EXPECT_TRUE(s->get_route_policy("chat"));
}

}  // namespace
}  // namespace sluice::gitops
