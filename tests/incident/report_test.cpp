// The postmortem skeleton: counts from the request log and the proposed add-case lines.
#include "incident/report.hpp"

#include <gtest/gtest.h>

#include <sstream>

namespace sluice::incident {
namespace {

TEST(Report, CountsTheRoutesRequestsInTheWindow) {
  std::istringstream log(
      R"({"ts":100,"request_id":"r1","route":"math","release":"rel_a","status":200,"error_kind":null}
{"ts":150,"request_id":"r2","route":"math","release":"rel_b","status":502,"error_kind":"upstream_failed","request_body":"{}"}
{"ts":160,"request_id":"r3","route":"math","release":"rel_b","status":200,"fallback":"static","error_kind":null}
{"ts":170,"request_id":"r4","route":"math","release":"rel_b","status":499,"error_kind":"client_closed"}
{"ts":180,"request_id":"r5","route":"other","release":"rel_x","status":500}
{"ts":999,"request_id":"r6","route":"math","release":"rel_b","status":500}
not json
)");
  RequestCounts c = count_requests(log, "math", 100, 900);
  EXPECT_EQ(c.requests, 4);
  EXPECT_EQ(c.errors, 1);
  EXPECT_EQ(c.degraded, 1);
  EXPECT_EQ(c.by_release["rel_b"].requests, 3);
  EXPECT_EQ(c.by_release["rel_b"].errors, 1);
  EXPECT_EQ(c.by_error["upstream_failed"], 1);
  EXPECT_EQ(c.skipped_lines, 1);
  ASSERT_EQ(c.failing.size(), 1u);
  EXPECT_EQ(c.failing[0].request_id, "r2");
  EXPECT_TRUE(c.failing[0].has_body);
}

TEST(Report, MarkdownHasTheTimelineAndRunnableAddCaseLines) {
  ReportInput in;
  in.route = "math";
  in.from_ms = 0;
  in.to_ms = 1000;
  in.timeline = {{100, "rollback", "math", "rel_a", "rolled back to rel_a (from rel_b) by bob", "{}"}};
  RequestCounts c;
  c.requests = 2;
  c.errors = 1;
  c.by_release["rel_b"] = {2, 1, 0};
  c.failing.push_back({"req-1", "rel_b", "upstream_failed", 150, 502, true});
  c.failing.push_back({"req-2", "rel_b", "", 160, 500, false});
  in.counts = c;
  in.log_path = "/tmp/it's.jsonl";
  in.suite_path = "evals/math.yaml";
  std::string md = report_markdown(in);
  EXPECT_NE(md.find("## Timeline"), std::string::npos);
  EXPECT_NE(md.find("rollback            math  rolled back to rel_a (from rel_b) by bob"), std::string::npos) << md;
  EXPECT_NE(md.find("| `rel_b` | 2 | 1 | 50% | 0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("sluice eval add-case --suite evals/math.yaml --request req-1 --expect not-refusal --description "
                    "'incident math 1970-01-01 00:00:00.150: upstream_failed on rel_b' --log '/tmp/it'\\''s.jsonl'\n"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("--request req-2 --expect not-refusal"), std::string::npos);
  EXPECT_NE(md.find("# body not logged"), std::string::npos);
}

}  // namespace
}  // namespace sluice::incident
