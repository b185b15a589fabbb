// A tenant's settings as JSON (the store's and the admin API's form): applied member by
// member, refused whole when one member is wrong, round-tripped.
#include "config/tenant_spec.hpp"

#include <gtest/gtest.h>

namespace sluice::config {
namespace {

TEST(TenantSpec, AppliesOnlyThePresentMembersAndRoundTrips) {
  Tenant t;
  t.name = "acme";
  ASSERT_EQ(apply_tenant_json(R"({"rpm":60,"tpm":1000,"tier":"critical","routes":["bot"],"budget_usd_per_day":2.5})", t), "");
  EXPECT_EQ(t.limits.rpm, 60);
  EXPECT_EQ(t.tier, admission::Tier::kCritical);
  EXPECT_EQ(t.routes, std::vector<std::string>{"bot"});
  ASSERT_EQ(apply_tenant_json(R"({"tpm":2000})", t), "");
  EXPECT_EQ(t.limits.rpm, 60) << "a partial update keeps the rest";
  EXPECT_EQ(t.limits.tpm, 2000);
  Tenant u;
  u.name = "acme";
  ASSERT_EQ(apply_tenant_json(tenant_json(t), u), "");
  EXPECT_EQ(tenant_json(u), tenant_json(t));
  EXPECT_DOUBLE_EQ(u.budget_usd_per_day, 2.5);
}

TEST(TenantSpec, RefusesBadSettingsNamingThemAndChangesNothing) {
  Tenant t;
  t.name = "acme";
  t.limits.rpm = 5;
  for (const char* bad : {R"({"rpm":-1})", R"({"rpm":1e12})", R"({"rpm":1.5})", R"({"rpm":"60"})", R"({"tier":"gold"})",
                          R"({"rpmm":1})", R"({"budget_usd_per_day":-2})", R"({"routes":"bot"})", R"({"routes":[""]})",
                          R"({"name":"other"})", R"([1])", R"({"rpm":)", R"({"tpm":10, "rpm":-1})"}) {
    std::string e = apply_tenant_json(bad, t);
    EXPECT_FALSE(e.empty()) << bad;
    EXPECT_EQ(t.limits.rpm, 5) << bad;
    EXPECT_EQ(t.limits.tpm, 0) << bad << ": nothing applied when one member is wrong";
  }
  EXPECT_NE(apply_tenant_json(R"({"rpm":-1})", t).find("'rpm'"), std::string::npos);
  EXPECT_NE(apply_tenant_json(R"({"rpmm":1})", t).find("unknown tenant setting 'rpmm'"), std::string::npos);
}

TEST(TenantSpec, Names) {
  EXPECT_TRUE(valid_tenant_name("acme-corp.eu_1"));
  EXPECT_FALSE(valid_tenant_name(""));
  EXPECT_FALSE(valid_tenant_name("-acme"));
  EXPECT_FALSE(valid_tenant_name("ac me"));
  EXPECT_FALSE(valid_tenant_name("a/b"));
  EXPECT_FALSE(valid_tenant_name(std::string(65, 'a')));
}

}  // namespace
}  // namespace sluice::config
