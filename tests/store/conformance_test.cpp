// The store conformance suite: every backend runs the same tests, SQLite and PostgreSQL
// (a real server started for this process by scripts/pg-test-server.sh, one database per test).
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <csignal>
#include <thread>
#include <fstream>
#include <atomic>
#include <functional>

#include "store/store.hpp"

namespace sluice::store {

namespace fs = std::filesystem;

struct Backend {
  const char* name;
  std::function<std::unique_ptr<Store>(const std::string& dir)> open;
};

// The PostgreSQL server of this test process: started on first use, stopped at exit.
struct PgServer {
  std::string dir, port, error;
  PgServer() {
    dir = (fs::temp_directory_path() / ("sluice-pg-" + std::to_string(::getpid()))).string();
    std::string script = std::string(SLUICE_SOURCE_DIR) + "/scripts/pg-test-server.sh";
    std::string cmd = script + " start " + dir + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    char buf[512];
    std::string out;
    while (p && fgets(buf, sizeof buf, p)) out += buf;
    int rc = p ? pclose(p) : -1;
    if (rc != 0) error = "PostgreSQL did not start: " + out;
    else port = out.substr(0, out.find('\n'));
  }
  ~PgServer() {
    std::string cmd = std::string(SLUICE_SOURCE_DIR) + "/scripts/pg-test-server.sh stop " + dir;
    if (std::system(cmd.c_str()) == 0) fs::remove_all(dir);
  }
  // A database per test directory (two opens of one dir share it, as two SQLite
  // connections to one file do).
  std::string url_for(const std::string& test_dir) {
    std::string db = "t_" + fs::path(test_dir).filename().string();
    for (char& c : db)
      if (!isalnum(static_cast<unsigned char>(c))) c = '_';
    std::string cmd = "psql -q -h 127.0.0.1 -p " + port + " -U postgres -d postgres -c 'CREATE DATABASE " + db +
                      "' >/dev/null 2>&1";
    (void)std::system(cmd.c_str());  // "already exists" on the second open
    return "postgresql://postgres@127.0.0.1:" + port + "/" + db;
  }
};
PgServer& pg_server() {
  static PgServer server;
  return server;
}

const Backend kBackends[] = {
    {"sqlite",
     [](const std::string& dir) {
       std::string err;
       auto s = open_sqlite(dir + "/sluice.db", err);
       EXPECT_TRUE(s) << err;
       return s;
     }},
    {"postgres",
     [](const std::string& dir) {
       std::string err;
       auto s = open_postgres(pg_server().url_for(dir), err);
       EXPECT_TRUE(s) << err;
       return s;
     }},
};

class StoreConformance : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    dir = (fs::temp_directory_path() / ("sluice-store-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(++counter)))
              .string();
    fs::create_directories(dir);
    if (std::string(GetParam().name) == "postgres" && !pg_server().error.empty()) GTEST_SKIP() << pg_server().error;
    s = GetParam().open(dir);
    ASSERT_TRUE(s);
  }
  void TearDown() override {
    s.reset();
    fs::remove_all(dir);
  }
  ReleaseRecord rel(const std::string& id, const std::string& route = "bot") {
    ReleaseRecord r;
    r.id = id;
    r.full_hash = id + "-full";
    r.route = route;
    r.tuple = "{\"route\":\"" + route + "\",\"id\":\"" + id + "\"}";
    r.created_by = "test";
    return r;
  }
  // Route "bot" on rel_a and an active rollout "ro_1" to rel_b.
  void start_canary() {
    bool created = false;
    ASSERT_TRUE(s->create_release(rel("rel_a"), {}, created).ok());
    ASSERT_TRUE(s->create_release(rel("rel_b"), {}, created).ok());
    ASSERT_TRUE(s->promote("bot", "rel_a", "t", "").ok());
    RolloutRecord r;
    r.id = "ro_1";
    r.route = "bot";
    r.stable_release = "rel_a";
    r.candidate_release = "rel_b";
    r.spec = "{}";
    r.state = "{\"new\":true}";
    r.created_by = "t";
    ASSERT_TRUE(s->create_rollout(r, "why").ok());
  }
  std::string dir;
  std::unique_ptr<Store> s;
  static inline int counter = 0;
};

TEST_P(StoreConformance, ReleasesAreIdempotentAndImmutable) {
  bool created = false;
  ASSERT_TRUE(s->create_release(rel("rel_a"), {{"h1", "blob one"}}, created).ok());
  EXPECT_TRUE(created);
  ASSERT_TRUE(s->create_release(rel("rel_a"), {{"h1", "blob one"}}, created).ok());
  EXPECT_FALSE(created);
  ReleaseRecord clash = rel("rel_a");
  clash.full_hash = "other";
  EXPECT_FALSE(s->create_release(clash, {}, created).ok());
  auto got = s->get_release("rel_a");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->tuple, rel("rel_a").tuple);
  EXPECT_EQ(*s->get_blob("h1"), "blob one");
  EXPECT_FALSE(s->get_blob("nope"));
  EXPECT_EQ(s->list_releases().size(), 1u);
}

