#include "control/spend.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "admission/limiter.hpp"
#include "core/error.hpp"
#include "core/strings.hpp"

namespace sluice::control {

double RouteTrend::wow_growth() const {
  if (prev_7d_usd <= 0) return std::numeric_limits<double>::quiet_NaN();
  return last_7d_usd / prev_7d_usd - 1.0;
}

std::vector<RouteTrend> route_trends(const std::vector<store::RouteSpend>& rows, int64_t today) {
  const std::string t = admission::day_name(today), last_from = admission::day_name(today - 6),
                    prev_from = admission::day_name(today - 13);
  std::map<std::string, RouteTrend> by;
  for (const auto& r : rows) {
    if (r.day > t || r.day < prev_from) continue;
    RouteTrend& x = by[r.route];
    x.route = r.route;
    const double usd = static_cast<double>(r.micro_usd) / 1e6;
    if (r.day >= last_from) {
      x.last_7d_usd += usd;
      x.requests_7d += r.requests;
      if (r.day == t) x.today_usd += usd;
    } else {
      x.prev_7d_usd += usd;
    }
  }
  std::vector<RouteTrend> out;
  for (auto& [_, v] : by) out.push_back(std::move(v));
  return out;
}

namespace {
void usd_field(std::string& out, const char* name, double usd) {
  out += ",\"";
  out += name;
  out += "\":" + num_text(usd, 9);
}
}  // namespace

std::string spend_json(store::Store& s, int64_t today, int days, const std::string& route) {
  days = std::clamp(days, 14, 400);
  std::vector<store::RouteSpend> rows = s.list_route_spend(admission::day_name(today - days + 1), admission::day_name(today));
  if (!route.empty())
    rows.erase(std::remove_if(rows.begin(), rows.end(), [&](const store::RouteSpend& r) { return r.route != route; }),
               rows.end());
  struct Sum {
    int64_t micro = 0, requests = 0;
  };
  std::map<std::string, Sum> per_day, per_release, per_tenant;
  for (const auto& r : rows) {
    auto add = [&](Sum& x) {
      x.micro += r.micro_usd;
      x.requests += r.requests;
    };
    add(per_day[r.day]);
    add(per_release[r.route + '\x1f' + r.release]);
    add(per_tenant[r.tenant]);
  }
  auto cost_per_request = [](const Sum& x) { return x.requests > 0 ? double(x.micro) / 1e6 / double(x.requests) : 0.0; };
  std::string out = "{\"today\":\"" + admission::day_name(today) + "\",\"window_days\":" + std::to_string(days) + ",\"days\":[";
  for (int64_t d = today - days + 1; d <= today; ++d) {
    const std::string name = admission::day_name(d);
    const Sum x = per_day.count(name) ? per_day[name] : Sum{};
    if (out.back() != '[') out += ',';
    out += "{\"day\":\"" + name + "\"";
    usd_field(out, "usd", double(x.micro) / 1e6);
    out += ",\"requests\":" + std::to_string(x.requests) + "}";
  }
  out += "],\"routes\":[";
  for (const RouteTrend& t : route_trends(rows, today)) {
    if (out.back() != '[') out += ',';
    out += "{\"route\":";
    append_json_string(out, t.route);
    usd_field(out, "today_usd", t.today_usd);
    usd_field(out, "last_7d_usd", t.last_7d_usd);
    usd_field(out, "prev_7d_usd", t.prev_7d_usd);
    const double g = t.wow_growth();
    out += ",\"wow_growth\":" + (std::isnan(g) ? std::string("null") : num_text(g, 6));
    out += ",\"requests_7d\":" + std::to_string(t.requests_7d);
    usd_field(out, "cost_per_request_usd", t.requests_7d > 0 ? t.last_7d_usd / double(t.requests_7d) : 0.0);
    out += "}";
  }
  out += "],\"releases\":[";
  for (const auto& [k, x] : per_release) {
    if (out.back() != '[') out += ',';
    size_t sep = k.find('\x1f');
    out += "{\"route\":";
    append_json_string(out, k.substr(0, sep));
    out += ",\"release\":";
    append_json_string(out, k.substr(sep + 1));
    usd_field(out, "usd", double(x.micro) / 1e6);
    out += ",\"requests\":" + std::to_string(x.requests);
    usd_field(out, "cost_per_request_usd", cost_per_request(x));
    out += "}";
  }
  out += "],\"tenants\":[";
  for (const auto& [k, x] : per_tenant) {
    if (out.back() != '[') out += ',';
    out += "{\"tenant\":";
    append_json_string(out, k);
    usd_field(out, "usd", double(x.micro) / 1e6);
    out += ",\"requests\":" + std::to_string(x.requests);
    usd_field(out, "cost_per_request_usd", cost_per_request(x));
    out += "}";
  }
  return out + "]}";
}

}  // namespace sluice::control
