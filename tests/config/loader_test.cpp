#include "config/loader.hpp"
#include "alarm/rules.hpp"

#include <gtest/gtest.h>

namespace sluice::config {

namespace {
LoadResult load(const std::string& y) {
  auto r = load_string(y, "test.yaml");
  if (r.ok()) validate(r);
  return r;
}
bool has_error(const LoadResult& r, const std::string& needle) {
  for (const auto& e : r.errors)
    if (e.find(needle) != std::string::npos) return true;
  return false;
}
}  // namespace

TEST(ConfigLoader, LoadsAFullConfig) {
  auto r = load(R"(
listen: 127.0.0.1:9000
threads: 2
limits:
  max_body_bytes: 2048
upstreams:
  - name: a
    url: https://api.example.com/v1
    models: [m1, m2]
    timeouts: {connect_ms: 100, idle_ms: 200}
    price: {input_per_1m: 2.5, output_per_1m: 10}
routes:
  - name: support-bot
    upstream: a
    model: m1-2024
)");
  ASSERT_TRUE(r.ok()) << r.errors[0];
  const Config& c = r.config;
  EXPECT_EQ(c.threads, 2);
  EXPECT_EQ(c.limits.max_body_bytes, 2048);
  ASSERT_EQ(c.upstreams.size(), 1u);
  EXPECT_TRUE(c.upstreams[0].parsed.tls);
  EXPECT_EQ(c.upstreams[0].timeouts.connect_ms, 100);
  EXPECT_EQ(c.upstreams[0].timeouts.first_byte_ms, Timeouts{}.first_byte_ms);
  EXPECT_DOUBLE_EQ(c.upstreams[0].price_output_per_1m, 10);
  ASSERT_EQ(c.routes.size(), 1u);
  EXPECT_EQ(c.routes[0].upstreams, std::vector<std::string>{"a"});
}

TEST(ConfigLoader, PricesForTokensCachedTokensAndHours) {
  auto r = load(R"(
upstreams:
  - {name: api, url: http://a/v1, price: {input_per_1m: 2, cached_input_per_1m: 0.5, output_per_1m: 8}}
  - {name: gpu, url: http://b/v1, price: {per_hour: 36, concurrency: 4}}
  - {name: free, url: http://c/v1}
)");
  ASSERT_TRUE(r.ok()) << r.errors[0];
  const auto& u = r.config.upstreams;
  // 400 uncached at $2/M, 600 cached at $0.5/M, 200 out at $8/M
  EXPECT_NEAR(u[0].cost(1000, 600, 200, 9.0), (400 * 2 + 600 * 0.5 + 200 * 8) / 1e6, 1e-12);
  EXPECT_NEAR(u[0].cost(1000, -1, -1, 0), 1000 * 2 / 1e6, 1e-12) << "unknown counts are zero, cached defaults to none";
  EXPECT_NEAR(u[0].cost(100, 500, 0, 0), 100 * 0.5 / 1e6, 1e-12) << "cached tokens never exceed the prompt";
  EXPECT_NEAR(u[1].cost(1000, 0, 1000, 2.0), 36.0 / 3600 * 2 / 4, 1e-12) << "hourly price shared by time and concurrency";
  EXPECT_LT(u[2].cost(1000, 0, 1000, 2.0), 0) << "no price, no cost";

  auto bad = load(R"(
upstreams:
  - {name: api, url: http://a/v1, price: {input_per_1m: -1, concurrency: 0, per_hr: 3}}
)");
  ASSERT_FALSE(bad.ok());
  std::string all;
  for (const auto& e : bad.errors) all += e + "\n";
  EXPECT_NE(all.find("per_hr"), std::string::npos) << all;
  EXPECT_NE(all.find("cannot be negative"), std::string::npos) << all;
  EXPECT_NE(all.find("at least 1"), std::string::npos) << all;
}

TEST(ConfigLoader, ClientSurfaceKeys) {
  auto r = load(R"(
upstreams:
  - {name: claude, url: https://api.anthropic.com/v1, api: anthropic, anthropic_version: "2024-01-01"}
  - {name: native, url: https://api.openai.com/v1, responses: true}
cors: {allowed_origins: ["https://app.example.com", "*"], max_age_s: 60}
responses: {store_max_bytes: 1048576, store_ttl_s: 600}
)");
  ASSERT_TRUE(r.ok()) << r.errors[0];
  EXPECT_EQ(r.config.upstreams[0].api, Upstream::Api::kAnthropic);
  EXPECT_EQ(r.config.upstreams[0].anthropic_version, "2024-01-01");
  EXPECT_EQ(r.config.upstreams[1].api, Upstream::Api::kOpenAI);
  EXPECT_TRUE(r.config.upstreams[1].responses);
  EXPECT_EQ(r.config.cors.allowed_origins.size(), 2u);
  EXPECT_EQ(r.config.cors.max_age_s, 60);
  EXPECT_EQ(r.config.responses.ttl_s, 600);
  auto bad = load(R"(
upstreams:
  - {name: x, url: https://x/v1, api: gemini}
cors: {allowed_origins: [app.example.com]}
)");
  EXPECT_TRUE(has_error(bad, "api must be 'openai' or 'anthropic'")) << (bad.errors.empty() ? "" : bad.errors[0]);
  EXPECT_TRUE(has_error(bad, "'app.example.com' is not an origin")) << (bad.errors.empty() ? "" : bad.errors[0]);
}

TEST(ConfigLoader, FlagContextHeaders) {
  auto r = load(R"(
upstreams: [{name: a, url: "http://x/v1"}]
flags: {context_headers: [X-Cohort, x-app-version]}
)");
  ASSERT_TRUE(r.ok()) << r.errors[0];
  EXPECT_EQ(r.config.flags.context_headers, (std::vector<std::string>{"x-cohort", "x-app-version"}));
  auto bad = load(R"(
upstreams: [{name: a, url: "http://x/v1"}]
flags: {context_headers: [x-api-key], files: [a.json]}
)");
  EXPECT_TRUE(has_error(bad, "'x-api-key' carries credentials")) << (bad.errors.empty() ? "" : bad.errors[0]);
  EXPECT_TRUE(has_error(bad, "unknown key 'files'")) << (bad.errors.empty() ? "" : bad.errors[0]);
}

TEST(ConfigLoader, ReportsFileLineAndColumn) {
  auto r = load("upstreams:\n  - name: a\n    url: http://x\n    timeoutz: 3\n");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(has_error(r, "test.yaml:4:5: unknown key 'timeoutz'")) << r.errors[0];
  auto syntax = load("upstreams: [\n");
  ASSERT_FALSE(syntax.ok());
  EXPECT_EQ(syntax.errors[0].rfind("test.yaml:", 0), 0u);
  EXPECT_NE(syntax.errors[0].find(":2:"), std::string::npos) << syntax.errors[0];
}

TEST(ConfigLoader, RejectsBadValuesAndReferences) {
  EXPECT_TRUE(has_error(load("upstreams:\n  - {name: a, url: 'ftp://x'}\n"), "test.yaml:2:"));
  EXPECT_TRUE(has_error(load("upstreams:\n  - {name: a, url: 'http://x'}\nroutes:\n  - {name: r, upstream: b}\n"),
                        "unknown upstream or pool 'b'"));
  EXPECT_TRUE(has_error(load("threads: many\nupstreams:\n  - {name: a, url: 'http://x'}\n"), "test.yaml:1:10"));
  EXPECT_TRUE(has_error(load("upstreams:\n  - {name: a, url: 'http://x'}\n  - {name: a, url: 'http://y'}\n"),
                        "duplicate upstream"));
  EXPECT_TRUE(has_error(load("listen: nope\nupstreams:\n  - {name: a, url: 'http://x'}\n"), "'listen'"));
  EXPECT_TRUE(has_error(load("{}"), "no upstreams"));
  EXPECT_TRUE(has_error(load("upstreams:\n  - {name: a, url: 'http://x', timeouts: {connect_ms: 0}}\n"), "connect_ms"));
}

TEST(ConfigLoader, FlagUpstreams) {
  Config c;
  EXPECT_EQ(add_flag_upstream(c, "m=http://127.0.0.1:9000"), "");
  EXPECT_NE(add_flag_upstream(c, "m=http://127.0.0.1:9001"), "");  // duplicate
  EXPECT_NE(add_flag_upstream(c, "nourl"), "");
  EXPECT_NE(add_flag_upstream(c, "x=gopher://h"), "");
  ASSERT_EQ(c.upstreams.size(), 1u);
  EXPECT_EQ(c.upstreams[0].parsed.port, 9000);
}

TEST(ConfigLoader, ApiKeysFromEnvironmentAreHashed) {
  setenv("SLUICE_TEST_KEY", "sk-test", 1);
  auto r = load("upstreams:\n  - {name: a, url: 'http://x'}\napi_keys:\n  - {tenant: t, key_env: SLUICE_TEST_KEY}\n");
  ASSERT_TRUE(r.ok()) << r.errors[0];
  ASSERT_EQ(r.config.api_keys.size(), 1u);
  EXPECT_EQ(r.config.api_keys[0].key_sha256.size(), 64u);
  EXPECT_EQ(r.config.api_keys[0].key_sha256.find("sk-test"), std::string::npos);
  EXPECT_TRUE(has_error(load("upstreams:\n  - {name: a, url: 'http://x'}\napi_keys:\n  - {tenant: t, key_env: NOPE_UNSET}\n"),
                        "NOPE_UNSET is not set"));
}

}  // namespace sluice::config

namespace sluice::config {

TEST(ConfigLoader, PoolsBreakersAndRetryBudget) {
  auto r = load(R"(
limits:
  retry_budget: {ratio: 0.1, min_per_second: 2, window_ms: 5000}
  unavailable_wait_ms: 300
upstreams:
  - name: a
    url: http://127.0.0.1:9001
    breaker: {consecutive_failures: 3, open_ms: 500, max_open_ms: 8000, slow_start_ms: 20000}
    timeouts: {first_token_ms: 1500}
    models: [llama]
    health_check: {interval_ms: 2000, unhealthy_after: 3}
  - {name: b, url: 'http://127.0.0.1:9002', breaker: false}
pools:
  - {name: gsm8k, upstreams: [a, b], balance: prefix, bounded_load: 1.5, max_ejected_percent: 50}
routes:
  - {name: tutor, upstream: gsm8k}
)");
  ASSERT_TRUE(r.ok()) << r.errors[0];
  const Config& c = r.config;
  EXPECT_DOUBLE_EQ(c.limits.retry_budget.ratio, 0.1);
  EXPECT_EQ(c.limits.retry_budget.min_per_second, 2);
  EXPECT_EQ(c.limits.unavailable_wait_ms, 300);
  EXPECT_EQ(c.upstreams[0].breaker.consecutive_failures, 3);
  EXPECT_EQ(c.upstreams[0].breaker.open_ms, 500);
  EXPECT_EQ(c.upstreams[0].timeouts.first_token_ms, 1500);
  EXPECT_FALSE(c.upstreams[1].breaker.enabled);
  EXPECT_EQ(c.upstreams[0].breaker.slow_start_ms, 20000);
  EXPECT_TRUE(c.upstreams[0].health_check.enabled);
  EXPECT_EQ(c.upstreams[0].health_check.interval_ms, 2000);
  EXPECT_EQ(c.upstreams[0].health_check.unhealthy_after, 3);
  EXPECT_EQ(c.upstreams[0].health_check.model, "llama");  // the upstream's first model
  EXPECT_FALSE(c.upstreams[1].health_check.enabled);       // off unless configured
  ASSERT_EQ(c.pools.size(), 1u);
  EXPECT_EQ(c.pools[0].balance.policy, upstream::Policy::kPrefix);
  EXPECT_DOUBLE_EQ(c.pools[0].balance.bounded_load, 1.5);
  EXPECT_DOUBLE_EQ(c.pools[0].balance.max_ejected_share, 0.5);
}

TEST(ConfigLoader, SeveralKeysOfOneProviderBecomeAPoolOfUpstreams) {
  auto r = load(R"(
upstreams:
  - {name: openai, url: 'https://api.openai.com/v1', api_key_envs: [K1, K2, K3]}
routes:
  - {name: bot, upstream: openai, model: gpt-4o-mini}
)");
  ASSERT_TRUE(r.ok()) << r.errors[0];
  const Config& c = r.config;
  ASSERT_EQ(c.upstreams.size(), 3u);
  EXPECT_EQ(c.upstreams[1].name, "openai#2");
  EXPECT_EQ(c.upstreams[1].api_key_env, "K2");
  EXPECT_EQ(c.upstreams[1].url, "https://api.openai.com/v1");
  ASSERT_EQ(c.pools.size(), 1u);
  EXPECT_EQ(c.pools[0].name, "openai");
  EXPECT_EQ(c.pools[0].upstreams, (std::vector<std::string>{"openai#1", "openai#2", "openai#3"}));
  EXPECT_EQ(c.pools[0].balance.policy, upstream::Policy::kRoundRobin);
  EXPECT_TRUE(has_error(
      load("upstreams:\n  - {name: o, url: 'http://x', api_key_env: A, api_key_envs: [B]}\n"), "not both"));
}

TEST(ConfigLoader, BadPoolsAreRefusedWithTheirLocation) {
  const std::string ups = "upstreams:\n  - {name: a, url: 'http://x'}\n";
  // A pool naming an unknown upstream: file:line:column of the pool.
  auto r = load(ups + "pools:\n  - {name: p, upstreams: [a, nope]}\n");
  EXPECT_TRUE(has_error(r, "test.yaml:4:5: pool 'p' refers to unknown upstream 'nope'")) << (r.errors.empty() ? "" : r.errors[0]);
  EXPECT_TRUE(has_error(load(ups + "pools:\n  - {name: p, upstreams: [a], balance: random}\n"), "'balance' must be"));
  EXPECT_TRUE(has_error(load(ups + "pools:\n  - {name: a, upstreams: [a]}\n"), "has the name of an upstream"));
  EXPECT_TRUE(has_error(load(ups + "pools:\n  - {name: p, upstreams: [a, a]}\n"), "twice"));
  EXPECT_TRUE(has_error(load(ups + "pools:\n  - {name: p, upstreams: [a]}\n  - {name: q, upstreams: [p]}\n"),
                        "a pool lists upstreams, not other pools"));
  EXPECT_TRUE(has_error(load(ups + "pools:\n  - {name: p, upstreams: [a], bounded_load: 0.5}\n"), "at least 1"));
  EXPECT_TRUE(has_error(load("upstreams:\n  - {name: a, url: 'http://x', timeouts: {first_byte_ms: -5}}\n"),
                        "test.yaml:2:58: 'first_byte_ms' must be between"));
  EXPECT_TRUE(has_error(load("upstreams:\n  - {name: a, url: 'http://x', breaker: {failure_ratio: 2}}\n"),
                        "'failure_ratio' must be in (0, 1]"));
  EXPECT_TRUE(has_error(load("upstreams:\n  - {name: a, url: 'http://x', health_check: {interval_ms: 5}}\n"),
                        "'interval_ms' must be between"));
  EXPECT_TRUE(has_error(load("upstreams:\n  - {name: a, url: 'http://x', health_check: {path: /health}}\n"), "path"));
  EXPECT_TRUE(has_error(load("upstreams:\n  - {name: a, url: 'http://x', breaker: {slow_start_ms: -1}}\n"),
                        "'slow_start_ms' must be between"));
  EXPECT_TRUE(has_error(load("upstreams:\n  - {name: a, url: 'http://x', breaker: {open_ms: 900, max_open_ms: 100}}\n"),
                        "'max_open_ms' must be at least 'open_ms'"));
  EXPECT_TRUE(has_error(load(ups + "limits: {retry_budget: {ratio: 0.1, bogus: 1}}\n"), "bogus"));
}

}  // namespace sluice::config

namespace sluice::config {

TEST(ConfigLoader, FallbackChains) {
  const std::string ups =
      "upstreams:\n  - {name: a, url: 'http://x'}\n  - {name: b, url: 'http://y'}\nroutes:\n  - {name: r, upstream: a, model: m}\n";
  auto ok = load(ups + "fallbacks:\n  - {route: r, chain: [{upstream: b, model: small}, {static: busy}], on: [5xx, unavailable]}\n");
  ASSERT_TRUE(ok.ok()) << ok.errors[0];
  ASSERT_EQ(ok.config.fallbacks.size(), 1u);
  EXPECT_EQ(ok.config.fallbacks[0].chain[1].static_text, "busy");
  EXPECT_EQ(ok.config.fallbacks[0].on, (std::vector<std::string>{"5xx", "unavailable"}));
  EXPECT_TRUE(has_error(load(ups + "fallbacks:\n  - {route: r, chain: [{upstream: nope}]}\n"),
                        "test.yaml:7:5: fallback for route 'r' refers to unknown upstream or pool 'nope'"));
  EXPECT_TRUE(has_error(load(ups + "fallbacks:\n  - {route: r, chain: [{upstream: b}, {upstream: b}]}\n"), "twice (a cycle)"));
  EXPECT_TRUE(has_error(load(ups + "fallbacks:\n  - {route: r, chain: [{upstream: a, model: m}]}\n"),
                        "falls back to the route's own target 'a' (a cycle)"));
  EXPECT_TRUE(has_error(load(ups + "fallbacks:\n  - {route: r, chain: [{upstream: b, static: x}]}\n"), "one of"));
  auto lg = load(ups + "fallbacks:\n  - {route: r, chain: [{last_good: true}, {static: busy}]}\n"
                       "response_cache: {last_good_max_bytes: 1048576, last_good_ttl_ms: 60000}\n");
  ASSERT_TRUE(lg.ok()) << lg.errors[0];
  EXPECT_TRUE(lg.config.fallbacks[0].chain[0].last_good);
  EXPECT_EQ(lg.config.response_cache.last_good_ttl_ms, 60000);
  EXPECT_TRUE(has_error(load(ups + "fallbacks:\n  - {route: r, chain: [{last_good: false}]}\n"), "can only be true"));
  EXPECT_TRUE(has_error(load(ups + "long_context:\n  - {route: r, above_tokens: 100, upstream: nope}\n"),
                        "test.yaml:7:5: long_context for route 'r' refers to unknown upstream or pool 'nope'"));
  EXPECT_TRUE(has_error(load(ups + "fallbacks:\n  - {route: r, mid_stream: resume}\n"), "'mid_stream' is error"));
  EXPECT_TRUE(has_error(load(ups + "tenants:\n  - {name: t, tier: urgent}\n"), "'tier' is critical, standard or sheddable"));
  EXPECT_TRUE(has_error(load(ups + "tenants:\n  - {name: t, rpm: -5}\n"), "'rpm' must be between"));
  EXPECT_TRUE(has_error(load(ups + "tenants:\n  - {name: t, rmp: 5}\n"), "rmp"));  // a typo
  EXPECT_TRUE(has_error(load(ups + "tenants:\n  - {name: t}\n  - {name: t}\n"), "defined twice"));
  EXPECT_TRUE(load(ups + "fallbacks:\n  - {route: r, mid_stream: continue}\n").ok());  // no chain needed
  EXPECT_TRUE(has_error(load(ups + "fallbacks:\n  - {route: r, chain: [{last_good: true, static: x}]}\n"), "one of"));
  EXPECT_TRUE(has_error(load(ups + "fallbacks:\n  - {route: r, chain: [{static: x}], on: [4xx]}\n"), "'on' entries"));
  EXPECT_TRUE(has_error(load(ups + "fallbacks:\n  - {route: r, chain: []}\n"), "non-empty 'chain'"));
}

TEST(ConfigLoader, AlarmsSection) {
  auto r = load("alarms:\n  - {name: a, metric: refusal_rate, scope: {route: chat}, threshold: 0.05, window: 15m}\n"
                "upstreams:\n  - {name: u, url: http://a/v1}\n");
  ASSERT_TRUE(r.ok()) << r.errors[0];
  ASSERT_TRUE(r.config.alarms);
  ASSERT_EQ(r.config.alarms->size(), 1u);
  EXPECT_EQ(r.config.alarm_refusal_routes, std::vector<std::string>{"chat"});
  EXPECT_TRUE(has_error(load("alarms:\n  - {name: a, metric: nope, threshold: 1}\nupstreams:\n  - {name: u, url: http://a/v1}\n"), "test.yaml:2:23: unknown metric 'nope'"));
  EXPECT_TRUE(load("listen: 127.0.0.1:1\n").config.alarm_refusal_routes.empty());
}

}  // namespace sluice::config
