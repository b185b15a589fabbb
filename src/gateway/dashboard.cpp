#include "gateway/dashboard.hpp"

#include "control/releases.hpp"
#include "core/error.hpp"
#include "core/strings.hpp"
#include "ui/assets.hpp"

namespace sluice::gateway {

std::optional<UiAnswer> ui_asset(std::string_view path, std::string_view if_none_match) {
  const ui::Asset* a = ui::find(path);
  if (!a) return std::nullopt;
  UiAnswer r;
  r.content_type = a->content_type;
  // Asset names carry no hash: browsers revalidate every time (a 304 when unchanged), so a
  // new sluice binary's dashboard is seen on the next load.
  r.headers = {{"ETag", a->etag},
               {"Cache-Control", "no-cache"},
               {"Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"},
               {"X-Frame-Options", "DENY"},
               {"X-Content-Type-Options", "nosniff"},
               {"Referrer-Policy", "no-referrer"}};
  if (!if_none_match.empty() && if_none_match.find(a->etag) != std::string_view::npos) {
    r.status = 304;
    return r;
  }
  r.body = a->body;
  return r;
}

std::string cross_site_refusal(bool is_get, std::string_view origin, std::string_view host,
                               std::string_view sec_fetch_site) {
  if (is_get) return "";
  if (iequals(sec_fetch_site, "cross-site") || iequals(sec_fetch_site, "same-site"))
    return "Sec-Fetch-Site: " + std::string(sec_fetch_site);
  if (!origin.empty()) {
    // "scheme://host[:port]" must name the Host the request was sent to ("null" never does).
    std::string_view o = origin;
    const size_t sep = o.find("://");
    o = sep == std::string_view::npos ? std::string_view() : o.substr(sep + 3);
    if (o.empty() || !iequals(o, trim(host))) return "Origin " + std::string(origin) + " is not Host " + std::string(host);
  }
  return "";
}

std::optional<AdminAnswer> dashboard_endpoints(store::Store& st, const AdminCall& c) {
  const bool get = c.method == "GET";
  if (c.path == "/admin/v1/whoami" && get) {
    static constexpr const char* kRoles[] = {"", "viewer", "operator", "admin"};
    std::string o = "{\"actor\":";
    append_json_string(o, c.actor);
    o += ",\"role\":\"";
    o += kRoles[c.rank < 0 || c.rank > 3 ? 0 : c.rank];
    o += "\"}";
    return AdminAnswer{200, std::move(o), false};
  }
  constexpr std::string_view kReleases = "/admin/v1/releases/";
  if (get && starts_with(c.path, kReleases)) {
    std::string_view rest = c.path.substr(kReleases.size());
    const size_t at = rest.find("/diff/");
    if (at == std::string_view::npos) return std::nullopt;
    const std::string a(rest.substr(0, at)), b(rest.substr(at + 6));
    control::Result r = control::diff_releases_text(st, a, b);
    if (!r.ok()) return AdminAnswer{404, ApiError{404, "invalid_request_error", "release_not_found", r.error}.to_json(), false};
    std::string o = "{\"a\":";
    append_json_string(o, a);
    o += ",\"b\":";
    append_json_string(o, b);
    o += ",\"diff\":";
    append_json_string(o, r.text);
    o += "}";
    return AdminAnswer{200, std::move(o), false};
  }
  return std::nullopt;
}

}  // namespace sluice::gateway
