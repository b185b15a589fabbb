#include "config/tenant_spec.hpp"

#include <simdjson.h>

#include <cmath>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace sluice::config {

bool valid_tenant_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) return false;
  }
  return true;
}

std::string apply_tenant_json(std::string_view json, Tenant& out) {
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  if (json.size() > (64 << 10)) return "a tenant definition is limited to 64 KiB";
  if (p.parse(json.data(), json.size()).get(doc) || !doc.is_object()) return "a tenant definition must be a JSON object";
  Tenant t = out;
  auto integer = [&](std::string_view key, simdjson::dom::element v, int64_t& dst, int64_t max) -> std::string {
    int64_t n = 0;
    double d = 0;
    if (!v.get_int64().get(n)) {
    } else if (!v.get_double().get(d) && std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) {
      n = static_cast<int64_t>(d);
    } else {
      return "'" + std::string(key) + "' must be a whole number";
    }
    if (n < 0 || n > max)
      return "'" + std::string(key) + "' must be between 0 and " + std::to_string(max) + ", got " + std::to_string(n);
    dst = n;
    return "";
  };
  auto money = [&](std::string_view key, simdjson::dom::element v, double& dst) -> std::string {
    double d = 0;
    int64_t n = 0;
    if (!v.get_double().get(d)) {
    } else if (!v.get_int64().get(n)) {
      d = static_cast<double>(n);
    } else {
      return "'" + std::string(key) + "' must be a number (US dollars)";
    }
    if (!std::isfinite(d) || d < 0 || d > TenantBounds::kBudgetUsd)
      return "'" + std::string(key) + "' must be between 0 and " + num_text(TenantBounds::kBudgetUsd) + " dollars";
    dst = d;
    return "";
  };
  simdjson::dom::object members;
  if (doc.get_object().get(members)) return "a tenant definition must be a JSON object";
  for (auto [key, v] : members) {
    std::string err;
    if (key == "name") {
      std::string_view n;
      if (v.get_string().get(n) || (!out.name.empty() && n != out.name)) err = "'name' cannot be changed";
    } else if (key == "rpm") {
      err = integer(key, v, t.limits.rpm, TenantBounds::kRpm);
    } else if (key == "tpm") {
      err = integer(key, v, t.limits.tpm, TenantBounds::kTpm);
    } else if (key == "max_concurrent") {
      err = integer(key, v, t.limits.max_concurrent, TenantBounds::kConcurrent);
    } else if (key == "max_input_tokens") {
      err = integer(key, v, t.max_input_tokens, TenantBounds::kInputTokens);
    } else if (key == "reserve_output_tokens") {
      err = integer(key, v, t.reserve_output_tokens, TenantBounds::kReserveOutput);
    } else if (key == "tier") {
      std::string_view s;
      auto tier = v.get_string().get(s) ? std::nullopt : admission::tier_from_name(s);
      if (!tier) err = "'tier' is critical, standard or sheddable";
      else t.tier = *tier;
    } else if (key == "budget_usd_per_day") {
      err = money(key, v, t.budget_usd_per_day);
    } else if (key == "budget_usd_per_month") {
      err = money(key, v, t.budget_usd_per_month);
    } else if (key == "routes") {
      simdjson::dom::array a;
      if (v.get_array().get(a)) {
        err = "'routes' must be a list of route names";
      } else {
        t.routes.clear();
        for (auto r : a) {
          std::string_view s;
          if (r.get_string().get(s) || s.empty()) {
            err = "'routes' must be a list of route names";
            break;
          }
          t.routes.emplace_back(s);
        }
        if (err.empty() && t.routes.size() > TenantBounds::kRoutes)
          err = "'routes' may list at most " + std::to_string(TenantBounds::kRoutes) + " routes";
      }
    } else {
      std::string known;
      for (std::string_view k : kTenantKeys) known += (known.empty() ? "" : ", ") + std::string(k);
      err = "unknown tenant setting '" + std::string(key) + "' (known: " + known + ")";
    }
    if (!err.empty()) return err;
  }
  out = std::move(t);
  return "";
}

std::string tenant_json(const Tenant& t) {
  std::string o = "{\"rpm\":" + std::to_string(t.limits.rpm) + ",\"tpm\":" + std::to_string(t.limits.tpm) +
                  ",\"max_concurrent\":" + std::to_string(t.limits.max_concurrent) +
                  ",\"max_input_tokens\":" + std::to_string(t.max_input_tokens) +
                  ",\"reserve_output_tokens\":" + std::to_string(t.reserve_output_tokens) + ",\"tier\":\"" +
                  admission::tier_name(t.tier) + "\",\"budget_usd_per_day\":" + num_text(t.budget_usd_per_day) +
                  ",\"budget_usd_per_month\":" + num_text(t.budget_usd_per_month) + ",\"routes\":[";
  for (size_t i = 0; i < t.routes.size(); ++i) {
    if (i) o += ",";
    append_json_string(o, t.routes[i]);
  }
  o += "]}";
  return o;
}

}  // namespace sluice::config
