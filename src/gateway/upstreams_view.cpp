#include "gateway/upstreams_view.hpp"

#include <array>

#include "core/json_object.hpp"
#include "core/strings.hpp"

namespace sluice::gateway {

namespace {

std::string iso_or_null(int64_t ms) { return ms > 0 ? std::to_string(ms) : std::string("null"); }

std::string quoted(std::string_view s) {
  std::string o;
  append_json_string(o, s);
  return o;
}

const char* const kTiers[] = {"critical", "standard", "sheddable"};

std::string by_tier(const std::array<int64_t, 3>& v) {
  JsonObject o;
  for (size_t t = 0; t < 3; ++t) o.num(kTiers[t], v[t]);
  return o.done();
}

// A pool's admission: its limit (learned or fixed), what is in flight and queued, and what
// was admitted, queued, shed and timed out by tier.
std::string gate_json(const config::Pool& p, admission::Gate& g) {
  admission::GateView v = g.view();
  return JsonObject()
      .raw("adaptive", p.admission.adaptive ? "true" : "false")
      .raw("limit", num_text(v.limit))
      .num("max_inflight", p.admission.max_inflight)
      .num("max_tokens_inflight", p.admission.max_tokens)
      .raw("shed_at", num_text(p.admission.shed_at))
      .num("in_flight", v.in_flight)
      .num("tokens_in_flight", v.tokens_in_flight)
      .raw("waiting", by_tier(v.waiting))
      .raw("admitted_total", by_tier(v.admitted))
      .raw("queued_total", by_tier(v.queued))
      .raw("shed_total", by_tier(v.shed))
      .raw("queue_timeouts_total", by_tier(v.timed_out))
      .num("overflowed_total", v.overflowed)
      .str("overflow", p.balance.overflow)
      .raw("ttft_ms", JsonObject().raw("baseline", num_text(v.baseline_ttft_ms)).raw("recent", num_text(v.recent_ttft_ms)).done())
      .raw("drain_per_second", num_text(v.drain_per_s))
      .done();
}

// sluice_pool_* series of every pool with admission control.
std::string pools_prometheus(const config::Snapshot& snap) {
  std::string limit = "# HELP sluice_pool_limit A pool's request limit now (adaptive or fixed).\n# TYPE sluice_pool_limit gauge\n";
  std::string inflight = "# HELP sluice_pool_in_flight Requests holding a slot of the pool.\n# TYPE sluice_pool_in_flight gauge\n";
  std::string waiting = "# HELP sluice_pool_queued Requests waiting for a slot, by tier.\n# TYPE sluice_pool_queued gauge\n";
  std::string admitted = "# HELP sluice_pool_admitted_total Requests given a slot, by tier.\n# TYPE sluice_pool_admitted_total counter\n";
  std::string shed = "# HELP sluice_pool_shed_total Requests refused by the pool's admission control, by tier (queue timeouts included).\n# TYPE sluice_pool_shed_total counter\n";
  std::string timeouts = "# HELP sluice_pool_queue_timeouts_total Queued requests refused at their deadline, by tier (a subset of shed).\n# TYPE sluice_pool_queue_timeouts_total counter\n";
  std::string over = "# HELP sluice_pool_overflowed_total Requests sent to the pool's overflow target.\n# TYPE sluice_pool_overflowed_total counter\n";
  bool any = false;
  for (const auto& p : snap.config().pools) {
    if (!p.balance.gate) continue;
    any = true;
    admission::GateView v = p.balance.gate->view();
    const std::string l = "pool=" + quoted(p.name);
    limit += "sluice_pool_limit{" + l + "} " + num_text(v.limit) + "\n";
    inflight += "sluice_pool_in_flight{" + l + "} " + std::to_string(v.in_flight) + "\n";
    over += "sluice_pool_overflowed_total{" + l + "} " + std::to_string(v.overflowed) + "\n";
    for (size_t t = 0; t < 3; ++t) {
      const std::string lt = "{" + l + ",tier=\"" + kTiers[t] + "\"} ";
      waiting += "sluice_pool_queued" + lt + std::to_string(v.waiting[t]) + "\n";
      admitted += "sluice_pool_admitted_total" + lt + std::to_string(v.admitted[t]) + "\n";
      shed += "sluice_pool_shed_total" + lt + std::to_string(v.shed[t]) + "\n";
      timeouts += "sluice_pool_queue_timeouts_total" + lt + std::to_string(v.timed_out[t]) + "\n";
    }
  }
  return any ? limit + inflight + waiting + admitted + shed + timeouts + over : std::string();
}

}  // namespace

std::string upstreams_json(const config::Snapshot& snap, upstream::RetryBudget& budget, int64_t now_ms) {
  std::string ups = "[";
  for (const auto& u : snap.upstreams()) {
    upstream::HealthView v = u.health->view(now_ms);
    if (ups.size() > 1) ups += ",";
    ups += JsonObject()
               .str("name", u.cfg->name)
               .str("url", u.cfg->url)
               .str("state", upstream::state_name(v.state))
               .raw("since_ms", iso_or_null(v.since_ms))
               .raw("reason", v.reason.empty() ? std::string("null") : quoted(v.reason))
               .raw("next_probe_ms", iso_or_null(v.next_probe_ms))
               .raw("retry_after_until_ms", iso_or_null(v.retry_after_ms))
               .num("opens", v.opens)
               .num("window_requests", v.requests)
               .num("window_failures", v.failures)
               .num("outstanding_requests", v.outstanding)
               .num("outstanding_tokens", v.outstanding_tokens)
               .raw("breaker", u.cfg->breaker.enabled ? "true" : "false")
               .raw("weight", num_text(v.weight))
               .raw("reported_load", v.reported_at_ms == 0
                                         ? std::string("null")
                                         : JsonObject()
                                               .num("at_ms", v.reported_at_ms)
                                               .raw("waiting", num_text(v.reported_waiting))
                                               .raw("running", num_text(v.reported_running))
                                               .raw("kv_cache_usage", v.reported_kv_usage < 0 ? std::string("null")
                                                                                              : num_text(v.reported_kv_usage))
                                               .done())
               .raw("health_check", !u.cfg->health_check.enabled
                                        ? std::string("null")
                                        : JsonObject()
                                              .num("interval_ms", u.cfg->health_check.interval_ms)
                                              .raw("last_ms", iso_or_null(v.last_check_ms))
                                              .raw("last_ok", v.last_check_ok < 0 ? "null" : v.last_check_ok ? "true" : "false")
                                              .raw("last_error", v.last_check_error.empty() ? std::string("null")
                                                                                           : quoted(v.last_check_error))
                                              .num("failures_in_a_row", v.check_failures)
                                              .done())
               .done();
  }
  ups += "]";
  std::string pools = "[";
  for (const auto& p : snap.config().pools) {
    if (pools.size() > 1) pools += ",";
    std::string members = "[";
    for (const auto& m : p.upstreams) members += (members.size() > 1 ? "," : "") + quoted(m);
    members += "]";
    JsonObject o;
    o.str("name", p.name)
        .str("balance", upstream::policy_name(p.balance.policy))
        .raw("upstreams", members)
        .raw("bounded_load", num_text(p.balance.bounded_load))
        .raw("max_ejected_percent", num_text(p.balance.max_ejected_share * 100));
    if (p.balance.gate) o.raw("admission", gate_json(p, *p.balance.gate));
    pools += o.done();
  }
  pools += "]";
  upstream::RetryBudget::View b = budget.view(now_ms);
  std::string rb = JsonObject()
                       .num("window_requests", b.requests)
                       .num("window_retries", b.retries)
                       .num("refused_total", b.refused)
                       .raw("ratio", num_text(snap.config().limits.retry_budget.ratio))
                       .num("min_per_second", snap.config().limits.retry_budget.min_per_second)
                       .done();
  return JsonObject().num("now_ms", now_ms).raw("upstreams", ups).raw("pools", pools).raw("retry_budget", rb).done();
}

std::string upstreams_prometheus(const config::Snapshot& snap, upstream::RetryBudget& budget, int64_t now_ms) {
  std::string o =
      "# HELP sluice_upstream_state Circuit breaker state per upstream (1 for the current state).\n"
      "# TYPE sluice_upstream_state gauge\n";
  std::string opens =
      "# HELP sluice_upstream_breaker_opens_total Times the upstream's breaker opened.\n"
      "# TYPE sluice_upstream_breaker_opens_total counter\n";
  std::string out =
      "# HELP sluice_upstream_outstanding_requests Requests in flight to the upstream (all workers).\n"
      "# TYPE sluice_upstream_outstanding_requests gauge\n";
  std::string tok =
      "# HELP sluice_upstream_outstanding_tokens Estimated tokens in flight to the upstream (all workers).\n"
      "# TYPE sluice_upstream_outstanding_tokens gauge\n";
  std::string weight =
      "# HELP sluice_upstream_weight Share of its pool's traffic the upstream takes (below 1 during slow start).\n"
      "# TYPE sluice_upstream_weight gauge\n";
  std::string reported =
      "# HELP sluice_upstream_reported_requests Requests the upstream itself reports waiting and running (load_metrics).\n"
      "# TYPE sluice_upstream_reported_requests gauge\n";
  std::string check =
      "# HELP sluice_upstream_health_check_ok Result of the upstream's last active health check (1 passed, 0 failed).\n"
      "# TYPE sluice_upstream_health_check_ok gauge\n";
  for (const auto& u : snap.upstreams()) {
    upstream::HealthView v = u.health->view(now_ms);
    std::string lbl = "upstream=" + quoted(u.cfg->name);
    weight += "sluice_upstream_weight{" + lbl + "} " + num_text(v.weight) + "\n";
    if (v.reported_at_ms > 0)
      reported += "sluice_upstream_reported_requests{" + lbl + ",state=\"waiting\"} " + num_text(v.reported_waiting) +
                  "\nsluice_upstream_reported_requests{" + lbl + ",state=\"running\"} " + num_text(v.reported_running) + "\n";
    if (v.last_check_ok >= 0) check += "sluice_upstream_health_check_ok{" + lbl + "} " + std::to_string(v.last_check_ok) + "\n";
    for (auto s : {upstream::BreakerState::kClosed, upstream::BreakerState::kOpen, upstream::BreakerState::kHalfOpen})
      o += "sluice_upstream_state{" + lbl + ",state=\"" + upstream::state_name(s) + "\"} " + (v.state == s ? "1" : "0") + "\n";
    opens += "sluice_upstream_breaker_opens_total{" + lbl + "} " + std::to_string(v.opens) + "\n";
    out += "sluice_upstream_outstanding_requests{" + lbl + "} " + std::to_string(v.outstanding) + "\n";
    tok += "sluice_upstream_outstanding_tokens{" + lbl + "} " + std::to_string(v.outstanding_tokens) + "\n";
  }
  upstream::RetryBudget::View b = budget.view(now_ms);
  std::string rb =
      "# HELP sluice_retry_budget_refused_total Retries refused because the retry budget was spent.\n"
      "# TYPE sluice_retry_budget_refused_total counter\nsluice_retry_budget_refused_total " +
      std::to_string(b.refused) + "\n";
  return o + opens + out + tok + weight + reported + check + rb + pools_prometheus(snap);
}

std::string response_cache_prometheus(cache::ResponseCache& c) {
  cache::Stats s = c.stats();
  std::string o;
  auto one = [&](const char* name, const char* type, const char* help, int64_t v) {
    o += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
         std::to_string(v) + "\n";
  };
  one("sluice_response_cache_hits_total", "counter", "Requests answered from the response cache.", s.hits);
  one("sluice_response_cache_misses_total", "counter", "Cacheable requests not found in the response cache.", s.misses);
  one("sluice_response_cache_evictions_total", "counter", "Entries evicted to stay within max_bytes.", s.evictions);
  one("sluice_response_cache_bytes", "gauge", "Bytes held by the response cache.", s.bytes);
  one("sluice_response_cache_entries", "gauge", "Entries in the response cache.", s.entries);
  return o;
}

std::string responses_store_prometheus(cache::ResponseCache& c, int64_t journal_dropped) {
  cache::Stats s = c.stats();
  return "# HELP sluice_responses_stored Responses API answers kept for previous_response_id.\n"
         "# TYPE sluice_responses_stored gauge\nsluice_responses_stored " + std::to_string(s.entries) +
         "\n# HELP sluice_responses_stored_bytes Bytes held by stored Responses API answers.\n"
         "# TYPE sluice_responses_stored_bytes gauge\nsluice_responses_stored_bytes " + std::to_string(s.bytes) +
         "\n# HELP sluice_responses_evicted_total Stored answers evicted to stay within responses.store_max_bytes.\n"
         "# TYPE sluice_responses_evicted_total counter\nsluice_responses_evicted_total " + std::to_string(s.evictions) +
         "\n# HELP sluice_responses_unsaved_total Stored answers not written to the store (its journal was full).\n"
         "# TYPE sluice_responses_unsaved_total counter\nsluice_responses_unsaved_total " + std::to_string(journal_dropped) + "\n";
}

}  // namespace sluice::gateway
