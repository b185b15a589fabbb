#include "config/snapshot.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "config/loader.hpp"
#include "core/crypto.hpp"

namespace sluice::config {

namespace {
std::shared_ptr<const Snapshot> build(const std::string& yaml) {
  auto r = load_string(yaml, "t.yaml");
  validate(r);
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0]);
  std::string err;
  auto s = Snapshot::build(r.config, 1, err);
  EXPECT_TRUE(s) << err;
  return s;
}
}  // namespace

TEST(Snapshot, SingleUpstreamPassesEveryModelThrough) {
  auto s = build("upstreams:\n  - {name: a, url: 'http://127.0.0.1:9000'}\n");
  ASSERT_TRUE(s->passthrough());
  const Resolution* r = s->resolve("anything");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->upstreams, std::vector<size_t>{0});
  EXPECT_EQ(r->upstream_model, "");
  EXPECT_EQ(s->upstreams()[0].path_prefix, "/v1");
  EXPECT_EQ(s->upstreams()[0].host_header, "127.0.0.1:9000");
}

TEST(Snapshot, RoutesAndModelListsResolveOthers404) {
  auto s = build(R"(
upstreams:
  - {name: a, url: 'https://a.example/v1', models: [shared, only-a]}
  - {name: b, url: 'http://b.example:8000/openai/v1', models: [shared]}
routes:
  - {name: bot, upstreams: [b, a], model: pinned-2024}
)");
  EXPECT_FALSE(s->passthrough());
  EXPECT_EQ(s->resolve("nope"), nullptr);
  const Resolution* bot = s->resolve("bot");
  ASSERT_TRUE(bot);
  EXPECT_EQ(bot->upstreams, (std::vector<size_t>{1, 0}));
  EXPECT_EQ(bot->upstream_model, "pinned-2024");
  const Resolution* shared = s->resolve("shared");
  ASSERT_TRUE(shared);
  EXPECT_EQ(shared->upstreams, (std::vector<size_t>{0, 1}));
  EXPECT_EQ(s->upstreams()[0].host_header, "a.example");
  EXPECT_EQ(s->upstreams()[1].path_prefix, "/openai/v1");
  EXPECT_EQ(s->model_names().front(), "bot");
}

TEST(Snapshot, ApiKeysByHashAndSecretsResolvedFromEnv) {
  setenv("SLUICE_SNAP_UPSTREAM_KEY", "sk-upstream", 1);
  auto s = build("upstreams:\n  - {name: a, url: 'http://x', api_key_env: SLUICE_SNAP_UPSTREAM_KEY}\n"
                 "api_keys:\n  - {tenant: acme, key_sha256: " + sha256_hex("sk-client") + "}\n");
  EXPECT_TRUE(s->requires_api_key());
  ASSERT_TRUE(s->tenant_for_key_hash(sha256_hex("sk-client"), 0));
  EXPECT_EQ(*s->tenant_for_key_hash(sha256_hex("sk-client"), 0), "acme");
  EXPECT_EQ(s->tenant_for_key_hash(sha256_hex("sk-other"), 0), nullptr);
  EXPECT_EQ(s->upstreams()[0].api_key, "sk-upstream");
}

TEST(SnapshotStore, WorkersSeeEveryPublishWithoutTearing) {
  SnapshotStore store;
  std::string err;
  Config c;
  add_flag_upstream(c, "a=http://127.0.0.1:1");
  store.publish(Snapshot::build(c, 1, err));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> max_seen{0};
  std::thread reader([&] {
    SnapshotCache cache(store);
    while (!stop.load()) {
      const auto& s = cache.get();
      ASSERT_TRUE(s);
      ASSERT_FALSE(s->upstreams().empty());
      if (s->version() > max_seen.load()) max_seen.store(s->version());
    }
  });
  for (uint64_t v = 2; v <= 200; ++v) store.publish(Snapshot::build(c, v, err));
  while (max_seen.load() < 200) std::this_thread::yield();
  stop.store(true);
  reader.join();
  EXPECT_EQ(max_seen.load(), 200u);
}

}  // namespace sluice::config

namespace sluice::config {

TEST(Snapshot, RoutesAndReleasesNamePoolsAndHealthOutlivesReloads) {
  auto r = load_string(R"(
upstreams:
  - {name: a, url: 'http://127.0.0.1:9001'}
  - {name: b, url: 'http://127.0.0.1:9002'}
  - {name: c, url: 'http://127.0.0.1:9003'}
pools:
  - {name: p, upstreams: [b, c], balance: least_tokens}
routes:
  - {name: pooled, upstream: p}
  - {name: listed, upstreams: [a, p]}
)", "t.yaml");
  validate(r);
  ASSERT_TRUE(r.ok()) << r.errors[0];
  upstream::Registry reg;
  std::string err;
  auto s1 = Snapshot::build(r.config, 1, err, {}, &reg);
  ASSERT_TRUE(s1) << err;
  const Resolution* pooled = s1->resolve("pooled");
  ASSERT_TRUE(pooled && pooled->balance);
  EXPECT_EQ(pooled->upstreams, (std::vector<size_t>{1, 2}));
  EXPECT_EQ(pooled->balance->policy, upstream::Policy::kLeastTokens);
  const Resolution* listed = s1->resolve("listed");
  EXPECT_EQ(listed->upstreams, (std::vector<size_t>{0, 1, 2}));
  EXPECT_EQ(listed->balance, nullptr) << "a plain list is tried in order";
  const upstream::BalanceSettings* b = nullptr;
  EXPECT_EQ(s1->targets_of("p", b), (std::vector<size_t>{1, 2}));
  EXPECT_TRUE(s1->targets_of("nope", b).empty());
  // What was learned about an upstream survives a reload that keeps it.
  for (int i = 0; i < 5; ++i) s1->upstreams()[1].health->record(upstream::Outcome::kFailure, 1000, false, "x");
  auto s2 = Snapshot::build(r.config, 2, err, {}, &reg);
  EXPECT_EQ(s2->upstreams()[1].health.get(), s1->upstreams()[1].health.get());
  EXPECT_EQ(s2->upstreams()[1].health->view(1001).state, upstream::BreakerState::kOpen);
}

}  // namespace sluice::config
