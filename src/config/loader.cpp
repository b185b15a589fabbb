#include "config/loader.hpp"

#include "core/error.hpp"

#include <yaml-cpp/yaml.h>

#include "alarm/rules.hpp"
#include "config/tenant_spec.hpp"
#include "config/yaml_keys.hpp"
#include "core/crypto.hpp"
#include "core/files.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>

namespace sluice::config {

namespace {

// Accepts a SHA-256 digest in hex of either case and stores it lowercase (how it is compared).
bool normalize_sha256(std::string& h) {
  if (h.size() != 64) return false;
  for (char& c : h) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

class Walker {
 public:
  Walker(std::string file, LoadResult& r) : file_(std::move(file)), r_(r) {}

  std::string at(const YAML::Node& n) const {
    auto m = n.Mark();
    if (m.is_null()) return file_;
    return file_ + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
  }
  void error(const YAML::Node& n, const std::string& msg) { r_.errors.push_back(at(n) + ": " + msg); }

  bool expect_map(const YAML::Node& n, const char* what) {
    if (n.IsMap()) return true;
    error(n, std::string(what) + " must be a mapping");
    return false;
  }
  void allow_keys(const YAML::Node& n, std::initializer_list<const char*> keys, const char* what) {
    for_each_unknown_key(n, keys, what, [&](const YAML::Node& at, const std::string& msg) { error(at, msg); });
  }
  void str(const YAML::Node& n, const char* key, std::string& out) {
    YAML::Node v = n[key];
    if (!v) return;
    if (!v.IsScalar()) return error(v, std::string("'") + key + "' must be a string");
    out = v.Scalar();
  }
  void integer(const YAML::Node& n, const char* key, int64_t& out, int64_t min, int64_t max) {
    YAML::Node v = n[key];
    if (!v) return;
    try {
      int64_t x = v.as<int64_t>();
      if (x < min || x > max) {
        return error(v, std::string("'") + key + "' must be between " + std::to_string(min) + " and " +
                            std::to_string(max));
      }
      out = x;
    } catch (const YAML::Exception&) {
      error(v, std::string("'") + key + "' must be an integer");
    }
  }
  void integer(const YAML::Node& n, const char* key, int& out, int min, int max) {
    int64_t x = out;
    integer(n, key, x, min, max);
    out = static_cast<int>(x);
  }
  void number(const YAML::Node& n, const char* key, double& out) {
    YAML::Node v = n[key];
    if (!v) return;
    try {
      out = v.as<double>();
      if (out < 0) error(v, std::string("'") + key + "' must not be negative");
    } catch (const YAML::Exception&) {
      error(v, std::string("'") + key + "' must be a number");
    }
  }
  void boolean(const YAML::Node& n, const char* key, bool& out) {
    YAML::Node v = n[key];
    if (!v) return;
    try {
      out = v.as<bool>();
    } catch (const YAML::Exception&) {
      error(v, std::string("'") + key + "' must be true or false");
    }
  }
  void strings(const YAML::Node& n, const char* key, std::vector<std::string>& out) {
    YAML::Node v = n[key];
    if (!v) return;
    if (v.IsScalar()) {
      out = {v.Scalar()};
      return;
    }
    if (!v.IsSequence()) return error(v, std::string("'") + key + "' must be a list of strings");
    out.clear();
    for (const auto& e : v) {
      if (!e.IsScalar()) {
        error(e, std::string("'") + key + "' entries must be strings");
        continue;
      }
      out.push_back(e.Scalar());
    }
  }
  YAML::Node seq(const YAML::Node& root, const char* key) {
    YAML::Node v = root[key];
    if (v && !v.IsSequence()) {
      error(v, std::string("'") + key + "' must be a list");
      return YAML::Node();
    }
    return v;
  }

  void timeouts(const YAML::Node& n, Timeouts& t) {
    if (!n) return;
    if (!expect_map(n, "timeouts")) return;
    allow_keys(n, {"connect_ms", "first_byte_ms", "first_token_ms", "idle_ms", "total_ms"}, "timeouts");
    integer(n, "first_token_ms", t.first_token_ms, 0, 3600000);
    integer(n, "connect_ms", t.connect_ms, 1, 3600000);
    integer(n, "first_byte_ms", t.first_byte_ms, 1, 3600000);
    integer(n, "idle_ms", t.idle_ms, 1, 3600000);
    integer(n, "total_ms", t.total_ms, 1, 86400000);
  }

  void breaker(const YAML::Node& n, upstream::BreakerSettings& b) {
    if (!n) return;
    if (n.IsScalar()) {  // breaker: false
      try {
        b.enabled = n.as<bool>();
      } catch (const YAML::Exception&) {
        error(n, "'breaker' must be a mapping or false");
      }
      return;
    }
    if (!expect_map(n, "breaker")) return;
    allow_keys(n,
               {"enabled", "consecutive_failures", "failure_ratio", "min_requests", "window_ms", "open_ms", "max_open_ms",
                "half_open_probes", "slow_start_ms"},
               "breaker");
    boolean(n, "enabled", b.enabled);
    integer(n, "consecutive_failures", b.consecutive_failures, 1, 1000000);
    number(n, "failure_ratio", b.failure_ratio);
    if (b.failure_ratio <= 0 || b.failure_ratio > 1) error(n["failure_ratio"] ? n["failure_ratio"] : n, "'failure_ratio' must be in (0, 1]");
    integer(n, "min_requests", b.min_requests, 1, 1000000);
    integer(n, "window_ms", b.window_ms, 100, 3600000);
    integer(n, "open_ms", b.open_ms, 1, 3600000);
    integer(n, "max_open_ms", b.max_open_ms, 1, 86400000);
    integer(n, "half_open_probes", b.half_open_probes, 1, 1000);
    integer(n, "slow_start_ms", b.slow_start_ms, 0, 3600000);
    if (b.max_open_ms < b.open_ms) error(n, "'max_open_ms' must be at least 'open_ms'");
  }

  void telemetry(const YAML::Node& t, Telemetry& out) {
    if (!t || !expect_map(t, "telemetry")) return;
    allow_keys(t, {"otlp"}, "telemetry");
    YAML::Node n = t["otlp"];
    if (!n || !expect_map(n, "telemetry.otlp")) return;
    allow_keys(n,
               {"endpoint", "sample_ratio", "batch_size", "flush_interval_ms", "queue_size", "timeout_ms", "headers",
                "include_bodies", "max_body_bytes"},
               "telemetry.otlp");
    Otlp& o = out.otlp;
    str(n, "endpoint", o.endpoint);
    if (o.endpoint.empty()) {
      error(n, "telemetry.otlp needs an 'endpoint' (http://host:port)");
    } else if (auto p = parse_url(o.endpoint); !p || p->tls) {
      error(n["endpoint"], "telemetry.otlp: 'endpoint' must look like http://host:port[/base] (https is not supported)");
    }
    number(n, "sample_ratio", o.sample_ratio);
    if (o.sample_ratio < 0 || o.sample_ratio > 1) error(n["sample_ratio"], "'sample_ratio' must be in [0, 1]");
    integer(n, "batch_size", o.batch_size, 1, 100000);
    integer(n, "flush_interval_ms", o.flush_interval_ms, 10, 600000);
    integer(n, "queue_size", o.queue_size, 1, 10000000);
    integer(n, "timeout_ms", o.timeout_ms, 10, 600000);
    integer(n, "max_body_bytes", o.max_body_bytes, 0, 1 << 20);
    boolean(n, "include_bodies", o.include_bodies);
    if (o.queue_size < o.batch_size) error(n, "'queue_size' must be at least 'batch_size'");
    if (YAML::Node h = n["headers"]; h && expect_map(h, "telemetry.otlp.headers")) {
      for (const auto& kv : h) {
        const std::string k = kv.first.as<std::string>();
        if (!kv.second.IsScalar()) {
          error(kv.second, "telemetry.otlp.headers: '" + k + "' must be a string");
          continue;
        }
        const std::string v = kv.second.as<std::string>();
        if (k.empty() || k.find_first_of(": \r\n") != std::string::npos || v.find_first_of("\r\n") != std::string::npos)
          error(kv.first, "telemetry.otlp.headers: invalid header '" + k + "'");
        else
          o.headers.emplace_back(k, v);
      }
    }
  }

  void shared_limits(const YAML::Node& n, SharedLimits& o) {
    if (!n || !expect_map(n, "shared_limits")) return;
    allow_keys(n,
               {"redis", "on_unavailable", "key_prefix", "connect_timeout_ms", "command_timeout_ms", "sync_interval_ms",
                "slice_fraction", "heartbeat_ms"},
               "shared_limits");
    str(n, "redis", o.redis);
    const std::string_view r = o.redis;
    if (r.empty()) {
      error(n, "shared_limits needs 'redis' (redis://host:port or unix:/path/to/redis.sock)");
    } else if (r.starts_with("unix:")) {
      o.unix_path = std::string(r.substr(r.starts_with("unix://") ? 7 : 5));
      if (o.unix_path.empty() || o.unix_path[0] != '/')
        error(n["redis"], "shared_limits: 'redis' unix socket must be an absolute path (unix:/run/redis.sock)");
    } else if (r.starts_with("redis://")) {
      std::string_view hp = r.substr(8);
      if (!hp.empty() && hp.back() == '/') hp.remove_suffix(1);
      if (hp.find_first_of("/@?") != std::string_view::npos) {
        error(n["redis"], "shared_limits: 'redis' must be redis://host[:port] (no user, password or database)");
      } else if (hp.find(':') == std::string_view::npos || hp.front() == '[') {
        o.host = std::string(hp);
        if (o.host.empty()) error(n["redis"], "shared_limits: 'redis' needs a host (redis://127.0.0.1:6379)");
      } else if (auto h = parse_host_port(hp); h && h->port > 0) {
        o.host = h->host;
        o.port = h->port;
      } else {
        error(n["redis"], "shared_limits: 'redis' must be redis://host[:port] with a port in 1-65535");
      }
    } else {
      error(n["redis"], "shared_limits: 'redis' must start with redis:// or unix:");
    }
    std::string mode = o.fail_open ? "fail_open" : "fail_closed";
    str(n, "on_unavailable", mode);
    if (mode != "fail_open" && mode != "fail_closed")
      error(n["on_unavailable"], "shared_limits: 'on_unavailable' must be fail_open or fail_closed");
    o.fail_open = mode == "fail_open";
    str(n, "key_prefix", o.key_prefix);
    if (o.key_prefix.size() > 64 || o.key_prefix.find_first_of(" \r\n\t") != std::string::npos)
      error(n["key_prefix"], "shared_limits: 'key_prefix' must be at most 64 characters without spaces");
    integer(n, "connect_timeout_ms", o.connect_timeout_ms, 1, 60000);
    integer(n, "command_timeout_ms", o.command_timeout_ms, 1, 60000);
    integer(n, "sync_interval_ms", o.sync_interval_ms, 1, 1000);
    integer(n, "heartbeat_ms", o.heartbeat_ms, 100, 60000);
    number(n, "slice_fraction", o.slice_fraction);
    if (o.slice_fraction <= 0 || o.slice_fraction > 0.5)
      error(n["slice_fraction"] ? n["slice_fraction"] : n, "shared_limits: 'slice_fraction' must be in (0, 0.5]");
  }

  void load(const YAML::Node& root, Config& c) {
    if (root.IsNull()) return;
    if (!expect_map(root, "the configuration")) return;
    allow_keys(root,
               {"listen", "admin_listen", "threads", "data_dir", "allow_public_unauthenticated", "limits",
                "request_log", "upstreams", "pools", "routes", "fallbacks", "long_context", "response_cache", "api_keys", "tenants",
                "admin", "cors", "responses", "flags", "autoscale", "alarms", "telemetry", "shared_limits", "store", "replica"},
               "the configuration");
    str(root, "listen", c.listen);
    str(root, "store", c.store);
    if (YAML::Node n = root["replica"]; n && expect_map(n, "replica")) {
      allow_keys(n, {"id", "controller_lease_ms"}, "replica");
      str(n, "id", c.replica.id);
      if (c.replica.id.size() > 200 || c.replica.id.find_first_of(" \r\n\t\"") != std::string::npos)
        error(n["id"], "replica: 'id' must be at most 200 characters without spaces or quotes");
      integer(n, "controller_lease_ms", c.replica.controller_lease_ms, 1000, 600000);
    }
    str(root, "admin_listen", c.admin_listen);
    integer(root, "threads", c.threads, 0, 256);
    str(root, "data_dir", c.data_dir);
    boolean(root, "allow_public_unauthenticated", c.allow_public_unauthenticated);
    if (YAML::Node l = root["limits"]; l && expect_map(l, "limits")) {
      allow_keys(l,
                 {"max_body_bytes", "max_header_bytes", "max_response_bytes", "max_sse_event_bytes",
                  "header_timeout_ms", "keepalive_timeout_ms", "client_write_timeout_ms", "drain_timeout_ms",
                  "max_inflight_per_worker", "max_attempts", "retry_budget", "retry_backoff_base_ms",
                  "retry_backoff_cap_ms", "unavailable_wait_ms"},
                 "limits");
      Limits& x = c.limits;
      integer(l, "max_body_bytes", x.max_body_bytes, 1024, int64_t(1) << 32);
      integer(l, "max_header_bytes", x.max_header_bytes, 1024, 1 << 20);
      integer(l, "max_response_bytes", x.max_response_bytes, 1024, int64_t(1) << 32);
      integer(l, "max_sse_event_bytes", x.max_sse_event_bytes, 1024, 1 << 28);
      integer(l, "header_timeout_ms", x.header_timeout_ms, 100, 3600000);
      integer(l, "keepalive_timeout_ms", x.keepalive_timeout_ms, 100, 3600000);
      integer(l, "client_write_timeout_ms", x.client_write_timeout_ms, 100, 3600000);
      integer(l, "drain_timeout_ms", x.drain_timeout_ms, 0, 3600000);
      integer(l, "max_inflight_per_worker", x.max_inflight_per_worker, 1, 10000000);
      integer(l, "max_attempts", x.max_attempts, 1, 10);
      integer(l, "retry_backoff_base_ms", x.retry_backoff_base_ms, 0, 60000);
      integer(l, "retry_backoff_cap_ms", x.retry_backoff_cap_ms, 0, 600000);
      integer(l, "unavailable_wait_ms", x.unavailable_wait_ms, 0, 600000);
      if (YAML::Node b = l["retry_budget"]; b && expect_map(b, "retry_budget")) {
        allow_keys(b, {"ratio", "min_per_second", "window_ms"}, "retry_budget");
        number(b, "ratio", x.retry_budget.ratio);
        integer(b, "min_per_second", x.retry_budget.min_per_second, 0, 1000000);
        integer(b, "window_ms", x.retry_budget.window_ms, 1000, 60000);
      }
    }
    telemetry(root["telemetry"], c.telemetry);
    shared_limits(root["shared_limits"], c.shared_limits);
    if (YAML::Node l = root["request_log"]; l && expect_map(l, "request_log")) {
      allow_keys(l, {"enabled", "path", "queue_capacity", "bodies"}, "request_log");
      boolean(l, "enabled", c.request_log.enabled);
      boolean(l, "bodies", c.request_log.bodies);
      str(l, "path", c.request_log.path);
      integer(l, "queue_capacity", c.request_log.queue_capacity, 16, 100000000);
    }
    if (YAML::Node ups = seq(root, "upstreams")) {
      for (const auto& n : ups) {
        if (!expect_map(n, "an upstream")) continue;
        allow_keys(n,
                   {"name", "url", "api_key_env", "api_key_file", "api_key_envs", "models", "tls_verify", "ca_file",
                    "max_idle_connections", "timeouts", "price", "breaker", "health_check", "prefill", "load_metrics", "api", "anthropic_version", "responses"},
                   "an upstream");
        Upstream u;
        str(n, "name", u.name);
        str(n, "url", u.url);
        if (u.name.empty()) error(n, "upstream needs a 'name'");
        if (u.url.empty()) {
          error(n, "upstream '" + u.name + "' needs a 'url'");
        } else if (auto p = parse_url(u.url)) {
          u.parsed = *p;
        } else {
          error(n["url"], "upstream '" + u.name + "': 'url' must look like http(s)://host[:port][/base]");
        }
        str(n, "api_key_env", u.api_key_env);
        str(n, "api_key_file", u.api_key_file);
        strings(n, "models", u.models);
        boolean(n, "tls_verify", u.tls_verify);
        str(n, "ca_file", u.ca_file);
        integer(n, "max_idle_connections", u.max_idle_connections, 0, 100000);
        timeouts(n["timeouts"], u.timeouts);
        breaker(n["breaker"], u.breaker);
        boolean(n, "prefill", u.prefill);
        if (n["api"]) {
          std::string api;
          str(n, "api", api);
          if (api == "anthropic") {
            u.api = Upstream::Api::kAnthropic;
          } else if (api != "openai") {
            error(n["api"], "upstream '" + u.name + "': api must be 'openai' or 'anthropic'");
          }
        }
        str(n, "anthropic_version", u.anthropic_version);
        boolean(n, "responses", u.responses);
        if (YAML::Node lm = n["load_metrics"]; lm && expect_map(lm, "load_metrics")) {
          allow_keys(lm, {"enabled", "interval_ms", "path"}, "load_metrics");
          u.load_metrics.enabled = true;
          boolean(lm, "enabled", u.load_metrics.enabled);
          integer(lm, "interval_ms", u.load_metrics.interval_ms, 100, 600000);
          str(lm, "path", u.load_metrics.path);
          if (u.load_metrics.path.empty() || u.load_metrics.path[0] != '/')
            error(lm["path"] ? lm["path"] : lm, "'path' must start with /");
        }
        if (YAML::Node hc = n["health_check"]; hc && expect_map(hc, "health_check")) {
          allow_keys(hc, {"enabled", "interval_ms", "timeout_ms", "model", "unhealthy_after"}, "health_check");
          u.health_check.enabled = true;
          boolean(hc, "enabled", u.health_check.enabled);
          integer(hc, "interval_ms", u.health_check.interval_ms, 100, 3600000);
          integer(hc, "timeout_ms", u.health_check.timeout_ms, 10, 600000);
          str(hc, "model", u.health_check.model);
          integer(hc, "unhealthy_after", u.health_check.unhealthy_after, 1, 1000);
          if (u.health_check.model.empty()) u.health_check.model = u.models.empty() ? "health-check" : u.models[0];
          if (u.health_check.enabled && !u.breaker.enabled)
            error(hc, "upstream '" + u.name + "': health_check ejects through the breaker; it needs 'breaker' on");
        }
        if (YAML::Node p = n["price"]; p && expect_map(p, "price")) {
          allow_keys(p, {"input_per_1m", "output_per_1m", "cached_input_per_1m", "per_hour", "concurrency"}, "price");
          number(p, "input_per_1m", u.price_input_per_1m);
          number(p, "output_per_1m", u.price_output_per_1m);
          number(p, "cached_input_per_1m", u.price_cached_input_per_1m);
          number(p, "per_hour", u.price_per_hour);
          number(p, "concurrency", u.price_concurrency);
          if (u.price_input_per_1m < 0 || u.price_output_per_1m < 0 || u.price_per_hour < 0)
            error(p, "prices cannot be negative");
          if (p["cached_input_per_1m"] && u.price_cached_input_per_1m < 0) error(p["cached_input_per_1m"], "prices cannot be negative");
          if (u.price_concurrency < 1) error(p["concurrency"], "'concurrency' (requests served at once) must be at least 1");
        }
        // Several API keys of one provider: one upstream per key (each with its own breaker,
        // Retry-After and load), and a pool with the upstream's name spreading over them.
        std::vector<std::string> key_envs;
        strings(n, "api_key_envs", key_envs);
        if (key_envs.empty()) {
          c.upstreams.push_back(std::move(u));
          continue;
        }
        if (!u.api_key_env.empty() || !u.api_key_file.empty())
          error(n["api_key_envs"], "upstream '" + u.name + "': give 'api_key_envs' or one key, not both");
        Pool keys;
        keys.name = u.name;
        keys.balance.policy = upstream::Policy::kRoundRobin;
        keys.balance.max_ejected_share = 1.0;  // every key may be out (each is its own quota)
        for (size_t k = 0; k < key_envs.size(); ++k) {
          Upstream one = u;
          one.name = u.name + "#" + std::to_string(k + 1);
          one.api_key_env = key_envs[k];
          keys.upstreams.push_back(one.name);
          c.upstreams.push_back(std::move(one));
        }
        c.pools.push_back(std::move(keys));
        pool_marks_.push_back(at(n));
      }
    }
    if (YAML::Node ps = seq(root, "pools")) {
      for (const auto& n : ps) {
        if (!expect_map(n, "a pool")) continue;
        allow_keys(n,
                   {"name", "upstreams", "balance", "bounded_load", "affinity_slack", "max_ejected_percent", "affinity_header",
                    "prefix_bytes", "max_inflight", "max_tokens_inflight", "shed_at", "adaptive_concurrency", "queue",
                    "overflow", "overflow_model"},
                   "a pool");
        Pool p;
        str(n, "name", p.name);
        if (p.name.empty()) error(n, "pool needs a 'name'");
        strings(n, "upstreams", p.upstreams);
        if (p.upstreams.empty()) error(n, "pool '" + p.name + "' needs 'upstreams'");
        std::string policy = "ordered";
        str(n, "balance", policy);
        if (auto pol = upstream::policy_from_name(policy)) {
          p.balance.policy = *pol;
        } else {
          error(n["balance"], "pool '" + p.name + "': 'balance' must be ordered, round_robin, least_request, "
                              "least_tokens, prefix or session, got '" + policy + "'");
        }
        number(n, "bounded_load", p.balance.bounded_load);
        if (n["bounded_load"] && p.balance.bounded_load < 1) error(n["bounded_load"], "'bounded_load' must be at least 1");
        double pct = p.balance.max_ejected_share * 100;
        number(n, "max_ejected_percent", pct);
        if (pct > 100) error(n["max_ejected_percent"], "'max_ejected_percent' must be between 0 and 100");
        p.balance.max_ejected_share = pct / 100;
        integer(n, "affinity_slack", p.balance.affinity_slack, 0, 1000000);
        str(n, "affinity_header", p.balance.affinity_header);
        integer(n, "prefix_bytes", p.balance.prefix_bytes, 16, 1 << 20);
        admission::GateSettings& g = p.admission;
        integer(n, "max_inflight", g.max_inflight, 0, 10000000);
        integer(n, "max_tokens_inflight", g.max_tokens, 0, int64_t(1) << 40);
        number(n, "shed_at", g.shed_at);
        if (n["shed_at"] && !(g.shed_at > 0 && g.shed_at <= 1)) error(n["shed_at"], "'shed_at' must be in (0, 1]");
        if (YAML::Node a = n["adaptive_concurrency"]) {
          if (a.IsScalar()) {
            boolean(n, "adaptive_concurrency", g.adaptive);
          } else if (expect_map(a, "adaptive_concurrency")) {
            allow_keys(a, {"enabled", "min_limit", "tolerance", "smoothing"}, "adaptive_concurrency");
            g.adaptive = true;
            boolean(a, "enabled", g.adaptive);
            integer(a, "min_limit", g.min_limit, 1, 1000000);
            number(a, "tolerance", g.tolerance);
            number(a, "smoothing", g.smoothing);
            if (a["tolerance"] && !(g.tolerance >= 1 && g.tolerance <= 10)) error(a["tolerance"], "'tolerance' must be between 1 and 10");
            if (a["smoothing"] && !(g.smoothing > 0 && g.smoothing <= 1)) error(a["smoothing"], "'smoothing' must be in (0, 1]");
          }
          if (g.adaptive && g.min_limit > (g.max_inflight > 0 ? g.max_inflight : 1000))
            error(a, "adaptive_concurrency: 'min_limit' is above the pool's max_inflight (1000 without one)");
        }
        if (YAML::Node q = n["queue"]; q && expect_map(q, "queue")) {
          allow_keys(q, {"max", "timeout_ms", "critical_timeout_ms"}, "queue");
          integer(q, "max", g.queue_max, 0, 1000000);
          integer(q, "timeout_ms", g.queue_timeout_ms, 0, 600000);
          integer(q, "critical_timeout_ms", g.critical_timeout_ms, 0, 600000);
        }
        str(n, "overflow", p.balance.overflow);
        std::string overflow_model;
        str(n, "overflow_model", overflow_model);
        if (!overflow_model.empty()) append_json_string(p.balance.overflow_model, overflow_model);
        if (!p.balance.overflow.empty() && p.balance.overflow == p.name) error(n["overflow"], "a pool cannot overflow to itself");
        if (!p.balance.overflow.empty() && !g.enabled())
          error(n["overflow"], "'overflow' needs the pool's capacity: set max_inflight, max_tokens_inflight or adaptive_concurrency");
        if (p.balance.policy == upstream::Policy::kSession && p.balance.affinity_header.empty())
          p.balance.affinity_header = "x-session-id";
        c.pools.push_back(std::move(p));
        pool_marks_.push_back(at(n));
      }
    }
    if (YAML::Node rs = seq(root, "routes")) {
      for (const auto& n : rs) {
        if (!expect_map(n, "a route")) continue;
        allow_keys(n, {"name", "upstream", "upstreams", "model"}, "a route");
        Route r;
        str(n, "name", r.name);
        if (r.name.empty()) error(n, "route needs a 'name'");
        if (n["upstream"]) strings(n, "upstream", r.upstreams);
        if (n["upstreams"]) strings(n, "upstreams", r.upstreams);
        if (r.upstreams.empty()) error(n, "route '" + r.name + "' needs 'upstream' or 'upstreams'");
        str(n, "model", r.model);
        c.routes.push_back(std::move(r));
        route_marks_.push_back(at(n));
      }
    }
    if (YAML::Node ls = seq(root, "long_context")) {
      for (const auto& n : ls) {
        if (!expect_map(n, "a long_context entry")) continue;
        allow_keys(n, {"route", "above_tokens", "upstream"}, "a long_context entry");
        LongContext lc;
        str(n, "route", lc.route);
        str(n, "upstream", lc.upstream);
        integer(n, "above_tokens", lc.above_tokens, 1, int64_t(1) << 30);
        if (lc.route.empty() || lc.upstream.empty()) error(n, "a long_context entry needs 'route' and 'upstream'");
        c.long_context.push_back(std::move(lc));
        long_context_marks_.push_back(at(n));
      }
    }
    if (YAML::Node fs = seq(root, "fallbacks")) {
      for (const auto& n : fs) {
        if (!expect_map(n, "a fallback")) continue;
        allow_keys(n, {"route", "chain", "on", "mid_stream", "max_resumes"}, "a fallback");
        Fallback f;
        str(n, "route", f.route);
        if (f.route.empty()) error(n, "fallback needs a 'route'");
        if (n["on"]) {
          strings(n, "on", f.on);
          for (const auto& o : f.on)
            if (failure_class_named(o) == FailureClass::kNone)
              error(n["on"], "fallback 'on' entries are connect, timeout, 5xx, 429, unavailable or context_length, got '" +
                                 o + "'");
        }
        if (YAML::Node ch = seq(n, "chain")) {
          for (const auto& st : ch) {
            if (!expect_map(st, "a fallback step")) continue;
            allow_keys(st, {"upstream", "model", "static", "last_good"}, "a fallback step");
            FallbackStep step;
            str(st, "upstream", step.upstream);
            str(st, "model", step.model);
            str(st, "static", step.static_text);
            boolean(st, "last_good", step.last_good);
            if (st["last_good"] && !step.last_good) error(st["last_good"], "'last_good' can only be true");
            if (int(!step.upstream.empty()) + int(!step.static_text.empty()) + int(step.last_good) != 1)
              error(st, "a fallback step is one of {upstream, model}, {last_good: true} or {static: \"...\"}");
            f.chain.push_back(std::move(step));
          }
        }
        str(n, "mid_stream", f.mid_stream);
        if (f.mid_stream != "error" && f.mid_stream != "restart" && f.mid_stream != "continue")
          error(n["mid_stream"], "'mid_stream' is error, restart or continue, got '" + f.mid_stream + "'");
        integer(n, "max_resumes", f.max_resumes, 1, 10);
        if (f.chain.empty() && f.mid_stream == "error")
          error(n, "fallback for route '" + f.route + "' needs a non-empty 'chain' (or a 'mid_stream' policy)");
        c.fallbacks.push_back(std::move(f));
        fallback_marks_.push_back(at(n));
      }
    }
    if (YAML::Node rc = root["response_cache"]; rc && expect_map(rc, "response_cache")) {
      allow_keys(rc, {"max_bytes", "routes", "last_good_max_bytes", "last_good_ttl_ms"}, "response_cache");
      integer(rc, "max_bytes", c.response_cache.max_bytes, 4096, int64_t(1) << 36);
      integer(rc, "last_good_max_bytes", c.response_cache.last_good_max_bytes, 4096, int64_t(1) << 36);
      integer(rc, "last_good_ttl_ms", c.response_cache.last_good_ttl_ms, 1000, int64_t(365) * 24 * 3600 * 1000);
      if (YAML::Node rs2 = seq(rc, "routes")) {
        for (const auto& n : rs2) {
          if (!expect_map(n, "a cached route")) continue;
          allow_keys(n, {"route", "ttl_ms", "shared_across_tenants"}, "a cached route");
          CacheRoute cr;
          str(n, "route", cr.route);
          if (cr.route.empty()) error(n, "a cached route needs a 'route'");
          integer(n, "ttl_ms", cr.ttl_ms, 1, int64_t(30) * 86400000);
          boolean(n, "shared_across_tenants", cr.shared_across_tenants);
          c.response_cache.routes.push_back(std::move(cr));
        }
      }
    }
    if (YAML::Node cn = root["cors"]; cn && expect_map(cn, "cors")) {
      allow_keys(cn, {"allowed_origins", "max_age_s"}, "cors");
      strings(cn, "allowed_origins", c.cors.allowed_origins);
      for (const auto& o : c.cors.allowed_origins)
        if (o != "*" && o.find("://") == std::string::npos)
          error(cn["allowed_origins"], "cors.allowed_origins: '" + o + "' is not an origin (scheme://host[:port]) or '*'");
      integer(cn, "max_age_s", c.cors.max_age_s, 0, 86400);
    }
    if (YAML::Node fn = root["flags"]; fn && expect_map(fn, "flags")) {
      allow_keys(fn, {"context_headers"}, "flags");
      strings(fn, "context_headers", c.flags.context_headers);
      for (auto& h : c.flags.context_headers) {
        for (auto& ch : h) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (h == "authorization" || h == "x-api-key" || h == "cookie")
          error(fn["context_headers"], "flags.context_headers: '" + h + "' carries credentials; it cannot be a flag attribute");
      }
    }
    if (YAML::Node an = root["autoscale"]; an && expect_map(an, "autoscale")) {
      allow_keys(an, {"target_tokens_in_flight", "target_queue", "ttft_p99_slo_ms", "ttft_window_s", "min_replicas",
                      "max_replicas", "scale_down_stabilization_s", "scale_up_stabilization_s", "tolerance"},
                 "autoscale");
      Autoscale& a = c.autoscale;
      number(an, "target_tokens_in_flight", a.target_tokens_in_flight);
      number(an, "target_queue", a.target_queue);
      number(an, "ttft_p99_slo_ms", a.ttft_p99_slo_ms);
      integer(an, "ttft_window_s", a.ttft_window_s, 5, 3600);
      integer(an, "min_replicas", a.min_replicas, 1, 100000);
      integer(an, "max_replicas", a.max_replicas, 1, 100000);
      integer(an, "scale_down_stabilization_s", a.scale_down_stabilization_s, 0, 3600);
      integer(an, "scale_up_stabilization_s", a.scale_up_stabilization_s, 0, 3600);
      number(an, "tolerance", a.tolerance);
      if (a.tolerance >= 1) error(an["tolerance"], "'tolerance' must be below 1");
      if (a.max_replicas < a.min_replicas) error(an, "autoscale: 'max_replicas' must be at least 'min_replicas'");
    }
    if (YAML::Node an = root["alarms"]) {
      c.alarms = std::make_shared<const std::vector<alarm::Rule>>(alarm::parse_rules(an, file_, r_.errors));
      c.alarm_refusal_routes = alarm::refusal_routes(*c.alarms);
    }
    if (YAML::Node rn = root["responses"]; rn && expect_map(rn, "responses")) {
      allow_keys(rn, {"store_max_bytes", "store_ttl_s"}, "responses");
      integer(rn, "store_max_bytes", c.responses.max_bytes, 0, int64_t(1) << 36);
      integer(rn, "store_ttl_s", c.responses.ttl_s, 1, int64_t(30) * 86400);
    }
    if (YAML::Node ts = seq(root, "tenants")) {
      for (const auto& n : ts) {
        if (!expect_map(n, "a tenant")) continue;
        allow_keys(n, {"name", "rpm", "tpm", "max_concurrent", "max_input_tokens", "reserve_output_tokens", "tier",
                       "budget_usd_per_day", "budget_usd_per_month", "routes"},
                   "a tenant");
        Tenant t;
        using B = TenantBounds;
        str(n, "name", t.name);
        if (t.name.empty()) error(n, "a tenant needs a 'name'");
        else if (!valid_tenant_name(t.name)) error(n["name"], "a tenant name is 1-64 of A-Z a-z 0-9 . _ - (starting with a letter or digit)");
        integer(n, "rpm", t.limits.rpm, 0, B::kRpm);
        integer(n, "tpm", t.limits.tpm, 0, B::kTpm);
        integer(n, "max_concurrent", t.limits.max_concurrent, 0, B::kConcurrent);
        integer(n, "max_input_tokens", t.max_input_tokens, 0, B::kInputTokens);
        integer(n, "reserve_output_tokens", t.reserve_output_tokens, 0, B::kReserveOutput);
        number(n, "budget_usd_per_day", t.budget_usd_per_day);
        number(n, "budget_usd_per_month", t.budget_usd_per_month);
        for (const char* k : {"budget_usd_per_day", "budget_usd_per_month"})
          if (n[k] && n[k].IsScalar() && (n[k].as<double>(0) > B::kBudgetUsd || !std::isfinite(n[k].as<double>(0))))
            error(n[k], std::string("'") + k + "' must be between 0 and 1e9 dollars");
        strings(n, "routes", t.routes);
        std::string tier = "standard";
        str(n, "tier", tier);
        if (auto tr = admission::tier_from_name(tier)) {
          t.tier = *tr;
        } else {
          error(n["tier"], "'tier' is critical, standard or sheddable, got '" + tier + "'");
        }
        for (const Tenant& o : c.tenants)
          if (o.name == t.name && !t.name.empty()) error(n, "tenant '" + t.name + "' is defined twice");
        c.tenants.push_back(std::move(t));
      }
    }
    if (YAML::Node ks = seq(root, "api_keys")) {
      for (const auto& n : ks) {
        if (!expect_map(n, "an api key")) continue;
        allow_keys(n, {"tenant", "key_sha256", "key_env"}, "an api key");
        ApiKey k;
        str(n, "tenant", k.tenant);
        str(n, "key_sha256", k.key_sha256);
        std::string env;
        str(n, "key_env", env);
        if (k.tenant.empty()) error(n, "api key needs a 'tenant'");
        if (!env.empty()) {
          const char* v = std::getenv(env.c_str());
          if (!v || !*v) {
            error(n["key_env"], "environment variable " + env + " is not set");
          } else {
            k.key_sha256 = sha256_hex(v);
          }
        } else if (!normalize_sha256(k.key_sha256)) {
          error(n, "api key needs 'key_sha256' (64 hex characters) or 'key_env'");
        }
        c.api_keys.push_back(std::move(k));
      }
    }
    if (YAML::Node a = root["admin"]; a && expect_map(a, "admin")) {
      allow_keys(a, {"tokens"}, "admin");
      if (YAML::Node ts = seq(a, "tokens")) {
        for (const auto& n : ts) {
          if (!expect_map(n, "an admin token")) continue;
          allow_keys(n, {"name", "role", "token_sha256"}, "an admin token");
          AdminToken t;
          str(n, "name", t.name);
          str(n, "role", t.role);
          str(n, "token_sha256", t.token_sha256);
          if (t.role != "viewer" && t.role != "operator" && t.role != "admin")
            error(n, "admin token role must be viewer, operator or admin");
          if (!normalize_sha256(t.token_sha256)) error(n, "admin token needs 'token_sha256' (64 hex characters)");
          c.admin_tokens.push_back(std::move(t));
        }
      }
    }
  }

  std::vector<std::string> route_marks_;  // file:line:col of each route, for validate()
  std::vector<std::string> pool_marks_;   // and of each pool
  std::vector<std::string> fallback_marks_;  // and of each fallback
  std::vector<std::string> long_context_marks_;

 private:
  std::string file_;
  LoadResult& r_;
};

}  // namespace

LoadResult load_string(const std::string& yaml, const std::string& source_name) {
  LoadResult r;
  r.config.source = source_name;
  try {
    YAML::Node root = YAML::Load(yaml);
    Walker w(source_name, r);
    w.load(root, r.config);
    r.route_locations = w.route_marks_;
    r.pool_locations = w.pool_marks_;
    r.fallback_locations = w.fallback_marks_;
    r.long_context_locations = w.long_context_marks_;
  } catch (const YAML::Exception& e) {
    std::ostringstream os;
    os << source_name;
    if (!e.mark.is_null()) os << ":" << e.mark.line + 1 << ":" << e.mark.column + 1;
    os << ": " << e.msg;
    r.errors.push_back(os.str());
    return r;
  }
  return r;
}

LoadResult load_file(const std::string& path) {
  auto content = read_file(path);
  if (!content) {
    LoadResult r;
    r.errors.push_back(path + ": cannot open file");
    return r;
  }
  return load_string(*content, path);
}

void validate(LoadResult& r) {
  Config& c = r.config;
  const std::string& f = c.source;
  std::set<std::string> names;
  for (const auto& u : c.upstreams) {
    if (!u.name.empty() && !names.insert(u.name).second) r.errors.push_back(f + ": duplicate upstream name '" + u.name + "'");
    if (!u.api_key_env.empty()) {
      const char* v = std::getenv(u.api_key_env.c_str());
      if (!v || !*v)
        r.warnings.push_back(f + ": upstream '" + u.name + "': environment variable " + u.api_key_env +
                             " is not set (requests will be sent without a key)");
    }
    if (!u.api_key_file.empty()) {
      std::ifstream kf(u.api_key_file);
      if (!kf) r.errors.push_back(f + ": upstream '" + u.name + "': cannot read api_key_file " + u.api_key_file);
    }
  }
  std::set<std::string> pools;
  for (size_t i = 0; i < c.pools.size(); ++i) {
    const Pool& p = c.pools[i];
    std::string where = i < r.pool_locations.size() ? r.pool_locations[i] : f;
    if (names.count(p.name)) r.errors.push_back(where + ": pool '" + p.name + "' has the name of an upstream");
    if (!p.name.empty() && !pools.insert(p.name).second) r.errors.push_back(where + ": duplicate pool name '" + p.name + "'");
    std::set<std::string> members;
    for (const auto& un : p.upstreams) {
      if (!names.count(un))
        r.errors.push_back(where + ": pool '" + p.name + "' refers to unknown upstream '" + un + "'" +
                           (std::any_of(c.pools.begin(), c.pools.end(), [&](const Pool& q) { return q.name == un; })
                                ? " (a pool lists upstreams, not other pools)"
                                : ""));
      if (!members.insert(un).second) r.errors.push_back(where + ": pool '" + p.name + "' lists upstream '" + un + "' twice");
    }
  }
  std::set<std::string> routes;
  for (size_t i = 0; i < c.routes.size(); ++i) {
    const Route& rt = c.routes[i];
    std::string where = i < r.route_locations.size() ? r.route_locations[i] : f;
    for (const auto& un : rt.upstreams) {
      if (!names.count(un) && !pools.count(un))
        r.errors.push_back(where + ": route '" + rt.name + "' refers to unknown upstream or pool '" + un + "'");
    }
    if (!rt.name.empty() && !routes.insert(rt.name).second) r.errors.push_back(f + ": duplicate route name '" + rt.name + "'");
  }
  std::set<std::string> long_routes;
  for (size_t i = 0; i < c.long_context.size(); ++i) {
    const LongContext& lc = c.long_context[i];
    std::string where = i < r.long_context_locations.size() ? r.long_context_locations[i] : f;
    if (!long_routes.insert(lc.route).second)
      r.errors.push_back(where + ": route '" + lc.route + "' has two long_context entries");
    if (!lc.upstream.empty() && !names.count(lc.upstream) && !pools.count(lc.upstream))
      r.errors.push_back(where + ": long_context for route '" + lc.route + "' refers to unknown upstream or pool '" +
                         lc.upstream + "'");
  }
  std::set<std::string> fallback_routes;
  for (size_t i = 0; i < c.fallbacks.size(); ++i) {
    const Fallback& fb = c.fallbacks[i];
    std::string where = i < r.fallback_locations.size() ? r.fallback_locations[i] : f;
    if (!fallback_routes.insert(fb.route).second)
      r.errors.push_back(where + ": route '" + fb.route + "' has two fallback chains");
    std::set<std::string> seen;
    for (const auto& st : fb.chain) {
      if (st.upstream.empty()) continue;
      if (!names.count(st.upstream) && !pools.count(st.upstream))
        r.errors.push_back(where + ": fallback for route '" + fb.route + "' refers to unknown upstream or pool '" +
                           st.upstream + "'");
      // The same target twice would only repeat a failure: a loop, not a fallback.
      if (!seen.insert(st.upstream + "\x1f" + st.model).second)
        r.errors.push_back(where + ": fallback for route '" + fb.route + "' lists '" + st.upstream +
                           (st.model.empty() ? "" : "' model '" + st.model) + "' twice (a cycle)");
    }
    for (const Route& rt : c.routes)
      if (rt.name == fb.route)
        for (const auto& st : fb.chain)
          if (!st.upstream.empty() && rt.upstreams.size() == 1 && rt.upstreams[0] == st.upstream &&
              (st.model.empty() || st.model == rt.model))
            r.errors.push_back(where + ": fallback for route '" + fb.route + "' falls back to the route's own target '" +
                               st.upstream + "' (a cycle)");
  }
  if (!parse_host_port(c.listen)) r.errors.push_back(f + ": 'listen' must be HOST:PORT, got '" + c.listen + "'");
  if (!parse_host_port(c.admin_listen))
    r.errors.push_back(f + ": 'admin_listen' must be HOST:PORT, got '" + c.admin_listen + "'");
  if (c.upstreams.empty()) r.errors.push_back(f + ": no upstreams configured (add 'upstreams:' or --upstream NAME=URL)");
}

std::string add_flag_upstream(Config& cfg, const std::string& spec) {
  size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0) return "--upstream expects NAME=URL, got '" + spec + "'";
  Upstream u;
  u.name = spec.substr(0, eq);
  u.url = spec.substr(eq + 1);
  auto p = parse_url(u.url);
  if (!p) return "--upstream " + u.name + ": URL must look like http(s)://host[:port][/base], got '" + u.url + "'";
  u.parsed = *p;
  for (const auto& existing : cfg.upstreams) {
    if (existing.name == u.name) return "--upstream " + u.name + ": duplicate name";
  }
  cfg.upstreams.push_back(std::move(u));
  return "";
}

}  // namespace sluice::config