TEST_P(StoreConformance, PrefixLookupMustBeUnique) {
  bool c;
  s->create_release(rel("rel_abc111"), {}, c);
  s->create_release(rel("rel_abc222"), {}, c);
  EXPECT_TRUE(s->get_release("rel_abc1"));
  EXPECT_FALSE(s->get_release("rel_abc"));  // ambiguous
  EXPECT_FALSE(s->get_release("rel"));      // too short to be a prefix
}

TEST_P(StoreConformance, PromoteRollbackHistoryAndAudit) {
  bool c;
  for (auto id : {"rel_1", "rel_2", "rel_3"}) s->create_release(rel(id), {}, c);
  s->create_release(rel("rel_x", "other"), {}, c);
  EXPECT_FALSE(s->rollback("bot", "ops", "").ok());  // nothing to roll back
  EXPECT_TRUE(s->promote("bot", "rel_1", "ops", "first").ok());
  EXPECT_FALSE(s->rollback("bot", "ops", "").ok());  // no previous
  EXPECT_TRUE(s->promote("bot", "rel_2", "ops", "").ok());
  EXPECT_TRUE(s->promote("bot", "rel_3", "ops", "").ok());
  EXPECT_FALSE(s->promote("bot", "rel_x", "ops", "").ok());  // another route's release
  EXPECT_FALSE(s->promote("bot", "rel_missing", "ops", "").ok());
  auto out = s->rollback("bot", "alice", "bad answers");
  ASSERT_TRUE(out.ok()) << out.error;
  EXPECT_EQ(out.before, "rel_3");
  EXPECT_EQ(out.after, "rel_2");
  EXPECT_EQ(s->get_route("bot")->stable_release, "rel_2");
  auto hist = s->route_history("bot");
  ASSERT_EQ(hist.size(), 4u);
  EXPECT_EQ(hist.back().action, "rollback");
  EXPECT_EQ(hist.back().actor, "alice");
  auto audit = s->list_audit(10);
  ASSERT_FALSE(audit.empty());
  EXPECT_EQ(audit.front().action, "route.rollback");
  EXPECT_EQ(audit.front().before, "rel_3");
  EXPECT_EQ(audit.front().after, "rel_2");
  EXPECT_EQ(audit.front().reason, "bad answers");
}

// Repeated rollbacks walk back through history: a rolled-back release is never deployed
// again by a rollback (issue 17), until an operator promotes it again on purpose.
TEST_P(StoreConformance, RepeatedRollbacksWalkBackToTheLastKnownGood) {
  bool c;
  for (auto id : {"rel_1", "rel_2", "rel_3"}) s->create_release(rel(id), {}, c);
  ASSERT_TRUE(s->promote("bot", "rel_1", "ops", "").ok());
  ASSERT_TRUE(s->promote("bot", "rel_2", "ops", "").ok());
  ASSERT_TRUE(s->promote("bot", "rel_3", "ops", "").ok());
  auto first = s->rollback("bot", "alice", "v3 refuses");
  ASSERT_TRUE(first.ok()) << first.error;
  EXPECT_EQ(first.after, "rel_2");
  auto second = s->rollback("bot", "bob", "v2 too");
  ASSERT_TRUE(second.ok()) << second.error;
  EXPECT_EQ(second.before, "rel_2");
  EXPECT_EQ(second.after, "rel_1");  // not rel_3, which the first rollback removed
  EXPECT_EQ(s->get_route("bot")->stable_release, "rel_1");
  auto audit = s->list_audit(1);
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit.front().action, "route.rollback");
  EXPECT_NE(audit.front().reason.find("v2 too"), std::string::npos);
  EXPECT_NE(audit.front().reason.find("skipped rel_3"), std::string::npos) << audit.front().reason;
  EXPECT_NE(audit.front().reason.find("alice"), std::string::npos) << audit.front().reason;
  // Nothing known good before rel_1: refused, and the route stays where it is.
  auto third = s->rollback("bot", "carol", "");
  EXPECT_FALSE(third.ok());
  EXPECT_NE(third.error.find("known good"), std::string::npos) << third.error;
  EXPECT_EQ(s->get_route("bot")->stable_release, "rel_1");
  // Promoting a rolled-back release on purpose clears its mark.
  ASSERT_TRUE(s->promote("bot", "rel_3", "ops", "fixed upstream").ok());
  auto fourth = s->rollback("bot", "dave", "");
  ASSERT_TRUE(fourth.ok()) << fourth.error;
  EXPECT_EQ(fourth.after, "rel_1");  // rel_2 is still marked
}

