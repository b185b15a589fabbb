#include "cli/incident_cmds.hpp"

#include <simdjson.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "core/strings.hpp"
#include "incident/report.hpp"
#include "incident/timeline.hpp"
#include "net/http_client.hpp"

namespace sluice::cli {

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Window {
  std::string route, since = "2h", until;
};

// The admin API's timeline JSON back into entries (for the same text as the local path).
bool parse_entries(const std::string& body, std::vector<incident::Entry>& out, std::string& error) {
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  simdjson::dom::array events;
  if (p.parse(body).get(doc) || doc["events"].get_array().get(events)) {
    error = "not a timeline: " + body.substr(0, 200);
    return false;
  }
  for (simdjson::dom::element ev : events) {
    incident::Entry e;
    std::string_view v;
    int64_t t = 0;
    if (!ev["t_ms"].get_int64().get(t)) e.t_ms = t;
    if (!ev["kind"].get_string().get(v)) e.kind = v;
    if (!ev["route"].get_string().get(v)) e.route = v;
    if (!ev["subject"].get_string().get(v)) e.subject = v;
    if (!ev["summary"].get_string().get(v)) e.summary = v;
    simdjson::dom::element d;
    if (!ev["detail"].get(d)) e.detail = simdjson::minify(d);
    out.push_back(std::move(e));
  }
  return true;
}

// The window's entries, from the gateway (--admin) or the store. 0, else the exit code.
int fetch(const Common& c, const Window& w, std::vector<incident::Entry>& out, std::string* raw_json) {
  const int64_t now = now_ms();
  auto from = incident::parse_time(w.since, now);
  auto to = w.until.empty() ? std::optional<int64_t>(now + 1) : incident::parse_time(w.until, now);
  if (!from || !to) {
    std::cerr << "error: --since/--until take a duration (90s, 30m, 2h, 1d) or unix milliseconds\n";
    return 2;
  }
  if (c.remote()) {
    std::string path = "/admin/v1/timeline?since=" + std::to_string(*from) + "&until=" + std::to_string(*to);
    if (!w.route.empty()) path += "&route=" + percent_encode(w.route);
    auto r = net::http_request("GET", c.admin_url + path, c.token(), "");
    if (!r.error.empty() || r.status != 200) {
      std::cerr << "error: " << (r.error.empty() ? r.body : r.error) << "\n";
      return 2;
    }
    if (raw_json) *raw_json = r.body;
    std::string err;
    if (!parse_entries(r.body, out, err)) {
      std::cerr << "error: " << err << "\n";
      return 2;
    }
    return 0;
  }
  auto s = open(c);
  if (!s) return 2;
  incident::Query q;
  q.route = w.route;
  q.from_ms = *from;
  q.to_ms = *to;
  // Locally the route's upstreams are those its releases name (a running gateway also knows
  // its config routes, fallback chains and pool members: use --admin for those).
  std::vector<std::string> ups = w.route.empty() ? std::vector<std::string>() : incident::release_upstreams(*s, w.route);
  out = incident::timeline(*s, q, ups);
  if (raw_json) *raw_json = incident::to_json(out, w.route);
  return 0;
}

void add_window(CLI::App* c, Window& w) {
  c->add_option("--route", w.route, "only this route's timeline (and its upstreams'; default every route)");
  c->add_option("--since", w.since, "start: 90s, 30m, 2h, 1d ago, or unix ms (default 2h)");
  c->add_option("--until", w.until, "end: a duration ago or unix ms (default now)");
}

}  // namespace

