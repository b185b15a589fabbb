#include "gateway/tenants_view.hpp"

#include <simdjson.h>

#include "config/tenant_spec.hpp"
#include "control/tenants.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/json_object.hpp"
#include "core/strings.hpp"
#include "json/splice.hpp"

namespace sluice::gateway {

namespace {

std::string bucket_json(const admission::BucketView& b) {
  return JsonObject().num("limit", b.limit).num("remaining", b.remaining).num("reset_ms", b.reset_ms).done();
}

std::string usd(int64_t micro) { return num_text(static_cast<double>(micro) / 1e6, 9); }

AdminAnswer fail(int status, std::string_view code, const std::string& message) {
  ApiError e{status, status == 403 ? "permission_error" : "invalid_request_error", std::string(code), message};
  return {status, e.to_json(), false};
}

AdminAnswer from(const control::Result& r, bool changed, int error_status = 400) {
  if (!r.ok()) {
    const bool missing = starts_with(r.error, "no tenant") || starts_with(r.error, "no API key");
    const bool exists = r.error.find("already exists") != std::string::npos;
    return fail(missing ? 404 : exists ? 409 : error_status, missing ? "not_found" : exists ? "conflict" : "invalid_request",
                r.error);
  }
  return {200, r.text, changed};
}

// A JSON body's string member ("" when absent or not a string).
std::string member(std::string_view body, const char* key) {
  if (body.empty()) return "";
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  std::string_view v;
  if (p.parse(body.data(), body.size()).get(doc) || doc[key].get_string().get(v)) return "";
  return std::string(v);
}

}  // namespace

std::string tenant_usage_json(admission::Registry& reg, const config::Tenant& t, int64_t now_ms) {
  admission::Decision d = reg.get(t.name).view(t.limits, now_ms);
  admission::Budget::View spent = reg.budget(t.name).spent(now_ms);
  return JsonObject()
      .num("in_flight", d.in_flight)
      .num("max_concurrent", t.limits.max_concurrent)
      .raw("requests", bucket_json(d.requests))
      .raw("tokens", bucket_json(d.tokens))
      .raw("spend_usd", JsonObject().raw("day", usd(spent.day_micro_usd)).raw("month", usd(spent.month_micro_usd)).done())
      .raw("budget_usd", JsonObject()
                             .raw("day", num_text(t.budget_usd_per_day))
                             .raw("month", num_text(t.budget_usd_per_month))
                             .done())
      .done();
}

std::string tenants_prometheus(const config::Snapshot& snap, admission::Registry& reg, int64_t now_ms) {
  const auto& tenants = snap.config().tenants;
  if (tenants.empty()) return "";
  std::string limit = "# HELP sluice_tenant_limit A tenant's configured limit (0: none).\n# TYPE sluice_tenant_limit gauge\n";
  std::string remaining =
      "# HELP sluice_tenant_remaining What is left of a tenant's per-minute limit now.\n# TYPE sluice_tenant_remaining gauge\n";
  std::string inflight = "# HELP sluice_tenant_in_flight A tenant's requests in flight.\n# TYPE sluice_tenant_in_flight gauge\n";
  std::string spend =
      "# HELP sluice_tenant_spend_usd A tenant's spend in the current UTC day or month.\n# TYPE sluice_tenant_spend_usd gauge\n";
  std::string budget = "# HELP sluice_tenant_budget_usd A tenant's budget (0: none).\n# TYPE sluice_tenant_budget_usd gauge\n";
  for (const auto& t : tenants) {
    std::string who;
    append_json_string(who, t.name);  // a quoted, escaped label value
    const std::string l = "{tenant=" + who;
    admission::Decision d = reg.get(t.name).view(t.limits, now_ms);
    admission::Budget::View spent = reg.budget(t.name).spent(now_ms);
    limit += "sluice_tenant_limit" + l + ",limit=\"rpm\"} " + std::to_string(t.limits.rpm) + "\n";
    limit += "sluice_tenant_limit" + l + ",limit=\"tpm\"} " + std::to_string(t.limits.tpm) + "\n";
    limit += "sluice_tenant_limit" + l + ",limit=\"max_concurrent\"} " + std::to_string(t.limits.max_concurrent) + "\n";
    if (t.limits.rpm > 0) remaining += "sluice_tenant_remaining" + l + ",limit=\"rpm\"} " + std::to_string(d.requests.remaining) + "\n";
    if (t.limits.tpm > 0) remaining += "sluice_tenant_remaining" + l + ",limit=\"tpm\"} " + std::to_string(d.tokens.remaining) + "\n";
    inflight += "sluice_tenant_in_flight" + l + "} " + std::to_string(d.in_flight) + "\n";
    spend += "sluice_tenant_spend_usd" + l + ",period=\"day\"} " + usd(spent.day_micro_usd) + "\n";
    spend += "sluice_tenant_spend_usd" + l + ",period=\"month\"} " + usd(spent.month_micro_usd) + "\n";
    budget += "sluice_tenant_budget_usd" + l + ",period=\"day\"} " + num_text(t.budget_usd_per_day) + "\n";
    budget += "sluice_tenant_budget_usd" + l + ",period=\"month\"} " + num_text(t.budget_usd_per_month) + "\n";
  }
  return limit + remaining + inflight + spend + budget;
}

std::optional<AdminAnswer> tenant_endpoints(store::Store& st, admission::Registry& reg, const config::Snapshot& snap,
                                            const AdminCall& c) {
  const bool get = c.method == "GET", post = c.method == "POST" || c.method == "PATCH";
  const int64_t now = unix_millis();
  control::TenantUsage usage = [&](const config::Tenant& t) { return tenant_usage_json(reg, t, now); };
  auto need = [&](int rank) -> std::optional<AdminAnswer> {
    if (c.rank >= rank) return std::nullopt;
    return fail(403, "insufficient_role", std::string("this action needs the ") + (rank >= 3 ? "admin" : "operator") + " role");
  };
  if (c.path != "/admin/v1/tenants" && c.path != "/admin/v1/keys" && !starts_with(c.path, "/admin/v1/tenants/") &&
      !starts_with(c.path, "/admin/v1/keys/"))
    return std::nullopt;
  // Changes need a role (checked before the body is read): operators manage tenants, admins keys.
  if (post) {
    const bool keys = starts_with(c.path, "/admin/v1/keys/") || (starts_with(c.path, "/admin/v1/tenants/") && c.path.size() > 5 &&
                                                                  c.path.substr(c.path.size() - 5) == "/keys");
    if (auto e = need(keys ? 3 : 2)) return e;
  }
  if (!c.body.empty() && post) {
    simdjson::dom::parser p;
    simdjson::dom::element doc;
    if (c.body.size() > (64 << 10) || p.parse(c.body.data(), c.body.size()).get(doc) || !doc.is_object())
      return fail(400, "invalid_json", "the body must be a JSON object (at most 64 KiB)");
  }
  const std::string reason = member(c.body, "reason");
  // The settings of a tenant: the body without "reason" (and "name", checked by the spec).
  auto settings = [&]() -> std::string {
    if (c.body.empty()) return "{}";
    auto s = json::splice_members(c.body, {{"reason", ""}});
    return s ? *s : std::string(c.body);
  };

  // GET /admin/v1/tenants: the store's tenants, then the file's, with their usage.
  // POST /admin/v1/tenants {"name", settings..., "reason"}
  if (c.path == "/admin/v1/tenants") {
    if (get) {
      std::string out = control::tenants_json(st, usage);
      std::string file = "[";
      for (const auto& t : snap.config().tenants) {
        if (t.managed) continue;
        if (file.size() > 1) file += ",";
        file += JsonObject()
                    .str("name", t.name)
                    .str("source", "file")
                    .raw("settings", config::tenant_json(t))
                    .raw("usage", usage(t))
                    .done();
      }
      out.pop_back();
      return AdminAnswer{200, out + ",\"file_tenants\":" + file + "]}", false};
    }
    if (post) {
      if (auto e = need(2)) return e;
      auto body = settings();
      auto named = json::splice_members(body, {{"name", ""}});
      return from(control::create_tenant(st, member(c.body, "name"), named ? *named : body, c.actor, reason), true);
    }
  }
  // GET|POST /admin/v1/tenants/{name}, GET|POST /admin/v1/tenants/{name}/keys
  if (starts_with(c.path, "/admin/v1/tenants/")) {
    std::string_view rest = c.path.substr(18);
    const size_t slash = rest.find('/');
    const std::string name(rest.substr(0, slash));
    const std::string_view sub = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
    if (sub.empty() && get) {
      control::Result r = control::show_tenant(st, name, usage);
      if (!r.ok()) {
        for (const auto& t : snap.config().tenants)
          if (t.name == name)
            return AdminAnswer{200,
                               JsonObject()
                                   .str("name", t.name)
                                   .str("source", "file")
                                   .raw("settings", config::tenant_json(t))
                                   .raw("usage", usage(t))
                                   .done(),
                               false};
      }
      return from(r, false);
    }
    if (sub.empty() && post) {
      if (auto e = need(2)) return e;
      return from(control::update_tenant(st, name, settings(), c.actor, reason), true);
    }
    if (sub == "keys" && get) {
      if (!st.get_tenant(name)) return fail(404, "not_found", "no tenant '" + name + "' in the store");
      return AdminAnswer{200, control::keys_json(st, name), false};
    }
    if (sub == "keys" && post) {
      if (auto e = need(3)) return e;
      return from(control::create_key(st, name, member(c.body, "label"), c.actor, reason), true);
    }
  }
  // GET /admin/v1/keys, POST /admin/v1/keys/{id}/revoke {"reason"},
  // POST /admin/v1/keys/{id}/rotate {"grace_seconds","reason"}
  if (c.path == "/admin/v1/keys" && get) return AdminAnswer{200, control::keys_json(st, ""), false};
  if (starts_with(c.path, "/admin/v1/keys/") && post) {
    std::string_view rest = c.path.substr(15);
    const size_t slash = rest.find('/');
    const std::string id(rest.substr(0, slash));
    const std::string_view verb = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
    if (verb == "revoke") {
      if (auto e = need(3)) return e;
      return from(control::revoke_key(st, id, c.actor, reason), true, 409);
    }
    if (verb == "rotate") {
      if (auto e = need(3)) return e;
      double grace = 0;
      if (!c.body.empty()) {
        simdjson::dom::parser p;
        simdjson::dom::element doc;
        if (!p.parse(c.body.data(), c.body.size()).get(doc)) {
          auto g = doc["grace_seconds"];
          if (!g.error() && g.get_double().get(grace)) {
            int64_t n = 0;
            if (g.get_int64().get(n)) return fail(400, "invalid_request", "'grace_seconds' must be a number");
            grace = static_cast<double>(n);
          }
        }
      }
      if (!(grace >= 0 && grace <= 30 * 86400.0)) return fail(400, "invalid_request", "'grace_seconds' must be between 0 and 2592000");
      return from(control::rotate_key(st, id, static_cast<int64_t>(grace * 1000), c.actor, reason), true, 409);
    }
  }
  return std::nullopt;
}

}  // namespace sluice::gateway