TEST_P(StoreConformance, ChangeCounterSeesOtherConnections) {
  uint64_t before = s->change_counter();
  auto other = GetParam().open(dir);
  bool c;
  other->create_release(rel("rel_from_other"), {}, c);
  // A networked store learns of it by notification: within the propagation bound (1 s).
  for (int i = 0; i < 100 && s->change_counter() == before; ++i) usleep(10000);
  EXPECT_NE(s->change_counter(), before);
  EXPECT_TRUE(s->get_release("rel_from_other"));
}

// kill -9 at an arbitrary moment never loses a change the store reported as committed.
TEST_P(StoreConformance, SurvivesKillNineWithoutLosingCommits) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    auto child = GetParam().open(dir);
    bool c;
    for (int i = 0;; ++i) {
      std::string id = "rel_k" + std::to_string(i);
      child->create_release(rel(id), {{"b" + std::to_string(i), "x"}}, c);
      if (!child->promote("bot", id, "child", "").ok()) _exit(3);
      // Report only after the commit returned.
      if (write(fds[1], &i, sizeof i) != sizeof i) _exit(4);
    }
  }
  close(fds[1]);
  // Kill mid-stream: after the child reported its first commit (opening a networked store
  // under a sanitizer can take longer than any fixed delay), then a little later.
  int last = -1, v;
  pollfd pfd{fds[0], POLLIN, 0};
  if (poll(&pfd, 1, 30000) == 1 && read(fds[0], &v, sizeof v) == sizeof v) last = v;
  usleep(100000);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  while (read(fds[0], &v, sizeof v) == sizeof v) last = v;
  close(fds[0]);
  ASSERT_GE(last, 0) << "the child committed nothing";
  auto reopened = GetParam().open(dir);
  for (int i = 0; i <= last; ++i) ASSERT_TRUE(reopened->get_release("rel_k" + std::to_string(i))) << i;
  auto route = reopened->get_route("bot");
  ASSERT_TRUE(route);
  int stable = std::atoi(route->stable_release.substr(5).c_str());
  EXPECT_GE(stable, last);  // the last reported promote (or a later one) survived
  EXPECT_GE(reopened->route_history("bot").size(), static_cast<size_t>(last + 1));
}

// The PostgreSQL server itself killed with -9 mid-write (the machine's crash, as the server
// sees it): after crash recovery every commit the store reported is there, and the store
// reconnects by itself.
TEST(PostgresCrash, ServerKillNineLosesNoReportedCommit) {
  const std::string script = std::string(SLUICE_SOURCE_DIR) + "/scripts/pg-test-server.sh";
  const std::string dir = (fs::temp_directory_path() / ("sluice-pgcrash-" + std::to_string(::getpid()))).string();
  auto run = [](const std::string& cmd) {
    std::string out;
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    char buf[512];
    while (p && fgets(buf, sizeof buf, p)) out += buf;
    const int rc = p ? pclose(p) : -1;
    return std::make_pair(rc, out);
  };
  auto [rc, port] = run(script + " start " + dir);
  if (rc != 0) GTEST_SKIP() << "PostgreSQL did not start: " << port;
  port = port.substr(0, port.find('\n'));
  (void)run("psql -q -h 127.0.0.1 -p " + port + " -U postgres -d postgres -c 'CREATE DATABASE crash'");
  const std::string url = "postgresql://postgres@127.0.0.1:" + port + "/crash";
  std::string err;
  auto s = open_postgres(url, err);
  ASSERT_TRUE(s) << err;
  ReleaseRecord r;
  r.route = "bot";
  r.created_by = "test";
  std::atomic<int> reported{-1};
  std::thread killer([&] {
    usleep(400000);
    std::ifstream pidfile(dir + "/data/postmaster.pid");
    pid_t pm = 0;
    pidfile >> pm;
    if (pm > 0) kill(pm, SIGKILL);
  });
  for (int i = 0; i < 100000; ++i) {
    r.id = "rel_c" + std::to_string(i);
    r.full_hash = r.id + "-full";
    r.tuple = "{\"i\":" + std::to_string(i) + "}";
    bool created = false;
    try {
      if (!s->create_release(r, {{"b" + std::to_string(i), "x"}}, created).ok()) break;
      if (!s->promote("bot", r.id, "t", "").ok()) break;
    } catch (const std::exception&) {
      break;  // the server is gone: what was reported so far must survive
    }
    reported = i;
  }
  killer.join();
  ASSERT_GE(reported.load(), 0) << "nothing committed before the kill";
  std::printf("# %d promotes reported before the server was killed\n", reported.load() + 1);
  EXPECT_FALSE(s->connected());
  auto [rc2, out2] = run(script + " restart " + dir);
  ASSERT_EQ(rc2, 0) << out2;
  // The same store object reconnects (at most once a second) and sees every reported commit.
  bool back = false;
  for (int t = 0; t < 50 && !back; ++t) {
    usleep(100000);
    s->external_change_counter();
    back = s->connected();
  }
  ASSERT_TRUE(back) << "the store did not reconnect";
  for (int i = 0; i <= reported.load(); ++i) ASSERT_TRUE(s->get_release("rel_c" + std::to_string(i))) << i;
  auto route = s->get_route("bot");
  ASSERT_TRUE(route);
  EXPECT_GE(std::atoi(route->stable_release.substr(5).c_str()), reported.load());
  (void)run(script + " stop " + dir);
  fs::remove_all(dir);
}