int rollback_check(const Common& c, const std::string& route) {
  if (!c.remote()) {
    std::cerr << "error: readiness is probed by a running gateway: pass --admin http://HOST:PORT (or SLUICE_ADMIN_URL)\n";
    return 2;
  }
  auto r = net::http_request("GET", c.admin_url + "/admin/v1/routes/" + percent_encode(route) + "/readiness", c.token(),
                             "", std::chrono::seconds(30));
  if (!r.error.empty() || r.status != 200) {
    std::cerr << "error: " << (r.error.empty() ? r.body : r.error) << "\n";
    return 2;
  }
  simdjson::dom::parser p;
  simdjson::dom::element d;
  if (p.parse(r.body).get(d)) {
    std::cerr << "error: not JSON: " << r.body << "\n";
    return 2;
  }
  auto text = [&](const char* k) {
    std::string_view v;
    return d[k].get_string().get(v) ? std::string() : std::string(v);
  };
  bool healthy = false;
  double latency = -1;
  if (d["healthy"].get_bool().get(healthy)) healthy = false;
  if (d["latency_ms"].get_double().get(latency)) latency = -1;
  std::string target = text("target_release");
  std::cout << "route     " << route << "\n"
            << "target    " << (target.empty() ? "(none)" : target) << "\n"
            << "upstream  " << (text("upstream").empty() ? "-" : text("upstream"))
            << (text("model").empty() ? "" : " (model " + text("model") + ")") << "\n"
            << "probe     " << (latency < 0 ? std::string("not sent") : (healthy ? "ok" : "failed") + std::string(" in ") +
                                                                         num_text(latency, 4) + " ms")
            << "\n"
            << "detail    " << text("detail") << "\n"
            << "ready     " << (healthy ? "yes: a rollback now goes to a healthy upstream" : "NO") << "\n";
  return healthy ? 0 : 1;
}

std::function<int()> add_incident_commands(CLI::App& app) {
  auto common = std::make_shared<Common>();
  auto runner = std::make_shared<std::function<int()>>();
  auto* inc = app.add_subcommand("incident", "the incident timeline and postmortem skeleton");
  inc->require_subcommand(1);

  auto w = std::make_shared<Window>();
  auto json = std::make_shared<bool>(false);
  auto* tl = inc->add_subcommand(
      "timeline", "promotions, rollouts and their gate decisions, rollbacks, flags, alarms, reloads, breakers, in time order");
  add_window(tl, *w);
  tl->add_flag("--json", *json, "the admin API's JSON ({\"events\":[...]}) instead of text");
  add_common_options(tl, *common);
  tl->callback([=] {
    *runner = [=] {
      std::vector<incident::Entry> entries;
      std::string raw;
      if (int rc = fetch(*common, *w, entries, *json ? &raw : nullptr); rc != 0) return rc;
      if (*json) std::cout << raw << "\n";
      else if (entries.empty()) std::cout << "no events in the window\n";
      else std::cout << incident::to_text(entries);
      return 0;
    };
  });

  auto out = std::make_shared<std::string>(), log = std::make_shared<std::string>();
  auto suite = std::make_shared<std::string>("evals/regressions.yaml");
  auto* rep = inc->add_subcommand("report", "a postmortem skeleton in Markdown: timeline, affected requests, regression cases");
  add_window(rep, *w);
  rep->add_option("--out", *out, "write it to FILE (default: stdout)");
  rep->add_option("--log", *log, "request log to count from (default DATA_DIR/requests.jsonl when present)");
  rep->add_option("--suite", *suite, "the suite the proposed add-case lines extend (default evals/regressions.yaml)");
  add_common_options(rep, *common);
  rep->callback([=] {
    *runner = [=] {
      incident::ReportInput in;
      in.route = w->route;
      if (int rc = fetch(*common, *w, in.timeline, nullptr); rc != 0) return rc;
      const int64_t now = now_ms();
      in.from_ms = incident::parse_time(w->since, now).value_or(0);
      in.to_ms = w->until.empty() ? now : incident::parse_time(w->until, now).value_or(now);
      in.suite_path = *suite;
      in.log_path = log->empty() ? common->data_dir + "/requests.jsonl" : *log;
      std::ifstream f(in.log_path);
      if (f) in.counts = incident::count_requests(f, w->route, in.from_ms, in.to_ms);
      else if (!log->empty()) {
        std::cerr << "error: cannot read " << *log << "\n";
        return 2;
      }
      std::string md = incident::report_markdown(in);
      if (out->empty()) {
        std::cout << md;
        return 0;
      }
      std::ofstream o(*out, std::ios::trunc);
      o << md;
      if (!o) {
        std::cerr << "error: cannot write " << *out << "\n";
        return 2;
      }
      std::cout << "wrote " << *out << " (" << in.timeline.size() << " timeline events"
                << (in.counts ? ", " + std::to_string(in.counts->requests) + " requests, " +
                                    std::to_string(in.counts->errors) + " failed"
                              : std::string(", no request log"))
                << ")\n";
      return 0;
    };
  });
  return [runner] { return *runner ? (*runner)() : -1; };
}

}  // namespace sluice::cli
