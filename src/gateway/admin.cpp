// gateway/admin.cpp: the admin API (token auth and roles) and the ops endpoints.
#include "gateway/admin.hpp"
#include "gateway/upstreams_view.hpp"
#include "gateway/scale_view.hpp"
#include "gateway/tenants_view.hpp"
#include "gateway/flags_admin.hpp"
#include "gateway/dashboard.hpp"
#include "gateway/incident_admin.hpp"
#include "gateway/alarms_admin.hpp"

#include <simdjson.h>

#include "control/releases.hpp"
#include "control/spend.hpp"
#include "core/crypto.hpp"
#include "core/strings.hpp"
#include "rollout/controller.hpp"
#include "rollout/ops.hpp"

namespace sluice::gateway {

namespace {
int role_rank(std::string_view role) {
  if (role == "admin") return 3;
  if (role == "operator") return 2;
  if (role == "viewer") return 1;
  return 0;
}
}  // namespace

awaitable<bool> AdminHandler::handle(beast::tcp_stream& stream, beast::flat_buffer&,
                                     http::request<http::string_body>& req) {
  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find('?'));
  bool keep = req.keep_alive() && !draining();
  std::string id = ids_.next();
  auto reply = [&](http::status st, std::string body) -> awaitable<bool> {
    stream.expires_after(std::chrono::seconds(30));
    error_code ec = co_await net::write_response(stream, st, std::move(body), "application/json", id, keep);
    co_return !ec && keep;
  };
  if (!starts_with(path, "/admin/")) {
    if (req.method() == http::verb::get) {
      if (auto ops = ops_endpoint(env_.shared, path)) {
        stream.expires_after(std::chrono::seconds(30));
        error_code ec = co_await net::write_response(stream, ops->status, std::move(ops->body), ops->content_type, id, keep);
        co_return !ec && keep;
      }
      // The dashboard's static files (gateway/dashboard.hpp): public, they hold no data.
      if (auto ui = ui_asset(path, req[http::field::if_none_match])) {
        stream.expires_after(std::chrono::seconds(30));
        error_code ec = co_await net::write_response(stream, static_cast<http::status>(ui->status), std::string(ui->body),
                                                     ui->content_type, id, keep, 11, ui->headers);
        co_return !ec && keep;
      }
    }
    // Any other /ui/ path is a data path: a token first (401), then 404.
    if (!starts_with(path, "/ui/"))
      co_return co_await reply(http::status::not_found, not_found("Unknown admin URL: " + std::string(path), "unknown_url").to_json());
  }

  // Every /admin/ path, existing or not, needs a valid token first.
  std::string_view auth = req[http::field::authorization];
  int rank = 0;
  std::string actor;
  if (auth.size() > 7 && iequals(auth.substr(0, 7), "bearer ")) {
    std::string h = sha256_hex(trim(auth.substr(7)));
    if (!env_.bootstrap_token_sha256.empty() && constant_time_equals(h, env_.bootstrap_token_sha256)) {
      rank = 3;
      actor = "token:bootstrap";
    }
    auto snap = env_.shared.snapshots.current();
    for (const auto& t : snap->config().admin_tokens) {
      if (constant_time_equals(h, t.token_sha256) && role_rank(t.role) > rank) {
        rank = role_rank(t.role);
        actor = "token:" + t.name;
      }
    }
  }
  const std::string action = std::string(req.method_string()) + " " + std::string(path);
  auto audit_refusal = [&](const std::string& who, const char* outcome) {
    if (!env_.store) return;
    store::AuditEntry e;
    e.actor = who;
    e.action = "admin.request";
    e.target = action;
    e.outcome = outcome;
    try {
      env_.store->append_audit(e);
    } catch (const std::exception&) {
      // auditing a refusal must not turn it into a 500
    }
  };
  if (std::string why = cross_site_refusal(req.method() == http::verb::get, req[http::field::origin], req[http::field::host],
                                            req["sec-fetch-site"]);
      !why.empty()) {
    audit_refusal(rank ? actor : "anonymous", "cross_site");
    std::string body = ApiError{403, "permission_error", "cross_site_request", "cross-site request refused: " + why}.to_json();
    co_return co_await reply(http::status::forbidden, std::move(body));
  }
  if (rank == 0) {
    audit_refusal(auth.empty() ? "anonymous" : "invalid-token", "unauthenticated");
    co_return co_await reply(http::status::unauthorized, unauthorized("A valid admin bearer token is required.").to_json());
  }