TEST_P(StoreConformance, RolloutsAreOnePerRouteWithCompareAndSet) {
  ASSERT_NO_FATAL_FAILURE(start_canary());
  bool created = false;
  ASSERT_TRUE(s->create_release(rel("rel_x", "other"), {}, created).ok());
  const RolloutRecord r = *s->get_rollout("ro_1");
  RolloutRecord again = r;
  again.id = "ro_2";
  EXPECT_FALSE(s->create_rollout(again, "").ok()) << "one active rollout per route";
  RolloutRecord wrong = r;
  wrong.id = "ro_3";
  wrong.route = "other";
  wrong.stable_release = "rel_x";
  EXPECT_FALSE(s->create_rollout(wrong, "").ok()) << "the candidate belongs to another route";
  // While it runs, the route's stable release changes only through the rollout.
  EXPECT_FALSE(s->promote("bot", "rel_b", "t", "").ok());
  EXPECT_FALSE(s->rollback("bot", "t", "").ok());

  auto a = s->get_rollout("ro_1");
  ASSERT_TRUE(a);
  auto b = *a;
  a->state = "{\"step\":1}";
  ASSERT_TRUE(s->update_rollout(*a, false, nullptr).ok());
  b.state = "{\"step\":9}";
  EXPECT_EQ(s->update_rollout(b, false, nullptr).error, "conflict") << "a stale version must not win";
  EXPECT_EQ(s->get_rollout("ro_1")->state, "{\"step\":1}");

  ASSERT_TRUE(s->add_rollout_command({0, "ro_1", "pause", "alice", "look", 0}).ok());
  ASSERT_TRUE(s->add_rollout_command({0, "ro_1", "resume", "alice", "", 0}).ok());
  auto cmds = s->pending_rollout_commands("ro_1");
  ASSERT_EQ(cmds.size(), 2u);
  EXPECT_EQ(cmds[0].command, "pause");
  s->mark_rollout_command_applied(cmds[0].seq);
  EXPECT_EQ(s->pending_rollout_commands("ro_1").size(), 1u);
  s->append_rollout_event({0, "ro_1", 0, "step", "{\"message\":\"x\"}"});
  EXPECT_EQ(s->rollout_events("ro_1", 0).size(), 1u);

  // Completing promotes the candidate in the same transaction; then the route is free again.
  a->status = "completed";
  AuditEntry done{0, 0, "rollout-controller", "rollout.complete", "bot", "rel_a", "rel_b", "", "ok"};
  ASSERT_TRUE(s->update_rollout(*a, true, &done).ok());
  EXPECT_EQ(s->get_route("bot")->stable_release, "rel_b");
  EXPECT_FALSE(s->active_rollout("bot"));
  EXPECT_FALSE(s->add_rollout_command({0, "ro_1", "pause", "alice", "", 0}).ok()) << "not active any more";
  EXPECT_TRUE(s->rollback("bot", "t", "").ok());
  EXPECT_EQ(s->list_rollouts("bot", false).size(), 1u);
}

