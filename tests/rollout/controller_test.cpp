// The rollout controller on a real SQLite store, with releases built from the worked
// example's manifests.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "control/releases.hpp"
#include "rollout/controller.hpp"
#include "rollout/ops.hpp"
#include "store/store.hpp"

namespace sluice::rollout {
namespace {

namespace fs = std::filesystem;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class ControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = (fs::temp_directory_path() / ("sluice-ctl-" + std::to_string(::getpid()))).string();
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::string err;
    st = store::open_sqlite(dir + "/sluice.db", err);
    ASSERT_TRUE(st) << err;
    std::string ex = std::string(SLUICE_SOURCE_DIR) + "/examples/math-tutor/";
    auto a = control::create_release(*st, ex + "release-v1.yaml", "test");
    auto b = control::create_release(*st, ex + "release-v2.yaml", "test");
    ASSERT_TRUE(a.ok() && b.ok()) << a.error << b.error;
    v1 = a.text.substr(0, a.text.find_first_of(" \n"));
    v2 = b.text.substr(0, b.text.find_first_of(" \n"));
    ASSERT_TRUE(st->promote("math-tutor", v1, "test", "baseline").ok());
  }
  void TearDown() override {
    st.reset();
    fs::remove_all(dir);
  }
  std::string start_rollout() {
    StartRequest r;
    r.route = "math-tutor";
    r.release = v2;
    r.override_eval = true;
    r.actor = "test";
    r.reason = "controller test";
    auto res = start(*st, r);
    EXPECT_TRUE(res.ok()) << res.error;
    return res.text;
  }
  ControllerEnv env_for(Sink& sink) {
    ControllerEnv env;
    env.store = st.get();
    env.sink = &sink;
    env.log = [](const std::string&) {};
    return env;
  }
  std::string dir, v1, v2;
  std::unique_ptr<store::Store> st;
};

// Issue 17 (5): a rollout aborted and the next one started on the same route before the
// first reported `rollback_settled` used to leave by_id_ pointing at a freed run; a late
// sample naming the old rollout was then a use-after-free (ASan) and the report was lost.
TEST_F(ControllerTest, NextRolloutStartedWhileThePreviousSettles) {
  Sink sink(1, 1000);
  Controller ctl(env_for(sink));
  std::string first = start_rollout();
  ctl.reload();
  ctl.tick(wall_ms());
  auto cmd = ctl.command("math-tutor", "abort", "test", "abort at once");
  ASSERT_TRUE(cmd.ok()) << cmd.error;
  ASSERT_EQ(st->get_rollout(first)->status, "aborted");
  std::string second = start_rollout();
  ASSERT_NE(first, second);
  ctl.reload();  // loads the second rollout while the first still owes its report
  // Late samples from workers still name the first rollout.
  for (int i = 0; i < 5; ++i) sink.push(0, Sample{first, 0, true, Observation{}});
  sink.push(0, Sample{second, 0, false, Observation{}});
  ctl.tick(wall_ms());
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  ctl.tick(wall_ms());
  bool settled = false;
  for (const auto& e : st->rollout_events(first, 0)) settled = settled || e.kind == "rollback_settled";
  EXPECT_TRUE(settled) << "the first rollout's rollback_settled report was lost";
  EXPECT_EQ(st->active_rollout("math-tutor")->id, second);
  auto js = ctl.status_json("math-tutor");
  EXPECT_NE(js.find(second), std::string::npos);
}

// Issue 17 (3, 4): with no policy of its own a route needs sign-off before 100%, and a
// promote while the rollout awaits it is refused (and audited as denied).
TEST_F(ControllerTest, PromoteCannotSkipTheDefaultApproval) {
  Sink sink(1, 1000);
  Controller ctl(env_for(sink));
  start_rollout();
  ctl.reload();
  ctl.tick(wall_ms());
  // Walk the default canary with promotes until it waits for a person.
  std::string status;
  for (int i = 0; i < 20; ++i) {
    auto js = ctl.status_json("math-tutor");
    if (js.find("\"status\":\"awaiting_approval\"") != std::string::npos) {
      status = "awaiting_approval";
      break;
    }
    ASSERT_TRUE(ctl.command("math-tutor", "promote", "test", "").ok());
  }
  ASSERT_EQ(status, "awaiting_approval") << ctl.status_json("math-tutor");
  auto refused = ctl.command("math-tutor", "promote", "mallory", "");
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(refused.error.find("approve"), std::string::npos) << refused.error;
  // The CLI path (store only, no controller in the loop) refuses too.
  auto cli = command(*st, "math-tutor", "promote", "mallory", "");
  EXPECT_FALSE(cli.ok());
  auto audit = st->list_audit(5);
  ASSERT_FALSE(audit.empty());
  EXPECT_EQ(audit.front().action, "rollout.promote");
  EXPECT_EQ(audit.front().outcome, "denied");
  EXPECT_EQ(ctl.status_json("math-tutor").find("\"status\":\"completed\""), std::string::npos);
  // A queued promote that slipped in before the approval step began is refused by the machine.
  auto ro = st->active_rollout("math-tutor");
  ASSERT_TRUE(st->add_rollout_command({0, ro->id, "promote", "mallory", "", 0}).ok());
  ctl.reload();
  EXPECT_NE(ctl.status_json("math-tutor").find("\"status\":\"awaiting_approval\""), std::string::npos);
  // approve (with a reason) moves it on.
  EXPECT_FALSE(ctl.command("math-tutor", "approve", "alice", "").ok());
  ASSERT_TRUE(ctl.command("math-tutor", "approve", "alice", "looked at the gates").ok());
  EXPECT_EQ(ctl.status_json("math-tutor").find("\"status\":\"awaiting_approval\""), std::string::npos);
}

// An explicit opt-out (audited) lets a rollout reach 100% without sign-off.
TEST_F(ControllerTest, ExplicitOptOutSkipsTheApprovalStep) {
  store::RoutePolicy p;
  p.route = "math-tutor";
  p.require_approval_above = store::kNoApproval;
  p.updated_by = "test";
  ASSERT_TRUE(st->set_route_policy(p, "staging route").ok());
  start_rollout();
  auto ro = st->active_rollout("math-tutor");
  ASSERT_TRUE(ro);
  EXPECT_EQ(ro->spec.find("approval"), std::string::npos) << ro->spec;
}

}  // namespace
}  // namespace sluice::rollout
