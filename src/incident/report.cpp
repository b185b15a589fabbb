#include "incident/report.hpp"

#include <simdjson.h>

#include "core/strings.hpp"

namespace sluice::incident {

namespace {

// Quotes a word for a POSIX shell when it needs it.
std::string sh(const std::string& s) {
  bool plain = !s.empty();
  for (char c : s)
    plain = plain && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/' ||
                      c == ':' || c == '=' || c == ',');
  if (plain) return s;
  std::string o = "'";
  for (char c : s) o += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return o + "'";
}

std::string pct(int64_t part, int64_t whole) {
  if (whole <= 0) return "-";
  return num_text(100.0 * static_cast<double>(part) / static_cast<double>(whole), 3) + "%";
}

}  // namespace

bool is_failure(int64_t status, const std::string& error_kind) {
  if (status == 499) return false;
  (void)error_kind;  // errors the gateway answered carry their 5xx status too
  return status >= 500 || status == 0;
}

RequestCounts count_requests(std::istream& log, const std::string& route, int64_t from_ms, int64_t to_ms,
                             size_t max_failing) {
  RequestCounts c;
  simdjson::dom::parser p;
  std::string line;
  while (std::getline(log, line)) {
    if (line.empty()) continue;
    if (line.size() > (16u << 20)) {
      ++c.skipped_lines;
      continue;
    }
    simdjson::dom::element e;
    if (p.parse(line).get(e) || !e.is_object()) {
      ++c.skipped_lines;
      continue;
    }
    auto text = [&](const char* k) {
      std::string_view v;
      return e[k].get_string().get(v) ? std::string() : std::string(v);
    };
    int64_t ts = 0, status = 0;
    if (e["ts"].get_int64().get(ts)) continue;
    if (ts < from_ms || ts >= to_ms) continue;
    if (!route.empty() && text("route") != route) continue;
    if (e["status"].get_int64().get(status)) status = 0;
    const std::string release = text("release"), error_kind = text("error_kind"), fallback = text("fallback");
    ReleaseCounts& r = c.by_release[release];
    ++c.requests;
    ++r.requests;
    if (!fallback.empty()) {
      ++c.degraded;
      ++r.degraded;
    }
    if (!is_failure(status, error_kind)) continue;
    ++c.errors;
    ++r.errors;
    ++c.by_error[error_kind.empty() ? "status " + std::to_string(status) : error_kind];
    if (c.failing.size() < max_failing) {
      simdjson::dom::element body;
      c.failing.push_back({text("request_id"), release, error_kind, ts, status, !e["request_body"].get(body)});
    }
  }
  return c;
}

std::string report_markdown(const ReportInput& in) {
  std::string o;
  o += "# Incident: " + (in.route.empty() ? std::string("all routes") : "route " + in.route) + "\n\n";
  o += "- Window: " + clock_text(in.from_ms) + " to " + clock_text(in.to_ms) + " UTC\n";
  o += "- Status: draft (written by `sluice incident report`; the sections marked TODO are for people)\n\n";
  o += "## Summary\n\nTODO: what happened, who was affected, for how long, in two or three sentences.\n\n";
  o += "## Impact\n\n";
  if (!in.counts) {
    o += "No request log was read (pass `--log FILE`, or keep DATA_DIR/requests.jsonl): counts unknown.\n\n";
  } else {
    const RequestCounts& c = *in.counts;
    o += "From `" + in.log_path + "`, requests of " + (in.route.empty() ? std::string("every route") : "`" + in.route + "`") +
         " in the window:\n\n";
    o += "| release | requests | errors | error rate | degraded (fallback) |\n|---|---:|---:|---:|---:|\n";
    for (const auto& [rel, r] : c.by_release)
      o += "| " + (rel.empty() ? std::string("(none)") : "`" + rel + "`") + " | " + std::to_string(r.requests) + " | " +
           std::to_string(r.errors) + " | " + pct(r.errors, r.requests) + " | " + std::to_string(r.degraded) + " |\n";
    o += "| **all** | " + std::to_string(c.requests) + " | " + std::to_string(c.errors) + " | " + pct(c.errors, c.requests) +
         " | " + std::to_string(c.degraded) + " |\n\n";
    if (!c.by_error.empty()) {
      o += "Errors by kind:";
      for (const auto& [k, n] : c.by_error) o += " `" + k + "` " + std::to_string(n) + ";";
      o.back() = '\n';
      o += "\n";
    }
    if (c.skipped_lines) o += "(" + std::to_string(c.skipped_lines) + " unreadable log lines skipped)\n\n";
  }
  o += "## Timeline\n\nFrom the gateway (`sluice incident timeline`), UTC:\n\n```\n";
  o += in.timeline.empty() ? std::string("(no events in the window)\n") : to_text(in.timeline);
  o += "```\n\n";
  o += "## Root cause\n\nTODO\n\n## What went well / what did not\n\nTODO\n\n";
  o += "## Regression cases\n\n";
  if (!in.counts || in.counts->failing.empty()) {
    o += "No failing request in the window to propose.\n";
  } else {
    o += "Failing requests of the window, proposed as permanent eval cases. Replace `--expect` with what the right "
         "answer must satisfy, then run each line:\n\n```sh\n";
    bool missing_body = false;
    for (const auto& f : in.counts->failing) {
      if (!f.has_body) missing_body = true;
      std::string desc = "incident " + (in.route.empty() ? std::string("") : in.route + " ") + clock_text(f.ts) + ": " +
                         (f.error_kind.empty() ? "status " + std::to_string(f.status) : f.error_kind) +
                         (f.release.empty() ? "" : " on " + f.release);
      o += "sluice eval add-case --suite " + sh(in.suite_path) + " --request " + sh(f.request_id) +
           " --expect not-refusal --description " + sh(desc) + (in.log_path.empty() ? "" : " --log " + sh(in.log_path)) +
           (f.has_body ? "" : "  # body not logged") + "\n";
    }
    o += "```\n";
    if (missing_body)
      o += "\nLines marked `# body not logged`: the route does not log request bodies, so add-case cannot replay them "
           "until it does (see docs/evals.md).\n";
    if (in.counts->errors > static_cast<int64_t>(in.counts->failing.size()))
      o += "\n(" + std::to_string(in.counts->errors - static_cast<int64_t>(in.counts->failing.size())) +
           " more failing requests not listed.)\n";
  }
  return o;
}

}  // namespace sluice::incident