// One rollout controller at a time: a lease with a fencing token.
TEST_P(StoreConformance, LeasesHaveOneHolderAndFenceStaleWriters) {
  ASSERT_NO_FATAL_FAILURE(start_canary());
  auto other = GetParam().open(dir);  // a second replica

  Lease a = s->acquire_lease("ctl", "A", 5000, 1000);
  ASSERT_TRUE(a.held);
  EXPECT_EQ(a.token, 1);
  Lease b = other->acquire_lease("ctl", "B", 5000, 2000);
  EXPECT_FALSE(b.held) << "A holds it until 6000";
  EXPECT_EQ(b.holder, "A");
  Lease a2 = s->acquire_lease("ctl", "A", 5000, 4000);
  ASSERT_TRUE(a2.held);
  EXPECT_EQ(a2.token, 1) << "a renewal keeps the token";
  EXPECT_EQ(a2.expires_ms, 9000);
  EXPECT_FALSE(other->acquire_lease("ctl", "B", 5000, 8999).held);
  Lease b2 = other->acquire_lease("ctl", "B", 5000, 9001);  // A went silent: B takes over
  ASSERT_TRUE(b2.held);
  EXPECT_EQ(b2.token, 2);

  // A still believes it leads: its writes are refused, B's go through.
  Fence stale{"ctl", 1}, current{"ctl", 2};
  auto ro = s->get_rollout("ro_1");
  ASSERT_TRUE(ro);
  ro->state = "{\"step\":5}";
  std::vector<RolloutEvent> ev{{0, "ro_1", 0, "step", "{}"}};
  EXPECT_EQ(s->update_rollout(*ro, false, nullptr, &stale, &ev).error, "fenced");
  EXPECT_TRUE(s->rollout_events("ro_1", 0).empty()) << "a fenced decision leaves no event";
  ASSERT_TRUE(s->add_rollout_command({0, "ro_1", "pause", "alice", "", 0}).ok());
  auto cmds = s->pending_rollout_commands("ro_1");
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_FALSE(s->mark_rollout_command_applied(cmds[0].seq, &stale));
  EXPECT_EQ(s->pending_rollout_commands("ro_1").size(), 1u) << "the command waits for the real controller";
  auto ro_b = other->get_rollout("ro_1");
  ro_b->state = "{\"step\":1}";
  ASSERT_TRUE(other->update_rollout(*ro_b, false, nullptr, &current, &ev).ok());
  EXPECT_EQ(s->rollout_events("ro_1", 0).size(), 1u) << "the events come with the state, in one transaction";
  EXPECT_TRUE(other->mark_rollout_command_applied(cmds[0].seq, &current));
  EXPECT_EQ(s->get_rollout("ro_1")->state, "{\"step\":1}");

  // A clean shutdown lets the next replica in at once; a dead holder of this host can be replaced.
  other->release_lease("ctl", "B");
  Lease a3 = s->acquire_lease("ctl", "A", 5000, 9100);
  ASSERT_TRUE(a3.held);
  EXPECT_EQ(a3.token, 3);
  EXPECT_FALSE(other->acquire_lease("ctl", "B", 5000, 9200).held);
  Lease b3 = other->acquire_lease("ctl", "B", 5000, 9200, "A");
  ASSERT_TRUE(b3.held) << "A is known dead";
  EXPECT_EQ(b3.token, 4);
}

// Every replica publishes its own evidence; the rows are bookkeeping, not a change to republish.
TEST_P(StoreConformance, RolloutEvidenceRowsPerReplicaAreNotChanges) {
  ASSERT_NO_FATAL_FAILURE(start_canary());
  auto other = GetParam().open(dir);
  const uint64_t before = s->external_change_counter();
  other->put_rollout_evidence("ro_1", "r2", "{\"n\":1}", 10);
  other->put_rollout_evidence("ro_1", "r2", "{\"n\":2}", 20);  // replaced as it grows
  other->put_rollout_evidence("ro_1", "r3", "{\"n\":7}", 30);
  s->put_rollout_evidence("ro_1", "r1", "{\"n\":4}", 40);
  auto rows = s->list_rollout_evidence("ro_1");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], (std::pair<std::string, std::string>{"r1", "{\"n\":4}"}));
  EXPECT_EQ(rows[1], (std::pair<std::string, std::string>{"r2", "{\"n\":2}"}));
  EXPECT_EQ(rows[2].first, "r3");
  usleep(50000);
  EXPECT_EQ(s->external_change_counter(), before) << "evidence rows must not make replicas republish";
  // A change the snapshot shows still does.
  ASSERT_TRUE(other->add_rollout_command({0, "ro_1", "pause", "alice", "", 0}).ok());
  for (int i = 0; i < 100 && s->external_change_counter() == before; ++i) usleep(10000);
  EXPECT_NE(s->external_change_counter(), before);
}

