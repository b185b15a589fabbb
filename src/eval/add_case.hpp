// eval/add_case.hpp: `sluice eval add-case`: a logged production request becomes a
// permanent case of a suite (the incident loop: every failure becomes a test).
//
// The request log (DATA_DIR/requests.jsonl, one JSON object per line) must carry the request
// for this: the line's "request_body" (the JSON body the client sent, as an object or as a
// string) and, when available, "response_text" (the answer's text, kept in the case's
// metadata for context). Routes log them only when configured to.
#pragma once
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace sluice::eval {

inline constexpr size_t kMaxLogLineBytes = 16 << 20;

struct AddCaseOptions {
  std::string suite_path;
  std::string request_id;
  std::vector<std::string> expect;  // "TYPE" or "TYPE:VALUE", e.g. "not-refusal", "equals-number:42"
  std::string category = "target";
  std::string description;
  std::string data_dir = "./sluice-data";
  std::string log_path;  // default DATA_DIR/requests.jsonl
};

// The fields add-case reads from one request-log line.
struct LoggedRequest {
  std::string request_id, route, release;
  std::string body;           // the client's request body (JSON text); "" when not logged
  std::string response_text;  // "" when not logged
};

// Finds the request's line in the log (streamed, lines above 16 MiB skipped).
std::optional<LoggedRequest> find_logged_request(const std::string& log_path, const std::string& request_id,
                                                 std::string& error);

// The YAML text of one case (a block sequence item "- ..." at column 0), built from the
// logged request and the --expect assertions. Empty and `error` on bad input.
std::string case_yaml(const LoggedRequest& req, const AddCaseOptions& o, std::string& error);

// Inserts `item` (from case_yaml) at the end of the suite's `tests:` list (creating it when
// absent) and returns the new file text; empty and `error` when it cannot be placed.
std::string insert_case(const std::string& suite_text, const std::string& item_at_indent0, std::string& error);

// 0 on success, 1 when the request cannot become a case, 2 on bad input/files.
int add_case(const AddCaseOptions& o, std::ostream& out, std::ostream& err);

}  // namespace sluice::eval
