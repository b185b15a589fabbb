// control/tenants.hpp: tenants and their API keys as the admin API and the CLI both manage
// them (`sluice tenant ...`, `sluice key ...`), and how the store's tenants join a config
// before a snapshot is built. A key is shown once, when it is made, and stored as its hash.
#pragma once
#include <string>
#include <vector>

#include "config/config.hpp"
#include "control/releases.hpp"
#include "store/store.hpp"

namespace sluice::control {

// The runtime side of a tenant (rate limit state, spend) as JSON, for the admin view; may
// return "" when the tenant has none.
using TenantUsage = std::function<std::string(const config::Tenant&)>;

// `spec` is a JSON object with the tenant settings of config/tenant_spec.hpp; update applies
// only the members present. Both refuse a bad or absurd setting, naming it.
Result create_tenant(store::Store& s, const std::string& name, const std::string& spec, const std::string& actor,
                     const std::string& reason);
Result update_tenant(store::Store& s, const std::string& name, const std::string& patch, const std::string& actor,
                     const std::string& reason);
std::string tenants_json(store::Store& s, const TenantUsage& usage = {});
Result show_tenant(store::Store& s, const std::string& name, const TenantUsage& usage = {});

// A new key for `tenant`: {"id","tenant","key","prefix"} (the only time the key is shown).
Result create_key(store::Store& s, const std::string& tenant, const std::string& label, const std::string& actor,
                  const std::string& reason);
Result revoke_key(store::Store& s, const std::string& id, const std::string& actor, const std::string& reason);
// A successor for key `id`; the old key keeps working for `grace_ms` (0: stops now).
Result rotate_key(store::Store& s, const std::string& id, int64_t grace_ms, const std::string& actor,
                  const std::string& reason);
std::string keys_json(store::Store& s, const std::string& tenant);

// Adds the store's tenants and their usable keys to `cfg`. A tenant defined in the file and
// in the store takes the store's definition (reported in `warnings`).
void add_store_tenants(store::Store& s, config::Config& cfg, std::vector<std::string>& warnings);

}  // namespace sluice::control
