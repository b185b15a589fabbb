// eval/assertions.hpp: promptfoo assertion semantics on one answer, plus sluice's `refusal`
// and `equals-number`. Pure functions over the answer; `llm-rubric` verdicts come from a
// lookup the runner fills by asking the judge route through the gateway.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eval/suite.hpp"

namespace sluice::eval {

// What one release answered to one case (one repeat).
struct Output {
  std::string text;  // message content (or the tool calls as JSON when there is no content)
  std::string finish_reason;
  double latency_ms = 0;  // request sent -> whole answer received
  double ttft_ms = 0;     // request sent -> first content token (= latency_ms when not streamed)
  int64_t tokens_in = 0, tokens_out = 0;
  double cost = 0;        // dollars, from the upstream's prices
  int status = 0;         // HTTP status (200 unless the release itself is broken, e.g. a 400)
  std::string release;    // x-sluice-release of the answer
  std::string request_id;
};

struct JudgeVerdict {
  bool pass = false;
  double score = 0;
  std::string reason;
};
// (judge, rubric, output) -> verdict; nullopt when the judge could not answer.
using JudgeLookup =
    std::function<std::optional<JudgeVerdict>(const std::string& judge, const std::string& rubric, const std::string& output)>;

struct AssertResult {
  bool pass = false;
  double score = 0;
  std::string reason;  // why it failed (or passed, for llm-rubric)
  std::string error;   // could not be evaluated (judge unavailable)
};

struct CaseVerdict {
  bool pass = false;
  double score = 0;  // weighted mean of the assertion scores
  std::vector<AssertResult> asserts;
  std::string reason;  // the first failing assertion's reason
  std::string error;   // an assertion could not be evaluated
};

inline constexpr size_t kMaxRegexSubject = 100 << 10;  // regex assertions see at most 100 KiB

AssertResult evaluate(const Assertion& a, const Output& o, const JudgeLookup& judge);
// promptfoo: a case passes when every assertion with weight > 0 passes, or, with a test
// threshold, when the weighted score reaches it.
CaseVerdict evaluate_case(const Case& c, const Output& o, const JudgeLookup& judge);

// The grading conversation sent to the judge (a JSON array of messages), and its reply.
std::string judge_messages(std::string_view rubric, std::string_view output);
std::optional<JudgeVerdict> parse_judge_reply(std::string_view reply);

// Regex search in a thread with a large stack and a time limit (std::regex recurses per
// input character and can backtrack exponentially). nullopt + error on timeout/invalid.
std::optional<bool> regex_search_bounded(const std::string& pattern, std::string_view subject, std::string& error);

}  // namespace sluice::eval
