// config/tenant_spec.hpp: a tenant's limits as JSON, the form the store keeps and the admin
// API and CLI send. One set of bounds for the YAML loader and for JSON, so a tenant is
// refused the same way wherever it is defined.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace sluice::config {

// Bounds of a tenant's settings (0 is "no limit" for each).
struct TenantBounds {
  static constexpr int64_t kRpm = 100000000;
  static constexpr int64_t kTpm = int64_t(1) << 40;
  static constexpr int64_t kConcurrent = 1000000;
  static constexpr int64_t kInputTokens = 100000000;
  static constexpr int64_t kReserveOutput = 10000000;
  static constexpr double kBudgetUsd = 1e9;
  static constexpr size_t kRoutes = 1000;
};
// The keys a tenant definition may have (YAML and JSON).
inline constexpr std::string_view kTenantKeys[] = {
    "name", "rpm", "tpm", "max_concurrent", "max_input_tokens", "reserve_output_tokens", "tier",
    "budget_usd_per_day", "budget_usd_per_month", "routes"};

// A tenant name: 1-64 of [A-Za-z0-9._-], starting with a letter or digit.
bool valid_tenant_name(std::string_view name);

// Applies the members present in `json` (an object with the kTenantKeys but "name") to `t`:
// a whole definition or a partial update. "" on success, else what is wrong (the member
// named), with `t` unchanged.
std::string apply_tenant_json(std::string_view json, Tenant& t);
// The definition as JSON, every setting included (name excluded).
std::string tenant_json(const Tenant& t);

}  // namespace sluice::config