TEST_P(StoreConformance, PassingEvalRunsAttachToTheReleaseAndPoliciesAreKept) {
  bool created = false;
  ASSERT_TRUE(s->create_release(rel("rel_a"), {}, created).ok());
  EvalRunRecord failed{"ev_1", "bot", "rel_a", "rel_0", "gsm8k", "h", "{}", "ci", false, 0};
  ASSERT_TRUE(s->record_eval_run(failed).ok());
  EXPECT_EQ(s->get_release("rel_a")->eval_pass_id, "");
  EvalRunRecord passed{"ev_2", "bot", "rel_a", "rel_0", "gsm8k", "h", "{}", "ci", true, 0};
  ASSERT_TRUE(s->record_eval_run(passed).ok());
  EXPECT_EQ(s->get_release("rel_a")->eval_pass_id, "ev_2");
  EXPECT_EQ(s->list_eval_runs("rel_a").size(), 2u);
  EXPECT_TRUE(s->get_eval_run("ev_2")->passed);
  // A run imported from another environment is evidence of that environment only: it keeps
  // its environment and never becomes this store's eval pass.
  ASSERT_TRUE(s->create_release(rel("rel_b"), {}, created).ok());
  EvalRunRecord imported{"ev_3", "bot", "rel_b", "rel_0", "smoke", "h", "{}", "ci", true, 1700000000000, "staging"};
  ASSERT_TRUE(s->record_eval_run(imported).ok());
  EXPECT_EQ(s->get_release("rel_b")->eval_pass_id, "");
  EXPECT_EQ(s->get_eval_run("ev_3")->environment, "staging");
  EXPECT_EQ(s->get_eval_run("ev_3")->created_at, 1700000000000);
  EXPECT_EQ(s->get_eval_run("ev_2")->environment, "");
  EXPECT_EQ(s->list_audit(1)[0].action, "eval.import");

  EXPECT_FALSE(s->get_route_policy("bot"));
  RoutePolicy p;
  p.route = "bot";
  p.require_approval_above = 50;
  p.eval_suite = "gsm8k";
  p.updated_by = "alice";
  ASSERT_TRUE(s->set_route_policy(p, "no 100% without sign-off").ok());
  auto got = s->get_route_policy("bot");
  ASSERT_TRUE(got);
  EXPECT_DOUBLE_EQ(got->require_approval_above, 50);
  EXPECT_EQ(got->eval_suite, "gsm8k");
  EXPECT_EQ(got->evidence_environment, "");
  EXPECT_TRUE(got->evidence_suites.empty());
  EXPECT_EQ(s->list_audit(1)[0].action, "route.policy");
  p.evidence_environment = "staging";
  p.evidence_suites = {"gsm8k", "smoke"};
  ASSERT_TRUE(s->set_route_policy(p, "staging first").ok());
  got = s->get_route_policy("bot");
  EXPECT_EQ(got->evidence_environment, "staging");
  EXPECT_EQ(got->evidence_suites, (std::vector<std::string>{"gsm8k", "smoke"}));
  EXPECT_NE(s->list_audit(1)[0].after.find("evidence_environment=staging"), std::string::npos);
}

// atomically(): the writes inside stand or fall together.
TEST_P(StoreConformance, AtomicallyCommitsAllOrNothing) {
  bool created = false;
  ASSERT_TRUE(s->create_release(rel("rel_a"), {}, created).ok());
  ASSERT_TRUE(s->create_release(rel("rel_b"), {}, created).ok());
  const size_t audit_before = s->list_audit(1000).size();
  // fn fails after writing: nothing stands.
  Outcome o = s->atomically([&]() -> Outcome {
    RoutePolicy p;
    p.route = "bot";
    p.updated_by = "ci";
    if (!s->set_route_policy(p, "in tx").ok()) return {"policy"};
    if (!s->promote("bot", "rel_a", "ci", "in tx").ok()) return {"promote"};
    return {"the plan failed later"};
  });
  EXPECT_EQ(o.error, "the plan failed later");
  EXPECT_FALSE(s->get_route_policy("bot"));
  EXPECT_FALSE(s->get_route("bot"));
  EXPECT_EQ(s->list_audit(1000).size(), audit_before);
  // A write refused inside (a release of another route) dooms it even if fn says ok.
  ReleaseRecord other = rel("rel_x", "other");
  ASSERT_TRUE(s->create_release(other, {}, created).ok());
  o = s->atomically([&]() -> Outcome {
    (void)s->promote("bot", "rel_a", "ci", "in tx");
    (void)s->promote("bot", "rel_x", "ci", "refused: rel_x is for route other");
    return {};
  });
  EXPECT_FALSE(o.ok());
  EXPECT_FALSE(s->get_route("bot")) << "the promote before the refused one was rolled back";
  // Success: all of it, visible to another connection, and the change feed moves.
  auto other_conn = GetParam().open(dir);
  const uint64_t before = other_conn->change_counter();
  o = s->atomically([&]() -> Outcome {
    RoutePolicy p;
    p.route = "bot";
    p.eval_suite = "smoke";
    p.updated_by = "ci";
    Outcome a = s->set_route_policy(p, "in tx");
    if (!a.ok()) return a;
    return s->atomically([&] { return s->promote("bot", "rel_b", "ci", "nested"); });
  });
  ASSERT_TRUE(o.ok()) << o.error;
  EXPECT_EQ(other_conn->get_route_policy("bot")->eval_suite, "smoke");
  EXPECT_EQ(other_conn->get_route("bot")->stable_release, "rel_b");
  for (int i = 0; i < 100 && other_conn->change_counter() == before; ++i) usleep(10000);
  EXPECT_NE(other_conn->change_counter(), before);
}

