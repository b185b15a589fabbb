#include "eval/assertions.hpp"

#include <pthread.h>
#include <simdjson.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <regex>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "eval/js_text.hpp"
#include "eval/promptfoo_refusal.hpp"
#include "eval/yaml_json.hpp"
#include "guard/pii.hpp"
#include "quality/refusal.hpp"
#include "quality/text.hpp"

namespace sluice::eval {

namespace {

// As promptfoo compares case-insensitively (JavaScript's toLowerCase).
std::string lower(std::string_view s) { return js_lower(s); }

std::string clip(std::string_view s, size_t n = 80) {
  if (s.size() <= n) return std::string(s);
  return std::string(s.substr(0, n)) + "...";
}

std::string quote(std::string_view s) { return "\"" + clip(s) + "\""; }

// promptfoo's extractJsonObjects: from each '{', the first span whose braces balance (or,
// at the end of the text, closed) that parses as a mapping (YAML flow, so unquoted keys and
// single quotes pass); scanning resumes after it. At most `max` objects.
std::vector<YAML::Node> json_objects(std::string_view text, size_t max) {
  constexpr size_t kMaxObject = 100000;
  std::vector<YAML::Node> out;
  for (size_t i = 0; i < text.size() && out.size() < max; ++i) {
    if (text[i] != '{') continue;
    int open = 1, close = 0;
    size_t j = i + 1;
    while (j < std::min(i + kMaxObject, text.size()) && open > close) {
      if (text[j] == '{') ++open;
      if (text[j] == '}') ++close;
      ++j;
      if (open != close && j != text.size() && j != i + kMaxObject) continue;
      std::string cand(text.substr(i, j - i));
      if (open > close) cand.append(static_cast<size_t>(open - close), '}');
      YAML::Node doc;
      try {
        doc = YAML::Load(cand);
      } catch (const YAML::Exception&) {
        if (open == close) break;
        continue;
      }
      if (doc.IsMap()) {
        out.push_back(doc);
        i = j - 1;
        break;
      }
      if (open == close) break;
    }
  }
  return out;
}

// promptfoo's contains-json: some object in the text (json_objects), valid against the
// schema when there is one.
bool contains_json(std::string_view text, const std::string& schema, std::string& why) {
  auto objects = json_objects(text, 256);
  if (objects.empty()) {
    why = "no JSON object in the output";
    return false;
  }
  if (schema.empty()) return true;
  std::string last_error;
  for (const auto& o : objects) {
    auto chk = quality::check_json(yaml_to_json(o), schema);
    if (chk.valid) return true;
    last_error = chk.error;
  }
  why = "no embedded JSON object matched: " + last_error;
  return false;
}

struct RegexJob {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  bool match = false;
  std::string error;
  std::string pattern, subject;
};

void* regex_thread(void* arg) {
  auto* holder = static_cast<std::shared_ptr<RegexJob>*>(arg);
  std::shared_ptr<RegexJob> job = std::move(*holder);
  delete holder;
  bool match = false;
  std::string error;
  try {
    // Over code points, as JavaScript's RegExp matches characters (not UTF-8 bytes).
    std::wregex re(js_widen(job->pattern), std::regex::ECMAScript);
    match = std::regex_search(js_widen(job->subject), re);
  } catch (const std::regex_error& e) {
    error = std::string("regex: ") + e.what();
  }
  std::lock_guard<std::mutex> lock(job->mu);
  job->match = match;
  job->error = std::move(error);
  job->done = true;
  job->cv.notify_all();
  return nullptr;
}

}  // namespace

std::optional<bool> regex_search_bounded(const std::string& pattern, std::string_view subject, std::string& error) {
  if (subject.size() > kMaxRegexSubject) {
    error = "output of " + std::to_string(subject.size()) + " bytes is above the 100 KiB regex limit";
    return std::nullopt;
  }
  auto job = std::make_shared<RegexJob>();
  job->pattern = pattern;
  job->subject = std::string(subject);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, size_t{512} << 20);  // reserved, touched only as deep as needed
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t t;
  auto* holder = new std::shared_ptr<RegexJob>(job);
  int rc = pthread_create(&t, &attr, regex_thread, holder);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    delete holder;
    error = "regex: cannot start a thread";
    return std::nullopt;
  }
  std::unique_lock<std::mutex> lock(job->mu);
  if (!job->cv.wait_for(lock, std::chrono::seconds(5), [&] { return job->done; })) {
    error = "regex did not finish within 5 s (catastrophic backtracking?)";
    return std::nullopt;  // the detached thread finishes (or not) on its own
  }
  if (!job->error.empty()) {
    error = job->error;
    return std::nullopt;
  }
  return job->match;
}

