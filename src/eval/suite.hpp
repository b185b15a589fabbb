// eval/suite.hpp: an eval suite: test cases in categories, each with the variables (or raw
// messages) sent to a release and promptfoo-style assertions on its answer, plus the gate
// (per-category limits decided with paired statistics, see gate.hpp).
//
// The file format is promptfoo's (`description`, `prompts`, `defaultTest`, `tests` with
// `vars`/`assert`/`threshold`/`metadata`, tests from `file://x.csv`) with sluice's additions:
// `name`, `datasets` (cases from JSONL/CSV with a column mapping), `gate`, `judge`, a case's
// `category` (or `metadata.category`) and raw `messages`. See docs/evals.md.
#pragma once
#include "core/csv.hpp"
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sluice::eval {

// Size limits for everything a suite pulls in (a suite is operator input, not trusted).
inline constexpr size_t kMaxSuiteBytes = 8 << 20;     // the YAML file itself
inline constexpr size_t kMaxDatasetBytes = 64 << 20;  // one JSONL/CSV file
inline constexpr size_t kMaxCases = 100000;
inline constexpr size_t kMaxVarBytes = 256 << 10;     // one variable's value
inline constexpr size_t kMaxAssertsPerCase = 64;

inline const char* const kCategories[] = {"target", "off-task", "safety", "over-refusal", "format"};

struct Assertion {
  std::string type;  // without the "not-" prefix, e.g. "contains"
  bool negate = false;
  std::string value;                // string form of the value (rubric, substring, number, ...)
  std::vector<std::string> values;  // contains-any / contains-all
  std::string json_value;           // is-json/contains-json schema, equals on an object (JSON)
  std::optional<double> threshold;
  double weight = 1;
  std::string judge;  // llm-rubric: route or release that grades (else the suite's judge)
  std::string origin; // file:line
};

struct Case {
  std::string id;           // stable within the suite: description, dataset row or index
  std::string description;
  std::string category = "target";
  std::vector<std::pair<std::string, std::string>> vars;  // sent as the body's "vars"
  std::string messages_json;  // the caller's messages (JSON array); "" when none
  std::string prefix, suffix;  // promptfoo's options.prefix/suffix (__prefix/__suffix): around the prompt
  std::vector<Assertion> asserts;
  std::optional<double> threshold;  // promptfoo test threshold on the weighted score
  std::string origin;               // file:line (or file:row) it came from
};

// One limit of the gate. See gate.hpp for how it is decided.
enum class Metric { kPassRate, kCost, kP95Ttft, kP95Latency };
enum class LimitKind {
  kFloor,        // candidate's value >= value (pass rate)
  kCeiling,      // candidate's value <= value (cost per case, p95 ms)
  kMaxDrop,      // candidate - baseline >= -value (pass rate, absolute points as a fraction)
  kMaxIncrease,  // candidate / baseline <= 1 + value (cost, latency)
};
struct LimitSpec {
  std::string category;  // "" = every case ("all")
  std::string key;       // the YAML key, e.g. "max_drop" (for names in reports)
  Metric metric = Metric::kPassRate;
  LimitKind kind = LimitKind::kFloor;
  double value = 0;
};

struct GateSpec {
  double alpha = 0.05;           // two-sided level of every interval (1 - alpha coverage)
  bool inconclusive_fails = true;  // "not enough evidence": fail closed unless configured
  int resamples = 2000;          // paired bootstrap resamples
  uint64_t seed = 1;
  std::vector<LimitSpec> limits;
  bool defaulted = false;  // no `gate:` in the file: max_drop 0.02 per category
};

struct Suite {
  std::string name;  // identifies the suite in eval runs (rollouts match on it)
  std::string description;
  std::string path;
  std::string hash;  // sha256 over the resolved cases and gate: changes when any input does
  std::string prompt;  // promptfoo `prompts[0]`: rendered with vars into the caller's message(s)
  bool stream = true;  // stream responses (time to first token is measured)
  std::string judge;   // default grader route/release for llm-rubric
  std::vector<Case> cases;
  GateSpec gate;
  std::vector<std::string> warnings;
  std::vector<std::string> categories() const;  // in first-seen order
};

// Loads and validates a suite (file:line in every error). nullopt and `error` on failure.
std::optional<Suite> load_suite(const std::string& path, std::string& error);

// "{{ name }}" substitution (promptfoo/Nunjucks variables only). Missing variables are
// reported in `missing` (first one) and render as "".
std::string render_vars(std::string_view text, const std::vector<std::pair<std::string, std::string>>& vars,
                        std::string* missing = nullptr);

// The suite prompt is a chat prompt (a JSON array of messages), not text.
bool is_chat_prompt(const Suite& s);

// Why promptfoo's OpenAI provider would not send a rendered text prompt as one user message
// ("" when it would): it reads "- role:" text as YAML messages, sends a JSON array as the
// messages and any other JSON value as they are, and refuses text that looks like JSON.
std::string prompt_shape_error(std::string_view rendered);

// The messages sent for a case: its own raw messages, else the suite prompt rendered with
// its vars (a JSON array of messages, or one user message with the case's prefix and suffix
// around the prompt; a text prompt that renders to a JSON array is those messages, as promptfoo
// sends it), else "" (vars only).
std::string case_messages(const Suite& s, const Case& c);

using sluice::parse_csv;  // core/csv.hpp

}  // namespace sluice::eval