TEST_P(StoreConformance, TenantsKeysRotationAndSpend) {
  TenantRecord t{"acme", "{\"rpm\":60}", "ops", 0, 0};
  ASSERT_TRUE(s->put_tenant(t, true, "onboarding").ok());
  EXPECT_FALSE(s->put_tenant(t, true, "again").ok()) << "a tenant is created once";
  TenantRecord ghost{"ghost", "{}", "ops", 0, 0};
  EXPECT_FALSE(s->put_tenant(ghost, false, "").ok()) << "an update needs the tenant";
  t.spec = "{\"rpm\":120}";
  Outcome up = s->put_tenant(t, false, "more");
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(up.before, "{\"rpm\":60}");
  EXPECT_EQ(s->get_tenant("acme")->spec, "{\"rpm\":120}");
  ASSERT_EQ(s->list_tenants().size(), 1u);

  ApiKeyRecord k;
  k.id = "key_1";
  k.tenant = "acme";
  k.key_sha256 = std::string(64, 'a');
  k.prefix = "sk-sluice-aaaa";
  k.created_by = "ops";
  ASSERT_TRUE(s->create_api_key(k, "").ok());
  ApiKeyRecord orphan = k;
  orphan.id = "key_x";
  orphan.tenant = "ghost";
  orphan.key_sha256 = std::string(64, 'x');
  EXPECT_FALSE(s->create_api_key(orphan, "").ok()) << "a key needs its tenant";
  ApiKeyRecord dup = k;
  dup.id = "key_dup";
  EXPECT_THROW(s->create_api_key(dup, ""), std::exception) << "a key hash is unique";

  ApiKeyRecord next = k;
  next.id = "key_2";
  next.key_sha256 = std::string(64, 'b');
  ASSERT_TRUE(s->rotate_api_key("key_1", next, 0, "rotate").ok());
  ApiKeyRecord again = k;
  again.id = "key_3";
  again.key_sha256 = std::string(64, 'c');
  Outcome twice = s->rotate_api_key("key_1", again, 0, "again");
  EXPECT_FALSE(twice.ok()) << "a key is rotated once";
  EXPECT_NE(twice.error.find("already rotated"), std::string::npos) << twice.error;
  EXPECT_FALSE(s->get_api_key("key_3")) << "the refused rotation left no key behind";
  auto old = s->get_api_key("key_1");
  ASSERT_TRUE(old);
  EXPECT_EQ(old->replaced_by, "key_2");
  EXPECT_GT(old->expires_at, 0);
  ASSERT_TRUE(s->revoke_api_key("key_2", "ops", "leaked").ok());
  EXPECT_FALSE(s->revoke_api_key("key_2", "ops", "again").ok());
  EXPECT_FALSE(s->get_api_key("key_2")->active(0));
  EXPECT_EQ(s->list_api_keys("acme").size(), 2u);

  s->add_spend({{"acme", "2026-11-30", 1500}, {"acme", "2026-11", 1500}});
  s->add_spend({{"acme", "2026-11-30", 500}, {"acme", "2026-11", 500}});
  auto spend = s->list_spend({"2026-11-30", "2026-11", "2026-12"});
  ASSERT_EQ(spend.size(), 2u);
  EXPECT_EQ(spend[0].micro_usd, 2000);
  EXPECT_EQ(spend[1].micro_usd, 2000);

  // Route spend adds up per (day, route, release, tenant) and reads back by day range.
  s->add_route_spend({{"2026-11-29", "chat", "rel_a", "acme", 100, 1}, {"2026-11-30", "chat", "rel_a", "acme", 250, 2}});
  s->add_route_spend({{"2026-11-30", "chat", "rel_a", "acme", 50, 1}, {"2026-11-30", "chat", "rel_b", "", 7, 1}});
  auto rs = s->list_route_spend("2026-11-30", "2026-11-30");
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].release, "rel_a");
  EXPECT_EQ(rs[0].micro_usd, 300);
  EXPECT_EQ(rs[0].requests, 3);
  EXPECT_EQ(rs[1].tenant, "");
  EXPECT_EQ(s->list_route_spend("2026-11-01", "2026-11-30").size(), 3u);
  EXPECT_TRUE(s->list_route_spend("2026-12-01", "2026-12-31").empty());

  std::vector<std::string> actions;
  for (const auto& e : s->list_audit(20)) actions.push_back(e.action);
  for (const char* a : {"tenant.create", "tenant.update", "key.create", "key.rotate", "key.revoke"})
    EXPECT_NE(std::find(actions.begin(), actions.end(), a), actions.end()) << a;
  for (const auto& e : s->list_audit(20)) EXPECT_EQ(e.after.find(std::string(64, 'a')), std::string::npos) << "no key hash in the audit";
}

TEST_P(StoreConformance, StoredResponsesAreSavedReplacedDeletedAndExpire) {
  s->save_responses({{"acme", "resp_1", "{\"a\":1}", 5000}, {"acme", "resp_2", "{\"b\":2}", 9000},
                     {"other", "resp_1", "{\"c\":3}", 9000}},
                    {}, 1000);
  s->save_responses({{"acme", "resp_1", "{\"a\":11}", 6000}}, {{"other", "resp_1"}}, 1000);
  auto kept = s->load_responses(1000, 1 << 20);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0].id, "resp_2");  // newest first
  EXPECT_EQ(kept[1].body, "{\"a\":11}");
  EXPECT_EQ(kept[1].expires_at, 6000);
  // Expired rows are not read, and the next save prunes them.
  EXPECT_EQ(s->load_responses(7000, 1 << 20).size(), 1u);
  s->save_responses({}, {}, 7000);
  EXPECT_EQ(s->load_responses(0, 1 << 20).size(), 1u);
  // A byte bound keeps the newest.
  s->save_responses({{"acme", "resp_3", std::string(100, 'x'), 20000}}, {}, 7000);
  auto bounded = s->load_responses(7000, 105);
  ASSERT_EQ(bounded.size(), 1u);
  EXPECT_EQ(bounded[0].id, "resp_3");
}