AssertResult evaluate(const Assertion& a, const Output& o, const JudgeLookup& judge) {
  AssertResult r;
  const std::string& out = o.text;
  const std::string& t = a.type;
  std::string why;      // reason when the (un-negated) check fails
  std::string matched;  // what a negated check found, when that says more than "matched"
  bool pass = false;
  double score = -1;  // -1: 1/0 from pass

  if (t == "equals") {
    if (!a.json_value.empty()) {
      auto eq = quality::json_equal(out, a.json_value);
      pass = eq.value_or(false);
      why = eq ? "JSON differs from the expected value" : "output is not JSON";
    } else {
      pass = out == a.value;
      why = "expected " + quote(a.value) + ", got " + quote(out);
    }
  } else if (t == "contains") {
    pass = out.find(a.value) != std::string::npos;
    why = "does not contain " + quote(a.value);
  } else if (t == "icontains") {
    pass = lower(out).find(lower(a.value)) != std::string::npos;
    why = "does not contain " + quote(a.value) + " (any case)";
  } else if (t == "starts-with") {
    pass = starts_with(out, a.value);
    why = "does not start with " + quote(a.value);
  } else if (t == "regex") {
    std::string err;
    auto m = regex_search_bounded(a.value, out, err);
    pass = m.value_or(false);
    why = m ? "does not match /" + clip(a.value) + "/" : err;
  } else if (t == "contains-any" || t == "icontains-any") {
    bool ci = t[0] == 'i';
    std::string hay = ci ? lower(out) : out;
    for (const auto& v : a.values) pass = pass || hay.find(ci ? lower(v) : v) != std::string::npos;
    why = "contains none of the " + std::to_string(a.values.size()) + " values";
  } else if (t == "contains-all" || t == "icontains-all") {
    bool ci = t[0] == 'i';
    std::string hay = ci ? lower(out) : out;
    pass = true;
    for (const auto& v : a.values) {
      if (hay.find(ci ? lower(v) : v) == std::string::npos) {
        pass = false;
        why = "does not contain " + quote(v);
        break;
      }
    }
  } else if (t == "is-json") {
    auto chk = quality::check_json(out, a.json_value);
    pass = chk.valid;
    why = chk.error.empty() ? "not valid JSON" : chk.error;
  } else if (t == "contains-json") {
    pass = contains_json(out, a.json_value, why);
  } else if (t == "latency") {
    pass = o.latency_ms <= *a.threshold;
    why = "latency " + std::to_string(static_cast<int64_t>(o.latency_ms)) + " ms > " +
          std::to_string(static_cast<int64_t>(*a.threshold)) + " ms";
  } else if (t == "cost") {
    pass = o.cost <= *a.threshold;
    char buf[96];
    std::snprintf(buf, sizeof buf, "cost $%.6f > $%.6f", o.cost, *a.threshold);
    why = buf;
  } else if (t == "refusal") {
    pass = quality::is_refusal(out, o.finish_reason, quality::assertion_refusal_config());
    why = "not a refusal";
  } else if (t == "is-refusal") {
    if (trim(out).empty()) {  // promptfoo: an empty answer is a refusal, scored 0 either way
      r.pass = !a.negate;
      r.score = 0;
      r.reason = r.pass ? "" : "not-is-refusal: the answer is empty (a refusal to promptfoo)";
      return r;
    }
    pass = promptfoo_is_refusal(out);
    why = "not a refusal (promptfoo's phrases)";
  } else if (t == "equals-number") {
    auto want = quality::final_number(a.value);
    auto got = quality::final_number(out);
    double tol = a.threshold.value_or(0);
    if (want && got) {
      tol = std::max(tol, 1e-9 * std::max(1.0, std::fabs(*want)));
      pass = std::fabs(*got - *want) <= tol;
    }
    char buf[128];
    if (got)
      std::snprintf(buf, sizeof buf, "final number %.10g, expected %.10g", *got, want ? *want : NAN);
    else
      std::snprintf(buf, sizeof buf, "no number in the output, expected %.10g", want ? *want : NAN);
    why = buf;
  } else if (t == "pii") {
    guard::PiiMask mask = a.values.empty() ? guard::kAllPii : 0;
    for (const auto& label : a.values) {
      guard::PiiKind k;
      if (guard::parse_pii_kind(label, k)) mask |= guard::pii_bit(k);
    }
    const auto found = guard::find_pii(out, mask);
    pass = !found.empty();
    why = "no personal data or secret found";
    for (size_t i = 0; i < found.size() && i < 5; ++i)
      matched += (i ? ", " : "") + std::string(guard::pii_label(found[i].kind)) + " at byte " +
                 std::to_string(found[i].begin);
    if (found.size() > 5) matched += ", ...";
  } else if (t == "llm-rubric") {
    auto v = judge ? judge(a.judge, a.value, out) : std::nullopt;
    if (!v) {
      r.error = "the judge did not grade the output";
      return r;
    }
    pass = v->pass;
    score = v->score;
    if (a.threshold) pass = pass && v->score >= *a.threshold;  // promptfoo: both
    why = v->reason.empty() ? "the judge failed the output" : "judge: " + clip(v->reason, 200);
    r.reason = why;
  } else {
    r.error = "unknown assertion type " + t;
    return r;
  }

  if (score < 0) score = pass ? 1 : 0;
  if (a.negate) {
    pass = !pass;
    score = 1 - score;
    why = pass ? "" : "not-" + t + ": the output matched" + (matched.empty() ? "" : " (" + matched + ")");
  }
  r.pass = pass;
  r.score = score;
  if (!pass) r.reason = why;
  return r;
}

