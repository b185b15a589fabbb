#include "control/tenants.hpp"

#include <algorithm>

#include "config/tenant_spec.hpp"
#include "core/clock.hpp"
#include "core/crypto.hpp"
#include "core/json_object.hpp"

namespace sluice::control {

namespace {

// The stored spec of a tenant, parsed (defaults for what it does not set).
std::optional<config::Tenant> parse_record(const store::TenantRecord& r, std::string& error) {
  config::Tenant t;
  t.name = r.name;
  t.managed = true;
  error = config::apply_tenant_json(r.spec, t);
  if (!error.empty()) return std::nullopt;
  return t;
}

std::string key_json(const store::ApiKeyRecord& k) {
  const int64_t now = unix_millis();
  JsonObject o;
  o.str("id", k.id).str("tenant", k.tenant).str("prefix", k.prefix).str("label", k.label);
  o.str("created_at", iso_time(k.created_at)).str("created_by", k.created_by);
  o.str("state", k.revoked_at ? "revoked" : !k.active(now) ? "expired" : k.expires_at ? "expiring" : "active");
  if (k.expires_at) o.str("expires_at", iso_time(k.expires_at));
  if (k.revoked_at) o.str("revoked_at", iso_time(k.revoked_at)).str("revoked_by", k.revoked_by);
  if (!k.replaced_by.empty()) o.str("replaced_by", k.replaced_by);
  return o.done();
}

std::string one_tenant_json(store::Store& s, const store::TenantRecord& r, const TenantUsage& usage, bool with_keys) {
  std::string err;
  auto t = parse_record(r, err);
  JsonObject o;
  o.str("name", r.name).str("source", "store");
  if (t) {
    o.raw("settings", config::tenant_json(*t));
  } else {
    o.str("error", err);
  }
  o.str("created_at", iso_time(r.created_at)).str("updated_at", iso_time(r.updated_at)).str("updated_by", r.updated_by);
  if (t && usage) {
    std::string u = usage(*t);
    if (!u.empty()) o.raw("usage", u);
  }
  if (with_keys) o.raw("keys", json_array(s.list_api_keys(r.name), key_json));
  return o.done();
}

store::ApiKeyRecord new_key(const std::string& tenant, const std::string& label, const std::string& actor,
                            std::string& secret) {
  secret = random_token("sk-sluice-", 24);
  store::ApiKeyRecord k;
  k.id = random_token("key_", 8);
  k.tenant = tenant;
  k.key_sha256 = sha256_hex(secret);
  k.prefix = secret.substr(0, 14);
  k.label = label;
  k.created_by = actor;
  return k;
}

std::string shown_once(const store::ApiKeyRecord& k, const std::string& secret, const std::string& replaces) {
  JsonObject o;
  o.str("id", k.id).str("tenant", k.tenant).str("key", secret).str("prefix", k.prefix);
  if (!replaces.empty()) o.str("replaces", replaces);
  o.str("note", "the key is shown only now; sluice keeps its hash");
  return o.done();
}

}  // namespace

Result create_tenant(store::Store& s, const std::string& name, const std::string& spec, const std::string& actor,
                     const std::string& reason) {
  if (!config::valid_tenant_name(name))
    return {"a tenant name is 1-64 of A-Z a-z 0-9 . _ - (starting with a letter or digit), got '" + name + "'", ""};
  config::Tenant t;
  t.name = name;
  if (std::string e = config::apply_tenant_json(spec.empty() ? "{}" : spec, t); !e.empty()) return {e, ""};
  store::TenantRecord r{name, config::tenant_json(t), actor, 0, 0};
  store::Outcome out = s.put_tenant(r, true, reason);
  if (!out.ok()) return {out.error, ""};
  auto stored = s.get_tenant(name);
  return {"", stored ? one_tenant_json(s, *stored, {}, false) : ""};
}

Result update_tenant(store::Store& s, const std::string& name, const std::string& patch, const std::string& actor,
                     const std::string& reason) {
  auto r = s.get_tenant(name);
  if (!r) return {"no tenant '" + name + "'", ""};
  std::string err;
  auto t = parse_record(*r, err);
  if (!t) return {"the stored definition of '" + name + "' is unreadable: " + err, ""};
  if (std::string e = config::apply_tenant_json(patch.empty() ? "{}" : patch, *t); !e.empty()) return {e, ""};
  store::TenantRecord next{name, config::tenant_json(*t), actor, 0, 0};
  store::Outcome out = s.put_tenant(next, false, reason);
  if (!out.ok()) return {out.error, ""};
  auto stored = s.get_tenant(name);
  return {"", stored ? one_tenant_json(s, *stored, {}, false) : ""};
}

std::string tenants_json(store::Store& s, const TenantUsage& usage) {
  return JsonObject()
      .raw("tenants", json_array(s.list_tenants(),
                                 [&](const store::TenantRecord& r) { return one_tenant_json(s, r, usage, false); }))
      .done();
}

Result show_tenant(store::Store& s, const std::string& name, const TenantUsage& usage) {
  auto r = s.get_tenant(name);
  if (!r) return {"no tenant '" + name + "'", ""};
  return {"", one_tenant_json(s, *r, usage, true)};
}

Result create_key(store::Store& s, const std::string& tenant, const std::string& label, const std::string& actor,
                  const std::string& reason) {
  if (label.size() > 200) return {"a key label is limited to 200 characters", ""};
  std::string secret;
  store::ApiKeyRecord k = new_key(tenant, label, actor, secret);
  store::Outcome out = s.create_api_key(k, reason);
  if (!out.ok()) return {out.error, ""};
  return {"", shown_once(k, secret, "")};
}

Result revoke_key(store::Store& s, const std::string& id, const std::string& actor, const std::string& reason) {
  store::Outcome out = s.revoke_api_key(id, actor, reason);
  if (!out.ok()) return {out.error, ""};
  auto k = s.get_api_key(id);
  return {"", k ? key_json(*k) : ""};
}

Result rotate_key(store::Store& s, const std::string& id, int64_t grace_ms, const std::string& actor,
                  const std::string& reason) {
  if (grace_ms < 0 || grace_ms > int64_t(30) * 86400000) return {"the grace period must be between 0 and 30 days", ""};
  auto old = s.get_api_key(id);
  if (!old) return {"no API key '" + id + "'", ""};
  std::string secret;
  store::ApiKeyRecord k = new_key(old->tenant, old->label, actor, secret);
  store::Outcome out = s.rotate_api_key(id, k, unix_millis() + grace_ms, reason);
  if (!out.ok()) return {out.error, ""};
  return {"", shown_once(k, secret, id)};
}

std::string keys_json(store::Store& s, const std::string& tenant) {
  return JsonObject().raw("keys", json_array(s.list_api_keys(tenant), key_json)).done();
}

void add_store_tenants(store::Store& s, config::Config& cfg, std::vector<std::string>& warnings) {
  const int64_t now = unix_millis();
  std::vector<std::string> unreadable;
  const auto tenants = s.list_tenants();
  if (!tenants.empty()) cfg.require_api_key = true;
  for (const auto& r : tenants) {
    std::string err;
    auto t = parse_record(r, err);
    if (!t) {
      // Its keys are left out too: they must not authenticate as a tenant without limits.
      warnings.push_back("tenant '" + r.name + "' in the store is unreadable and left out with its keys: " + err);
      unreadable.push_back(r.name);
      continue;
    }
    auto same = std::find_if(cfg.tenants.begin(), cfg.tenants.end(), [&](const auto& o) { return o.name == r.name; });
    if (same != cfg.tenants.end()) {
      warnings.push_back("tenant '" + r.name + "' is defined in the file and in the store: the store's definition applies");
      *same = std::move(*t);
    } else {
      cfg.tenants.push_back(std::move(*t));
    }
  }
  for (const auto& k : s.list_api_keys("")) {
    cfg.require_api_key = true;
    if (!k.active(now) || std::find(unreadable.begin(), unreadable.end(), k.tenant) != unreadable.end()) continue;
    cfg.api_keys.push_back({k.tenant, k.key_sha256, k.id, k.expires_at});
  }
}

}  // namespace sluice::control
