// gateway/dashboard.hpp: what the admin listener adds for the dashboard (docs/dashboard.md).
//
//   GET /ui/, /ui/<asset>             the embedded static files (src/ui): public, they hold no
//                                     data; any other /ui/ path needs a token (401, then 404)
//   GET /admin/v1/whoami              {"actor","role"}: the page shows buttons by role
//   GET /admin/v1/releases/{a}/diff/{b}   {"a","b","diff"}: what changed, as `sluice release diff`
//
// and the cross-site check every state-changing admin request goes through.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/tenants_view.hpp"
#include "net/wire.hpp"
#include "store/store.hpp"

namespace sluice::gateway {

struct UiAnswer {
  int status = 200;  // 200, or 304 when If-None-Match names the asset's ETag
  std::string_view body, content_type;
  std::vector<net::Header> headers;  // ETag, Cache-Control and the security headers
};
// The embedded asset at `path` (a GET under /ui); nullopt when there is none.
std::optional<UiAnswer> ui_asset(std::string_view path, std::string_view if_none_match);

// Why a request must be refused as cross-site, or "" to let it through. Reads (GET) always
// pass. A change is refused when its Origin is present and names another host than Host, or
// when the browser says Sec-Fetch-Site is cross-site or same-site. (Tokens travel in the
// Authorization header, never in cookies, so a forged request carries no credential anyway:
// this is defence in depth.)
std::string cross_site_refusal(bool is_get, std::string_view origin, std::string_view host,
                               std::string_view sec_fetch_site);

// whoami and release diff; nullopt when the path is not one of them.
std::optional<AdminAnswer> dashboard_endpoints(store::Store& st, const AdminCall& call);

}  // namespace sluice::gateway
