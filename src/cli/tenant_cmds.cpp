#include "cli/tenant_cmds.hpp"

#include "cli/common.hpp"
#include "control/tenants.hpp"
#include "core/strings.hpp"

namespace sluice::cli {

namespace {

// The settings flags of `tenant create` and `tenant update`; only those given are sent.
struct TenantFlags {
  int64_t rpm = 0, tpm = 0, max_concurrent = 0, max_input_tokens = 0, reserve_output_tokens = 0;
  double budget_day = 0, budget_month = 0;
  std::string tier, routes;
  std::vector<CLI::Option*> given;

  void add(CLI::App* c) {
    auto opt = [&](CLI::Option* o) { given.push_back(o); };
    opt(c->add_option("--rpm", rpm, "requests per minute (0: no limit)"));
    opt(c->add_option("--tpm", tpm, "tokens per minute, input + output (0: no limit)"));
    opt(c->add_option("--max-concurrent", max_concurrent, "requests in flight (0: no limit)"));
    opt(c->add_option("--max-input-tokens", max_input_tokens, "input tokens per request (0: no limit)"));
    opt(c->add_option("--reserve-output-tokens", reserve_output_tokens,
                      "tokens reserved for a request that sets no max_tokens (default 256)"));
    opt(c->add_option("--tier", tier, "critical | standard | sheddable (who is shed last/first)"));
    opt(c->add_option("--budget-usd-per-day", budget_day, "money per UTC day (0: none)"));
    opt(c->add_option("--budget-usd-per-month", budget_month, "money per UTC month (0: none)"));
    opt(c->add_option("--routes", routes, "comma-separated routes it may call (\"\": all)"));
  }
  // The given flags as the JSON settings object.
  std::string json() const {
    std::string o = "{";
    auto put = [&](const char* key, const std::string& v) {
      if (o.size() > 1) o += ",";
      o += "\"" + std::string(key) + "\":" + v;
    };
    for (CLI::Option* opt : given) {
      if (opt->count() == 0) continue;
      const std::string n = opt->get_name();
      if (n == "--rpm") put("rpm", std::to_string(rpm));
      if (n == "--tpm") put("tpm", std::to_string(tpm));
      if (n == "--max-concurrent") put("max_concurrent", std::to_string(max_concurrent));
      if (n == "--max-input-tokens") put("max_input_tokens", std::to_string(max_input_tokens));
      if (n == "--reserve-output-tokens") put("reserve_output_tokens", std::to_string(reserve_output_tokens));
      if (n == "--tier") put("tier", json_str(tier));
      if (n == "--budget-usd-per-day") put("budget_usd_per_day", num_text(budget_day, 12));
      if (n == "--budget-usd-per-month") put("budget_usd_per_month", num_text(budget_month, 12));
      if (n == "--routes") {
        std::string list = "[";
        for (auto r : split(routes, ',')) {
          r = trim(r);
          if (r.empty()) continue;
          if (list.size() > 1) list += ",";
          list += json_str(std::string(r));
        }
        put("routes", list + "]");
      }
    }
    return o + "}";
  }
};

// `spec` plus "name" and "reason" members, for the admin API.
std::string with_members(const std::string& spec, const std::string& name, const std::string& reason) {
  std::string extra;
  if (!name.empty()) extra += "\"name\":" + json_str(name);
  if (!reason.empty()) extra += std::string(extra.empty() ? "" : ",") + "\"reason\":" + json_str(reason);
  if (extra.empty()) return spec;
  return "{" + extra + (spec.size() > 2 ? "," + spec.substr(1) : "}");
}

}  // namespace

std::function<int()> add_tenant_commands(CLI::App& app) {
  auto common = std::make_shared<Common>();
  auto runner = std::make_shared<std::function<int()>>();
  auto name = std::make_shared<std::string>(), reason = std::make_shared<std::string>();
  auto actor = [common] { return common->actor.empty() ? default_actor() : common->actor; };

  auto* tenant = app.add_subcommand("tenant", "tenants: their limits, tier, budgets and routes");
  tenant->require_subcommand(1);
  auto create_flags = std::make_shared<TenantFlags>(), update_flags = std::make_shared<TenantFlags>();
  auto* create = tenant->add_subcommand("create", "define a tenant (then give it keys: sluice key create)");
  create->add_option("name", *name, "tenant name")->required();
  create_flags->add(create);
  create->add_option("--reason", *reason, "why (audited)");
  add_common_options(create, *common);
  create->callback([=] {
    *runner = [=] {
      const std::string spec = create_flags->json();
      if (common->remote()) return remote_call(*common, "POST", "/admin/v1/tenants", with_members(spec, *name, *reason));
      auto s = open(*common);
      return s ? print(control::create_tenant(*s, *name, spec, actor(), *reason)) : 2;
    };
  });
  auto* update = tenant->add_subcommand("update", "change some of a tenant's settings (the rest stay)");
  update->add_option("name", *name, "tenant name")->required();
  update_flags->add(update);
  update->add_option("--reason", *reason, "why (audited)");
  add_common_options(update, *common);
  update->callback([=] {
    *runner = [=] {
      const std::string spec = update_flags->json();
      if (common->remote())
        return remote_call(*common, "POST", "/admin/v1/tenants/" + *name, with_members(spec, "", *reason));
      auto s = open(*common);
      return s ? print(control::update_tenant(*s, *name, spec, actor(), *reason)) : 2;
    };
  });
  auto* list = tenant->add_subcommand("list", "every tenant with its settings (and usage, with --admin)");
  add_common_options(list, *common);
  list->callback([=] {
    *runner = [=] {
      if (common->remote()) return remote_call(*common, "GET", "/admin/v1/tenants");
      auto s = open(*common);
      return s ? print({"", control::tenants_json(*s)}) : 2;
    };
  });
  auto* show = tenant->add_subcommand("show", "a tenant's settings and keys (and usage, with --admin)");
  show->add_option("name", *name, "tenant name")->required();
  add_common_options(show, *common);
  show->callback([=] {
    *runner = [=] {
      if (common->remote()) return remote_call(*common, "GET", "/admin/v1/tenants/" + *name);
      auto s = open(*common);
      return s ? print(control::show_tenant(*s, *name)) : 2;
    };
  });

  auto* key = app.add_subcommand("key", "tenants' API keys (shown once, stored hashed)");
  key->require_subcommand(1);
  auto label = std::make_shared<std::string>(), grace = std::make_shared<std::string>("0");
  auto* kcreate = key->add_subcommand("create", "a new key for TENANT; prints it once");
  kcreate->add_option("tenant", *name, "tenant name")->required();
  kcreate->add_option("--label", *label, "what the key is for");
  kcreate->add_option("--reason", *reason, "why (audited)");
  add_common_options(kcreate, *common);
  kcreate->callback([=] {
    *runner = [=] {
      if (common->remote())
        return remote_call(*common, "POST", "/admin/v1/tenants/" + *name + "/keys",
                           "{\"label\":" + json_str(*label) + ",\"reason\":" + json_str(*reason) + "}");
      auto s = open(*common);
      return s ? print(control::create_key(*s, *name, *label, actor(), *reason)) : 2;
    };
  });
  auto* klist = key->add_subcommand("list", "keys (of TENANT, or all): ids, prefixes, states; never the keys");
  klist->add_option("tenant", *name, "tenant name");
  add_common_options(klist, *common);
  klist->callback([=] {
    *runner = [=] {
      if (common->remote())
        return remote_call(*common, "GET", name->empty() ? "/admin/v1/keys" : "/admin/v1/tenants/" + *name + "/keys");
      auto s = open(*common);
      return s ? print({"", control::keys_json(*s, *name)}) : 2;
    };
  });
  auto* revoke = key->add_subcommand("revoke", "stop a key now (every worker within 50 ms)");
  revoke->add_option("id", *name, "key id (key_...)")->required();
  revoke->add_option("--reason", *reason, "why (audited)");
  add_common_options(revoke, *common);
  revoke->callback([=] {
    *runner = [=] {
      if (common->remote())
        return remote_call(*common, "POST", "/admin/v1/keys/" + *name + "/revoke", "{\"reason\":" + json_str(*reason) + "}");
      auto s = open(*common);
      return s ? print(control::revoke_key(*s, *name, actor(), *reason)) : 2;
    };
  });
  auto* rotate = key->add_subcommand("rotate", "a successor key; the old one works for --grace more (default 0)");
  rotate->add_option("id", *name, "key id (key_...)")->required();
  rotate->add_option("--grace", *grace, "how long the old key keeps working: 0, 90s, 30m, 1h, 2d");
  rotate->add_option("--reason", *reason, "why (audited)");
  add_common_options(rotate, *common);
  rotate->callback([=] {
    *runner = [=] {
      const int64_t ms = parse_duration_ms(*grace);
      if (ms < 0) return print({"--grace expects 0 or e.g. 90s, 30m, 1h, 2d", ""});
      if (common->remote())
        return remote_call(*common, "POST", "/admin/v1/keys/" + *name + "/rotate",
                           "{\"grace_seconds\":" + std::to_string(ms / 1000) + ",\"reason\":" + json_str(*reason) + "}");
      auto s = open(*common);
      return s ? print(control::rotate_key(*s, *name, ms, actor(), *reason)) : 2;
    };
  });
  return [runner] { return *runner ? (*runner)() : -1; };
}

}  // namespace sluice::cli