TEST_P(StoreConformance, FlagsAreWrittenAllOrNothingWithTheirAudit) {
  auto audited = [&](const std::string& action) {
    size_t n = 0;
    for (const auto& e : s->list_audit(100)) n += e.action == action;
    return n;
  };
  auto entry = [](const std::string& key, const std::string& after) {
    AuditEntry e;
    e.actor = "ops";
    e.action = "flag.set";
    e.target = key;
    e.after = after;
    e.reason = "test";
    return e;
  };
  const uint64_t counter = s->change_counter();
  auto other = GetParam().open(dir);  // another process (the CLI) sees the change
  const uint64_t other_seen = other->external_change_counter();
  // Created out of order, listed by key, with versions and times.
  Outcome first = s->write_flags({{"zeta", "{\"z\":1}", "ops"}, {"alpha", "{\"a\":1}", "ops"}}, {},
                                 {entry("zeta", "{\"z\":1}"), entry("alpha", "{\"a\":1}")});
  ASSERT_TRUE(first.ok()) << first.error;
  EXPECT_NE(s->change_counter(), counter) << "a flag write counts as a change";
  // A networked store learns of it by notification: within the propagation bound (1 s).
  for (int i = 0; i < 100 && other->external_change_counter() == other_seen; ++i) usleep(10000);
  EXPECT_NE(other->external_change_counter(), other_seen) << "another connection's poll sees it";
  auto listed = s->list_flags();
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].key, "alpha");
  EXPECT_EQ(listed[1].key, "zeta");
  EXPECT_EQ(listed[0].version, 1);
  EXPECT_EQ(listed[0].updated_by, "ops");
  EXPECT_GT(listed[0].created_at, 0);
  EXPECT_EQ(listed[0].created_at, listed[0].updated_at);
  EXPECT_EQ(audited("flag.set"), 2u);

  // An update names the version it read; the row keeps created_at and gets the next version.
  FlagRecord up{"alpha", "{\"a\":2}", "dev"};
  up.version = 1;
  ASSERT_TRUE(s->write_flags({up}, {}, {entry("alpha", up.definition)}).ok());
  auto alpha = s->get_flag("alpha");
  ASSERT_TRUE(alpha);
  EXPECT_EQ(alpha->definition, "{\"a\":2}");
  EXPECT_EQ(alpha->version, 2);
  EXPECT_EQ(alpha->updated_by, "dev");
  EXPECT_EQ(alpha->created_at, listed[0].created_at);
  EXPECT_FALSE(s->get_flag("nope"));

  // One stale version in a batch refuses the whole batch: no row, no delete, no audit.
  FlagRecord fresh{"beta", "{\"b\":1}", "ops"};
  FlagRecord stale{"alpha", "{\"a\":3}", "ops"};
  stale.version = 1;
  Outcome refused = s->write_flags({fresh, stale}, {"zeta"}, {entry("beta", ""), entry("alpha", "")});
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(refused.error.rfind("conflict:", 0), 0u) << refused.error;
  EXPECT_FALSE(s->get_flag("beta")) << "nothing of a refused write is kept";
  EXPECT_TRUE(s->get_flag("zeta"));
  EXPECT_EQ(s->get_flag("alpha")->definition, "{\"a\":2}");
  EXPECT_EQ(audited("flag.set"), 3u) << "a refused write audits nothing";
  // Creating a flag that exists (version 0) is a conflict too, and so is deleting a missing one.
  EXPECT_FALSE(s->write_flags({{"zeta", "{}", "ops"}}, {}, {}).ok());
  EXPECT_FALSE(s->write_flags({}, {"ghost"}, {}).ok());
  EXPECT_FALSE(s->write_flags({fresh}, {"beta"}, {}).ok()) << "a key written and deleted at once";

  // Upserts and deletes together.
  AuditEntry gone = entry("zeta", "");
  gone.action = "flag.delete";
  ASSERT_TRUE(s->write_flags({fresh}, {"zeta"}, {entry("beta", fresh.definition), gone}).ok());
  listed = s->list_flags();
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].key, "alpha");
  EXPECT_EQ(listed[1].key, "beta");
  EXPECT_EQ(audited("flag.delete"), 1u);
  EXPECT_EQ(other->list_flags().size(), 2u);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformance, ::testing::ValuesIn(kBackends),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace sluice::store
