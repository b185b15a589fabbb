// incident/report.hpp: `sluice incident report`: a postmortem skeleton in Markdown. The
// summary and the analysis are left for people; what the gateway knows is filled in: the
// timeline, the requests affected in the window (from the request log: requests, errors,
// degraded answers, by release), and the failing requests proposed as regression cases as
// ready-to-run `sluice eval add-case` command lines (eval/add_case.hpp).
#pragma once
#include <cstdint>
#include <istream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "incident/timeline.hpp"

namespace sluice::incident {

struct ReleaseCounts {
  int64_t requests = 0, errors = 0, degraded = 0;
};

struct RequestCounts {
  int64_t requests = 0, errors = 0, degraded = 0;
  std::map<std::string, ReleaseCounts> by_release;  // "" = no release (pass-through)
  std::map<std::string, int64_t> by_error;          // error_kind -> count
  struct Failing {
    std::string request_id, release, error_kind;
    int64_t ts = 0, status = 0;
    bool has_body = false;  // the route logs request bodies: add-case can replay it
  };
  std::vector<Failing> failing;  // the first `max_failing` in the window
  int64_t skipped_lines = 0;     // unreadable or oversized lines
};

// A failed request: a 5xx (or no status), or an error the gateway answered itself. Client
// hang-ups (499) are not the route's failures.
bool is_failure(int64_t status, const std::string& error_kind);
// Reads a request log (one JSON object per line) and counts the route's requests with
// from_ms <= ts < to_ms. Lines longer than 16 MiB are skipped.
RequestCounts count_requests(std::istream& log, const std::string& route, int64_t from_ms, int64_t to_ms,
                             size_t max_failing = 20);

struct ReportInput {
  std::string route;
  int64_t from_ms = 0, to_ms = 0;
  std::vector<Entry> timeline;
  std::optional<RequestCounts> counts;  // nullopt: no request log was read
  std::string log_path;                 // where the counts came from (shown, and passed to add-case)
  std::string suite_path = "evals/regressions.yaml";  // the suite add-case lines extend
};

std::string report_markdown(const ReportInput& in);

}  // namespace sluice::incident