  auto forbidden = [&](const char* need) {
    audit_refusal(actor, "denied");
    return ApiError{403, "permission_error", "insufficient_role", std::string("this action needs the ") + need + " role"}
        .to_json();
  };
  auto error = [&](http::status st, const std::string& code, const std::string& msg) {
    return reply(st, ApiError{static_cast<int>(st), "invalid_request_error", code, msg}.to_json());
  };
  const bool is_get = req.method() == http::verb::get, is_post = req.method() == http::verb::post;
  if (starts_with(path, "/ui/")) {
    std::string body = not_found("Unknown dashboard URL: " + std::string(path), "unknown_url").to_json();
    co_return co_await reply(http::status::not_found, std::move(body));
  }
  if (path == "/admin/v1/status" && is_get) co_return co_await reply(http::status::ok, env_.describe());
  if (path == "/admin/v1/config/reload" && is_post) {
    if (rank < 2) co_return co_await reply(http::status::forbidden, forbidden("operator"));
    std::string err = env_.reload();
    if (!err.empty()) {
      ApiError e{400, "invalid_request_error", "invalid_config", "configuration rejected, the running one is kept: " + err};
      co_return co_await reply(http::status::bad_request, e.to_json());
    }
    co_return co_await reply(http::status::ok, env_.describe());
  }
  // GET /admin/v1/upstreams: breaker state, since when, why, next probe, load; pools; retry budget.
  if (path == "/admin/v1/upstreams" && is_get) {
    auto snap = env_.shared.snapshots.current();
    co_return co_await reply(http::status::ok, upstreams_json(*snap, env_.shared.retry_budget, unix_millis()));
  }
  // GET /admin/v1/timeline, GET /admin/v1/routes/{r}/readiness (gateway/incident_admin.hpp).
  if (is_get && env_.incident) {
    std::optional<AdminAnswer> a = co_await env_.incident->endpoint(std::string(path), std::string(target.substr(path.size() + (target.size() > path.size()))));
    if (a) co_return co_await reply(static_cast<http::status>(a->status), std::move(a->body));
  }
  // GET /admin/v1/alarms, GET /admin/v1/series?route=R[&window_s=600] (alarms_admin.hpp): any role.
  if (is_get && env_.alarms) {
    const std::string_view q = target.find('?') == std::string_view::npos ? "" : target.substr(target.find('?') + 1);
    if (auto a = env_.alarms->endpoint(AdminCall{req.method_string(), path, "", rank, actor}, q, unix_millis()))
      co_return co_await reply(static_cast<http::status>(a->status), std::move(a->body));
  }
  // GET /admin/v1/headroom[?days=N]: each pool's hourly peaks against its capacity (scale_view.hpp).
  if (path == "/admin/v1/headroom" && is_get) {
    std::string_view q = target.find('?') == std::string_view::npos ? "" : target.substr(target.find('?') + 1);
    int days = 7;
    if (size_t at = q.find("days="); at != std::string_view::npos) days = std::clamp(std::atoi(std::string(q.substr(at + 5)).c_str()), 1, 7);
    co_return co_await reply(http::status::ok, headroom_json(env_.shared, unix_millis(), days));
  }
  // GET /admin/v1/flags/{key}/readout: a release flag's experiment (rollout/experiment.hpp).
  if (is_get && starts_with(path, "/admin/v1/flags/") && path.ends_with("/readout")) {
    const std::string key(path.substr(16, path.size() - 16 - 8));
    auto snap = env_.shared.snapshots.current();
    const flags::Flag* f = snap->flags().find(key);
    if (!f || snap->flags().role(f).kind != flags::Kind::kRelease)
      co_return co_await error(http::status::not_found, "not_found",
                               "'" + key + "' is not a release flag (a flag with metadata.route): no experiment to read out");
    auto meta = [&](std::string_view k, std::string def) {
      const flags::Value* v = f->metadata.get(k);
      return v && v->is_string() && !v->s.empty() ? v->s : def;
    };
    const std::string control = meta("control", f->default_variant.value_or(""));
    co_return co_await reply(http::status::ok,
                             env_.shared.experiments.readout_json(key, snap->flags().fingerprint(f), control,
                                                                  meta("metric", "feedback_mean"),
                                                                  meta("guardrails", "error_rate,refusal_rate")));
  }
  if (!env_.store) co_return co_await error(http::status::not_found, "unknown_url", "Unknown admin URL: " + std::string(path));
  store::Store& st = *env_.store;
  std::string_view query = target.find('?') == std::string_view::npos ? "" : target.substr(target.find('?') + 1);
  auto query_param = [&](std::string_view key) -> std::string {
    for (auto kv : split(query, '&')) {
      size_t eq = kv.find('=');
      if (eq != std::string_view::npos && kv.substr(0, eq) == key) return std::string(kv.substr(eq + 1));
    }
    return "";
  };
  std::string store_failure;
  try {
    AdminCall call{req.method_string(), path, req.body(), rank, actor};
    if (auto a = tenant_endpoints(st, env_.shared.tenant_limits, *env_.shared.snapshots.current(), call);
        a || (a = flag_endpoints(st, call, query)) || (a = dashboard_endpoints(st, call))) {
      if (a->status == 403) audit_refusal(actor, "denied");
      if (a->changed && a->status == 200) {
        // Published before the answer: a revoked key is refused by every worker once this returns.
        if (std::string perr = env_.republish(); !perr.empty())
          co_return co_await error(http::status::internal_server_error, "publish_failed", perr);
      }
      co_return co_await reply(static_cast<http::status>(a->status), std::move(a->body));
    }
    if (path == "/admin/v1/releases" && is_get)
      co_return co_await reply(http::status::ok, control::releases_json(st, query_param("route")));
    if (starts_with(path, "/admin/v1/releases/") && is_get) {
      auto r = st.get_release(std::string(path.substr(19)));
      if (!r) co_return co_await error(http::status::not_found, "release_not_found", "no release " + std::string(path.substr(19)));
      co_return co_await reply(http::status::ok, control::release_json(*r));
    }
    if (path == "/admin/v1/routes" && is_get) co_return co_await reply(http::status::ok, control::routes_json(st));
    // Eval runs: GET /admin/v1/evals[?release=ID], GET /admin/v1/evals/{id} (with its report)
    if (path == "/admin/v1/evals" && is_get)
      co_return co_await reply(http::status::ok, control::eval_runs_json(st, query_param("release"), false));
    if (starts_with(path, "/admin/v1/evals/") && is_get) {
      auto r = st.get_eval_run(std::string(path.substr(16)));
      if (!r) co_return co_await error(http::status::not_found, "eval_run_not_found", "no eval run " + std::string(path.substr(16)));
      co_return co_await reply(http::status::ok, control::eval_run_json(*r, true));
    }
    // GET /admin/v1/spend[?days=N&route=R]: spend per day, per route with its week-over-week
    // trend, per release and per tenant (control/spend.hpp).
    if (path == "/admin/v1/spend" && is_get) {
      std::string d = query_param("days");
      co_return co_await reply(http::status::ok, control::spend_json(st, admission::day_of(unix_millis()),
                                                                     d.empty() ? 14 : std::atoi(d.c_str()), query_param("route")));
    }
    if (path == "/admin/v1/audit" && is_get) {
      std::string lim = query_param("limit");
      size_t n = lim.empty() ? 100 : static_cast<size_t>(std::max(1, std::atoi(lim.c_str())));
      co_return co_await reply(http::status::ok, control::audit_json(st, n));
    }
    // Rollouts: GET /admin/v1/rollouts, GET /admin/v1/rollouts/{route},
    // POST /admin/v1/rollouts/{route}/start {"release","spec","strategy","override","reason"}
    // POST /admin/v1/rollouts/{route}/{promote|pause|resume|abort|approve} {"reason"}
    if (env_.rollouts && path == "/admin/v1/rollouts" && is_get)
      co_return co_await reply(http::status::ok, rollout::list_json(st));
    if (env_.rollouts && starts_with(path, "/admin/v1/rollouts/")) {
      std::string_view rest = path.substr(19);
      size_t slash = rest.find('/');
      std::string route(rest.substr(0, slash));
      std::string verb(slash == std::string_view::npos ? "" : rest.substr(slash + 1));
      if (is_get && verb.empty()) {
        std::string js = env_.rollouts->status_json(route);
        if (js.empty()) co_return co_await error(http::status::not_found, "rollout_not_found", "route '" + route + "' has no rollouts");
        co_return co_await reply(http::status::ok, std::move(js));
      }
      if (!is_post || route.empty() || verb.empty())
        co_return co_await error(http::status::not_found, "unknown_url", "Unknown admin URL: " + std::string(path));
      if (rank < 2) co_return co_await reply(http::status::forbidden, forbidden("operator"));
      std::string reason, release, spec, strategy;
      bool override_eval = false;
      if (!req.body().empty()) {
        simdjson::dom::parser p;
        simdjson::dom::element doc;
        if (p.parse(req.body()).get(doc) || !doc.is_object())
          co_return co_await error(http::status::bad_request, "invalid_json", "body must be a JSON object");
        std::string_view v;
        bool b = false;
        if (!doc["reason"].get_string().get(v)) reason.assign(v);
        if (!doc["release"].get_string().get(v)) release.assign(v);
        if (!doc["spec"].get_string().get(v)) spec.assign(v);
        if (!doc["strategy"].get_string().get(v)) strategy.assign(v);
        if (!doc["override"].get_bool().get(b)) override_eval = b;
      }
      control::Result res;
      if (verb == "start") {
        rollout::StartRequest sr;
        sr.route = route;
        sr.release = release;
        sr.spec_text = spec;
        if (!strategy.empty()) sr.strategy = strategy;
        sr.actor = actor;
        sr.reason = reason;
        sr.override_eval = override_eval;
        if (release.empty()) co_return co_await error(http::status::bad_request, "missing_release", "'release' is required");
        res = rollout::start(st, sr);
        if (res.ok()) env_.rollouts->reload();
      } else {
        res = env_.rollouts->command(route, verb, actor, reason);
      }
      if (!res.ok()) co_return co_await error(http::status::conflict, "rollout_refused", res.error);
      co_return co_await reply(http::status::ok, env_.rollouts->status_json(route));
    }
    // POST /admin/v1/routes/{route}/promote {"release","reason"} and .../rollback {"reason"}
    if (starts_with(path, "/admin/v1/routes/") && is_post) {
      std::string_view rest = path.substr(17);
      size_t slash = rest.rfind('/');
      std::string route(rest.substr(0, slash == std::string_view::npos ? 0 : slash));
      std::string_view verb = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
      if (route.empty() || (verb != "promote" && verb != "rollback"))
        co_return co_await error(http::status::not_found, "unknown_url", "Unknown admin URL: " + std::string(path));
      if (rank < 2) co_return co_await reply(http::status::forbidden, forbidden("operator"));
      std::string release, reason;
      if (!req.body().empty()) {
        simdjson::dom::parser p;
        simdjson::dom::element doc;
        if (p.parse(req.body()).get(doc) || !doc.is_object())
          co_return co_await error(http::status::bad_request, "invalid_json", "body must be a JSON object");
        std::string_view v;
        if (!doc["release"].get_string().get(v)) release.assign(v);
        if (!doc["reason"].get_string().get(v)) reason.assign(v);
      }
      store::Outcome out;
      if (verb == "promote") {
        if (release.empty()) co_return co_await error(http::status::bad_request, "missing_release", "'release' is required");
        auto r = st.get_release(release);
        if (!r) co_return co_await error(http::status::not_found, "release_not_found", "no release " + release);
        // Refuse what this gateway could not serve, before anything is committed.
        std::string upstream;
        {
          simdjson::dom::parser p;
          simdjson::dom::element t;
          std::string_view u;
          if (!p.parse(r->tuple).get(t) && !t["model"]["upstream"].get_string().get(u)) upstream.assign(u);
        }
        if (!env_.shared.snapshots.current()->has_upstream(upstream))
          co_return co_await error(http::status::conflict, "upstream_not_configured",
                                   "release " + r->id + " needs upstream '" + upstream +
                                       "', which this gateway does not have; nothing was changed");
        out = st.promote(route, r->id, actor, reason);
      } else if (env_.rollouts && st.active_rollout(route)) {
        // A rollout in progress: rolling back means sending everything to stable now.
        control::Result r = env_.rollouts->command(route, "abort", actor, reason.empty() ? "rollback" : reason);
        if (!r.ok()) co_return co_await error(http::status::conflict, "route_change_refused", r.error);
        co_return co_await reply(http::status::ok, env_.rollouts->status_json(route));
      } else {
        out = st.rollback(route, actor, reason);
      }
      if (!out.ok()) co_return co_await error(http::status::conflict, "route_change_refused", out.error);
      std::string perr = env_.republish();
      std::string body = "{\"route\":";
      append_json_string(body, route);
      body += ",\"before\":";
      append_json_string(body, out.before);
      body += ",\"stable_release\":";
      append_json_string(body, out.after);
      body += ",\"applied\":" + std::string(perr.empty() ? "true" : "false");
      if (!perr.empty()) {
        body += ",\"error\":";
        append_json_string(body, perr);
      }
      body += "}";
      co_return co_await reply(perr.empty() ? http::status::ok : http::status::internal_server_error, std::move(body));
    }
  } catch (const std::exception& e) {
    store_failure = e.what();  // co_await is not allowed inside a handler
  }
  if (!store_failure.empty())
    co_return co_await error(http::status::internal_server_error, "store_error", store_failure);
  co_return co_await reply(http::status::not_found, not_found("Unknown admin URL: " + std::string(path), "unknown_url").to_json());
}

}  // namespace sluice::gateway