CaseVerdict evaluate_case(const Case& c, const Output& o, const JudgeLookup& judge) {
  CaseVerdict v;
  double wsum = 0, ssum = 0;
  bool all = true;
  for (const auto& a : c.asserts) {
    AssertResult r = evaluate(a, o, judge);
    if (!r.error.empty() && v.error.empty()) v.error = r.error;
    if (a.weight > 0) {
      wsum += a.weight;
      ssum += a.weight * r.score;
      if (!r.pass) {
        all = false;
        if (v.reason.empty()) v.reason = (a.negate ? "not-" : "") + a.type + ": " + r.reason;
      }
    }
    v.asserts.push_back(std::move(r));
  }
  v.score = wsum > 0 ? ssum / wsum : (all ? 1 : 0);
  v.pass = c.threshold ? v.score >= *c.threshold : all;
  if (c.threshold && !v.pass) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "score %.3f below the case threshold %.3f", v.score, *c.threshold);
    v.reason = buf + (v.reason.empty() ? std::string() : " (" + v.reason + ")");
  }
  if (v.pass) v.reason.clear();
  return v;
}

std::string judge_messages(std::string_view rubric, std::string_view output) {
  static const char* kSystem =
      "You are grading output according to a user-specified rubric. If the statement in the rubric is true, then "
      "the output passes the test. You respond with a JSON object with this structure: {\"reason\": string, "
      "\"pass\": boolean, \"score\": number}, where score is between 0.0 and 1.0.\n\nExamples:\n\n<Output>Hello "
      "world</Output>\n<Rubric>Content contains a greeting</Rubric>\n{\"reason\": \"the content contains the word "
      "'Hello'\", \"pass\": true, \"score\": 1.0}\n\n<Output>Avast ye swabs, repel the invaders!</Output>\n<Rubric>Does "
      "not speak like a pirate</Rubric>\n{\"reason\": \"'avast ye' is a common pirate term\", \"pass\": false, "
      "\"score\": 0.0}";
  std::string user = "<Output>\n" + std::string(output) + "\n</Output>\n<Rubric>\n" + std::string(rubric) + "\n</Rubric>";
  std::string m = "[{\"role\":\"system\",\"content\":";
  append_json_string(m, kSystem);
  m += "},{\"role\":\"user\",\"content\":";
  append_json_string(m, user);
  m += "}]";
  return m;
}

// Read as promptfoo reads a grader's reply (runJsonGradingPrompt): the first object in it
// (json_objects), then `pass` (absent: true; not a boolean: true when it reads yes, true,
// pass or y) and `score` (a number; else the number a string or a boolean reads as; else
// 1 or 0 from pass), not clamped.
std::optional<JudgeVerdict> parse_judge_reply(std::string_view reply) {
  auto objects = json_objects(reply, 1);
  if (objects.empty()) return std::nullopt;
  const YAML::Node& doc = objects[0];
  JudgeVerdict v;
  std::string why;
  auto text = [&](const YAML::Node& n) { return n.IsScalar() ? yaml_scalar_text(n, why).value_or(n.Scalar()) : ""; };
  auto plain_bool = [&](const YAML::Node& n) {
    return n.IsScalar() && n.Tag() == "?" && (text(n) == "true" || text(n) == "false");
  };
  YAML::Node p = doc["pass"];
  if (!p || p.IsNull()) {
    v.pass = true;
  } else if (plain_bool(p)) {
    v.pass = text(p) == "true";
  } else {
    static const std::regex yes("true|yes|pass|y", std::regex::icase);
    v.pass = p.IsScalar() && std::regex_match(text(p), yes);
  }
  YAML::Node sc = doc["score"];
  std::optional<double> score;
  if (sc && sc.IsNull()) {
    score = 0;  // Number(null)
  } else if (sc && plain_bool(sc)) {
    score = text(sc) == "true" ? 1 : 0;
  } else if (sc && sc.IsScalar()) {
    std::string t(trim(text(sc)));
    char* end = nullptr;
    double d = std::strtod(t.c_str(), &end);
    if (t.empty()) score = 0;  // Number("")
    else if (end == t.c_str() + t.size() && std::isfinite(d)) score = d;
  }
  v.score = score.value_or(v.pass ? 1 : 0);
  if (doc["reason"] && doc["reason"].IsScalar()) v.reason = doc["reason"].Scalar();
  return v;
}

}  // namespace sluice::eval
