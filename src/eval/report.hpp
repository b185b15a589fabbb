// eval/report.hpp: what an eval run produced, as JSON (machines, the store), JUnit XML (CI
// test reports: one test case per suite case plus one per gate limit) and Markdown (humans:
// per-category table, the limits with their intervals, the worst regressions side by side).
#pragma once
#include <string>
#include <vector>

#include "eval/assertions.hpp"
#include "eval/gate.hpp"
#include "eval/suite.hpp"

namespace sluice::eval {

// One release's answers and verdicts: [case][repeat].
struct ArmRun {
  std::string release;
  std::string model;  // pinned model id
  std::vector<std::vector<Output>> outputs;
  std::vector<std::vector<CaseVerdict>> verdicts;
};

struct RunReport {
  std::string run_id;
  std::string created_by;
  int64_t created_at = 0;  // unix ms
  const Suite* suite = nullptr;
  std::string route;  // the candidate's route
  const ArmRun* cand = nullptr;
  const ArmRun* base = nullptr;  // null without a baseline
  int repeat = 1;
  double wall_s = 0;
  int64_t requests_sent = 0, cache_hits = 0, retries = 0;
  std::vector<bool> included;  // per case: usable answers from every arm
  std::vector<std::string> case_errors;  // per case: why it was left out ("" when included)
  GateResult gate;
  std::vector<std::string> warnings;
  // JUnit: "regressions" (default) marks a case failed only when the candidate fails it and
  // the baseline did not (a failure shared with the baseline is reported as skipped, "known
  // failure"); "all" marks every case the candidate fails.
  bool junit_all_failures = false;
};

// with_cases: include every case (outputs clipped to 2 KiB); false: the summary stored with
// the eval run (limits, categories, counts, flaky and regressed case ids).
std::string report_json(const RunReport& r, bool with_cases);
std::string report_junit(const RunReport& r);
std::string report_markdown(const RunReport& r);
// A few lines for the terminal.
std::string report_text(const RunReport& r);

// XML 1.0 text/attribute escaping; characters XML 1.0 forbids are replaced with U+FFFD and
// invalid UTF-8 bytes with '?'.
std::string xml_escape(std::string_view s);

}  // namespace sluice::eval
