// The incident timeline: what each source becomes, which events belong to a route, the
// order, the admin API's JSON shape, the text, the event ring and the breaker feed.
#include "incident/timeline.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>
#include <unistd.h>

#include <filesystem>

#include "incident/ring.hpp"
#include "upstream/health.hpp"

namespace sluice::incident {
namespace {

store::AuditEntry audit(int64_t at, std::string actor, std::string action, std::string target, std::string before = "",
                        std::string after = "", std::string reason = "") {
  store::AuditEntry a;
  a.at = at;
  a.actor = std::move(actor);
  a.action = std::move(action);
  a.target = std::move(target);
  a.before = std::move(before);
  a.after = std::move(after);
  a.reason = std::move(reason);
  return a;
}

TEST(Timeline, AuditEntriesBecomeEventsOfTheirRoute) {
  auto p = from_audit(audit(10, "alice", "route.promote", "math", "rel_a", "rel_b", "better"));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "release.promoted");
  EXPECT_EQ(p->route, "math");
  EXPECT_NE(p->summary.find("rel_b promoted (was rel_a) by alice: better"), std::string::npos) << p->summary;

  auto r = from_audit(audit(11, "bob", "route.rollback", "math", "rel_b", "rel_a"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, "rollback");
  EXPECT_NE(r->summary.find("rolled back to rel_a (from rel_b)"), std::string::npos);

  // A kill switch: its route comes from the flag's metadata.
  auto k = from_audit(audit(12, "carol", "kill.route", "kill.route.math", "",
                            R"({"state":"ENABLED","defaultVariant":"block","variants":{"block":"block"},)"
                            R"("metadata":{"kill":"route","route":"math"}})",
                            "incident"));
  ASSERT_TRUE(k);
  EXPECT_EQ(k->kind, "kill.route");
  EXPECT_EQ(k->route, "math");
  EXPECT_NE(k->summary.find("kill switch kill.route.math ENABLED, default variant block by carol"), std::string::npos)
      << k->summary;

  auto al = from_audit(audit(13, "alarm:refusals", "alarm.fire", "math", "", "refusal_rate 0.09 > 0.05"));
  ASSERT_TRUE(al);
  EXPECT_EQ(al->kind, "alarm.fire");
  EXPECT_EQ(al->subject, "refusals");
  EXPECT_NE(al->summary.find("alarm refusals fired: refusal_rate 0.09 > 0.05"), std::string::npos) << al->summary;

  EXPECT_FALSE(from_audit(audit(14, "alice", "tenant.create", "acme")));
  EXPECT_FALSE(from_audit(audit(15, "rollout-controller", "rollout.rollback", "math")));  // the rollout event says it
  auto denied = audit(16, "x", "route.promote", "math");
  denied.outcome = "denied";
  EXPECT_FALSE(from_audit(denied));
}

TEST(Timeline, RolloutEventsKeepTheirNumbers) {
  store::RolloutRecord ro;
  ro.id = "ro_1";
  ro.route = "math";
  ro.stable_release = "rel_a";
  ro.candidate_release = "rel_b";
  store::RolloutEvent ev{3, "ro_1", 500, "decision",
                         R"({"message":"promote: error_rate pass [-0.01, 0.004] n=120/118","weight":20,)"
                         R"("shadow_share":0,"data":{"gates":[{"check":"error_rate","estimate":-0.003,"lo":-0.01,"hi":0.004,"n_candidate":120}]}})"};
  Entry e = from_rollout_event(ro, ev);
  EXPECT_EQ(e.kind, "rollout.decision");
  EXPECT_EQ(e.route, "math");
  EXPECT_EQ(e.summary, "rel_b promote: error_rate pass [-0.01, 0.004] n=120/118");
  simdjson::dom::parser p;
  simdjson::dom::element d;
  ASSERT_FALSE(p.parse(e.detail).get(d)) << e.detail;
  double n = 0;
  ASSERT_FALSE(d["data"]["gates"].at(0)["n_candidate"].get_double().get(n));
  EXPECT_EQ(n, 120);
  std::string_view rollout;
  ASSERT_FALSE(d["rollout"].get_string().get(rollout));
  EXPECT_EQ(rollout, "ro_1");
}

TEST(Timeline, SelectFiltersByRouteUpstreamAndWindowInTimeOrder) {
  std::vector<Entry> all;
  all.push_back({300, "rollback", "math", "rel_a", "rolled back", "{}"});
  all.push_back({100, "release.promoted", "math", "rel_a", "promoted", "{}"});
  all.push_back({150, "release.promoted", "other", "rel_x", "other route", "{}"});
  all.push_back({200, "breaker.open", "", "mock", "upstream mock ejected", "{}"});
  all.push_back({210, "breaker.open", "", "elsewhere", "not math's upstream", "{}"});
  all.push_back({250, "config.reload", "", "gw.yaml", "reloaded", "{}"});
  all.push_back({260, "kill.rollouts", "*", "kill.rollouts", "every route", "{}"});
  all.push_back({100, "rollout.step", "math", "ro", "same millisecond, given later", "{}"});
  all.push_back({900, "rollback", "math", "rel_a", "after the window", "{}"});

  Query q;
  q.route = "math";
  q.from_ms = 100;
  q.to_ms = 900;
  auto got = select(all, q, {"mock"});
  std::vector<std::string> summaries;
  for (const auto& e : got) summaries.push_back(e.summary);
  EXPECT_EQ(summaries, (std::vector<std::string>{"promoted", "same millisecond, given later", "upstream mock ejected",
                                                 "reloaded", "every route", "rolled back"}));

  q.route = "";  // every route
  EXPECT_EQ(select(all, q, {}).size(), 8u);
}

TEST(Timeline, JsonIsTheAdminShape) {
  std::vector<Entry> es = {{1700000000123, "breaker.open", "", "mock", "upstream mock ejected", R"({"to":"open"})"}};
  std::string js = to_json(es, "math");
  simdjson::dom::parser p;
  simdjson::dom::element d;
  ASSERT_FALSE(p.parse(js).get(d)) << js;
  simdjson::dom::element e = d["events"].at(0);
  int64_t t = 0;
  ASSERT_FALSE(e["t_ms"].get_int64().get(t));
  EXPECT_EQ(t, 1700000000123);
  std::string_view v;
  ASSERT_FALSE(e["route"].get_string().get(v));
  EXPECT_EQ(v, "math");  // matched through its upstream: shown on the route asked for
  ASSERT_FALSE(e["detail"]["to"].get_string().get(v));
  EXPECT_EQ(v, "open");
  EXPECT_EQ(format_line(es[0]), "2023-11-14 22:13:20.123  breaker.open        upstream mock ejected");
}

TEST(Timeline, ParseTime) {
  EXPECT_EQ(parse_time("2h", 10'000'000), 10'000'000 - 7'200'000);
  EXPECT_EQ(parse_time("90s", 100'000), 10'000);
  EXPECT_EQ(parse_time("1700000000000", 5), 1700000000000);
  EXPECT_EQ(parse_time("now", 42), 42);
  EXPECT_FALSE(parse_time("2 hours", 0));
  EXPECT_FALSE(parse_time("h", 0));
  EXPECT_FALSE(parse_time("", 0));
}

TEST(EventRing, BoundedAndCounted) {
  EventRing ring(2);
  ring.push(reload_event("a.yaml", 2, "", 1));
  ring.push(reload_event("a.yaml", 0, "line 3: bad\nmore", 2));
  ring.push(reload_event("a.yaml", 3, "", 3));
  EXPECT_EQ(ring.dropped(), 1u);
  auto got = ring.drain();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].summary, "configuration reloaded from a.yaml (version 2)");
  EXPECT_EQ(got[1].summary, "configuration reload rejected, the running one kept: line 3: bad");
  EXPECT_TRUE(ring.drain().empty());
}

TEST(EventRing, BreakerChangesReachTheRingOnlyWhenTheStateChanges) {
  Hub hub;
  upstream::Registry reg;
  reg.set_observer(&hub.breakers);
  upstream::BreakerSettings s;
  s.consecutive_failures = 2;
  s.open_ms = 100;
  auto h = reg.get("mock|http://127.0.0.1:1/v1|v|", s);
  h->record(upstream::Outcome::kSuccess, 1000, false);
  h->record(upstream::Outcome::kFailure, 1001, false, "status 500");
  h->record(upstream::Outcome::kFailure, 1002, false, "status 500");  // opens
  h->record(upstream::Outcome::kFailure, 1003, false, "status 500");  // already open: no event
  EXPECT_FALSE(h->admit(1050).allowed);
  auto probe = h->admit(1200);  // half-open
  ASSERT_TRUE(probe.allowed && probe.probe);
  h->record(upstream::Outcome::kSuccess, 1201, true);  // closed
  auto got = hub.events.drain();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].kind, "breaker.open");
  EXPECT_EQ(got[0].subject, "mock");
  EXPECT_EQ(got[0].at, 1002);
  EXPECT_NE(got[0].summary.find("upstream mock ejected (breaker open): 2 consecutive failures (last: status 500)"),
            std::string::npos)
      << got[0].summary;
  EXPECT_EQ(got[1].kind, "breaker.half_open");
  EXPECT_EQ(got[2].kind, "breaker.closed");
}

TEST(Timeline, StoreMergesAuditAndEventsInOrder) {
  std::string path = (std::filesystem::temp_directory_path() / ("incident-" + std::to_string(getpid()) + ".db")).string();
  std::filesystem::remove(path);
  std::string err;
  auto s = store::open_sqlite(path, err);
  ASSERT_TRUE(s) << err;
  s->append_audit(audit(1000, "alice", "route.promote", "math", "", "rel_a"));
  s->append_audit(audit(3000, "bob", "route.rollback", "math", "rel_b", "rel_a"));
  s->append_audit(audit(500, "alice", "route.promote", "math", "", "rel_0"));  // before the window
  s->append_events({{0, 2000, "breaker.open", "", "mock", "upstream mock ejected", "{}"},
                    {0, 2500, "breaker.open", "", "other", "not ours", "{}"}});
  Query q;
  q.route = "math";
  q.from_ms = 900;
  q.to_ms = 10000;
  auto got = timeline(*s, q, {"mock"});
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].kind, "release.promoted");
  EXPECT_EQ(got[1].kind, "breaker.open");
  EXPECT_EQ(got[2].kind, "rollback");
  s.reset();
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
}

}  // namespace
}  // namespace sluice::incident
