#include "core/strings.hpp"
#include "eval/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "core/error.hpp"

namespace sluice::eval {

namespace {

std::string num(double x) { return num_text(x, 6); }

// Length of the valid UTF-8 sequence starting at s[i] (its code point in cp), 0 if invalid:
// overlong forms, surrogates and code points above U+10FFFF are invalid.
size_t utf8_seq(std::string_view s, size_t i, uint32_t& cp) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
  if (len == 0 || i + len > s.size()) return 0;
  cp = c & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) {
    unsigned char cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
      (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
    return 0;
  return len;
}

// Invalid UTF-8 bytes replaced by U+FFFD (reports must parse whatever a model answered).
std::string valid_utf8(std::string_view s) {
  std::string o;
  o.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    size_t len = utf8_seq(s, i, cp);
    if (len == 0) {
      o += "\xEF\xBF\xBD";
      ++i;
    } else {
      o.append(s.substr(i, len));
      i += len;
    }
  }
  return o;
}

std::string jstr(std::string_view s) {
  std::string o;
  append_json_string(o, valid_utf8(s));
  return o;
}

// Cuts at `n` bytes without splitting a UTF-8 sequence.
std::string clip(std::string_view s, size_t n) {
  if (s.size() <= n) return std::string(s);
  size_t cut = n;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return std::string(s.substr(0, cut)) + "…";
}

std::string pct(double x) {
  if (std::isnan(x)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.1f%%", 100 * x);
  return b;
}

std::string pts(double x) {
  if (std::isnan(x)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%+.1f", 100 * x);
  return b;
}

const char* metric_name(Metric m) {
  switch (m) {
    case Metric::kPassRate: return "pass_rate";
    case Metric::kCost: return "cost_per_case";
    case Metric::kP95Ttft: return "p95_ttft_ms";
    case Metric::kP95Latency: return "p95_latency_ms";
  }
  return "";
}

const char* kind_name(LimitKind k) {
  switch (k) {
    case LimitKind::kFloor: return "floor";
    case LimitKind::kCeiling: return "ceiling";
    case LimitKind::kMaxDrop: return "max_drop";
    case LimitKind::kMaxIncrease: return "max_increase";
  }
  return "";
}

std::string show_value(const LimitResult& l, double x) {
  if (std::isnan(x)) return "-";
  char b[48];
  if (l.quantity == "diff") {
    std::snprintf(b, sizeof b, "%+.1f pts", 100 * x);
  } else if (l.quantity == "ratio") {
    std::snprintf(b, sizeof b, "×%.3f", x);
  } else if (l.spec.metric == Metric::kPassRate) {
    std::snprintf(b, sizeof b, "%.1f%%", 100 * x);
  } else if (l.spec.metric == Metric::kCost) {
    std::snprintf(b, sizeof b, "$%.4g", x);
  } else {
    std::snprintf(b, sizeof b, "%.0f ms", x);
  }
  return b;
}

std::string show_metric(Metric m, double x) {
  if (std::isnan(x)) return "-";
  char b[48];
  if (m == Metric::kPassRate)
    std::snprintf(b, sizeof b, "%.1f%%", 100 * x);
  else if (m == Metric::kCost)
    std::snprintf(b, sizeof b, "$%.4g", x);
  else
    std::snprintf(b, sizeof b, "%.0f ms", x);
  return b;
}

// Majority verdict over repeats.
bool passed(const ArmRun& a, size_t i, int repeat) {
  int k = 0;
  for (const auto& v : a.verdicts[i]) k += v.pass;
  return k * 2 > repeat;
}
int passes(const ArmRun& a, size_t i) {
  int k = 0;
  for (const auto& v : a.verdicts[i]) k += v.pass;
  return k;
}
double mean_score(const ArmRun& a, size_t i) {
  double s = 0;
  for (const auto& v : a.verdicts[i]) s += v.pass ? 1 : 0;
  return a.verdicts[i].empty() ? 0 : s / static_cast<double>(a.verdicts[i].size());
}
std::string first_reason(const ArmRun& a, size_t i) {
  for (const auto& v : a.verdicts[i])
    if (!v.pass) return !v.reason.empty() ? v.reason : v.error;
  return "";
}

// Distinct answer texts over the repeats of a case.
size_t distinct_answers(const ArmRun& a, size_t i) {
  std::vector<const std::string*> seen;
  for (const auto& o : a.outputs[i]) {
    bool dup = false;
    for (const auto* s : seen) dup = dup || *s == o.text;
    if (!dup) seen.push_back(&o.text);
  }
  return seen.size();
}

// Cases the candidate regressed on (baseline passed, candidate failed), worst first.
std::vector<size_t> regressions(const RunReport& r) {
  std::vector<size_t> out;
  if (!r.base) return out;
  for (size_t i = 0; i < r.suite->cases.size(); ++i)
    if (r.included[i] && mean_score(*r.base, i) > mean_score(*r.cand, i)) out.push_back(i);
  std::stable_sort(out.begin(), out.end(), [&](size_t a, size_t b) {
    return mean_score(*r.base, a) - mean_score(*r.cand, a) > mean_score(*r.base, b) - mean_score(*r.cand, b);
  });
  return out;
}

std::string iso_time(int64_t unix_ms) {
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
  return b;
}

std::string arm_case_json(const ArmRun& a, size_t i, int repeat) {
  const auto& outs = a.outputs[i];
  const auto& vs = a.verdicts[i];
  std::string j = "{\"pass\":";
  j += passed(a, i, repeat) ? "true" : "false";
  j += ",\"passes\":" + std::to_string(passes(a, i));
  double score = 0, lat = 0, ttft = 0, cost = 0;
  for (size_t k = 0; k < vs.size(); ++k) {
    score += vs[k].score, lat += outs[k].latency_ms, ttft += outs[k].ttft_ms, cost += outs[k].cost;
  }
  double n = std::max<double>(1, static_cast<double>(vs.size()));
  j += ",\"score\":" + num(score / n) + ",\"latency_ms\":" + fixed_text(lat / n, 1) + ",\"ttft_ms\":" + fixed_text(ttft / n, 1);
  j += ",\"cost\":" + num(cost / n);
  j += ",\"reason\":" + jstr(first_reason(a, i));
  j += ",\"distinct_answers\":" + std::to_string(distinct_answers(a, i));
  j += ",\"answers\":[";
  for (size_t k = 0; k < outs.size(); ++k) {
    if (k) j += ',';
    j += "{\"output\":" + jstr(clip(outs[k].text, 2048));
    j += ",\"pass\":";
    j += vs[k].pass ? "true" : "false";
    j += ",\"finish_reason\":" + jstr(outs[k].finish_reason);
    j += ",\"tokens_in\":" + std::to_string(outs[k].tokens_in) + ",\"tokens_out\":" + std::to_string(outs[k].tokens_out);
    j += ",\"request_id\":" + jstr(outs[k].request_id);
    if (!vs[k].error.empty()) j += ",\"error\":" + jstr(vs[k].error);
    j += "}";
  }
  return j + "]}";
}

// Markdown table cell: pipes escaped, newlines as <br>, HTML-significant '<' escaped.
std::string cell(std::string_view s, size_t n = 600) {
  std::string c = valid_utf8(clip(s, n)), o;
  for (char ch : c) {
    if (ch == '|')
      o += "\\|";
    else if (ch == '\n')
      o += "<br>";
    else if (ch == '\r')
      continue;
    else if (ch == '<')
      o += "&lt;";
    else
      o += ch;
  }
  return o.empty() ? " " : o;
}

}  // namespace

std::string xml_escape(std::string_view s) {
  std::string o;
  o.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '&': o += "&amp;"; break;
        case '<': o += "&lt;"; break;
        case '>': o += "&gt;"; break;
        case '"': o += "&quot;"; break;
        case '\'': o += "&apos;"; break;
        case '\t': o += "&#9;"; break;
        case '\n': o += "&#10;"; break;
        case '\r': o += "&#13;"; break;
        default:
          if (c < 0x20)
            o += "\xEF\xBF\xBD";  // not allowed in XML 1.0
          else
            o += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    uint32_t cp = 0;
    size_t len = utf8_seq(s, i, cp);
    if (len > 0 && cp != 0xFFFE && cp != 0xFFFF) {  // not XML characters either
      o.append(s.substr(i, len));
      i += len;
    } else {
      o += '?';
      ++i;
    }
  }
  return o;
}

std::string report_json(const RunReport& r, bool with_cases) {
  const Suite& s = *r.suite;
  std::string j = "{\"run_id\":" + jstr(r.run_id);
  j += ",\"passed\":";
  j += r.gate.passed ? "true" : "false";
  j += ",\"suite\":{\"name\":" + jstr(s.name) + ",\"path\":" + jstr(s.path) + ",\"hash\":" + jstr(s.hash) +
       ",\"cases\":" + std::to_string(s.cases.size()) + "}";
  j += ",\"route\":" + jstr(r.route);
  j += ",\"candidate\":{\"release\":" + jstr(r.cand->release) + ",\"model\":" + jstr(r.cand->model) + "}";
  if (r.base)
    j += ",\"baseline\":{\"release\":" + jstr(r.base->release) + ",\"model\":" + jstr(r.base->model) + "}";
  else
    j += ",\"baseline\":null";
  j += ",\"repeat\":" + std::to_string(r.repeat);
  j += ",\"created_by\":" + jstr(r.created_by) + ",\"created_at\":" + std::to_string(r.created_at);
  j += ",\"wall_s\":" + fixed_text(r.wall_s, 3) + ",\"requests_sent\":" + std::to_string(r.requests_sent) +
       ",\"retries\":" + std::to_string(r.retries) + ",\"cache_hits\":" + std::to_string(r.cache_hits);
  j += ",\"gate\":{\"alpha\":" + num(s.gate.alpha) + ",\"on_inconclusive\":" +
       jstr(s.gate.inconclusive_fails ? "fail" : "pass") + ",\"defaulted\":" + (s.gate.defaulted ? "true" : "false") +
       ",\"limits\":[";
  for (size_t k = 0; k < r.gate.limits.size(); ++k) {
    const auto& l = r.gate.limits[k];
    if (k) j += ',';
    j += "{\"name\":" + jstr(l.name) + ",\"category\":" + jstr(l.spec.category.empty() ? "all" : l.spec.category) +
         ",\"key\":" + jstr(l.spec.key) + ",\"metric\":" + jstr(metric_name(l.spec.metric)) + ",\"kind\":" +
         jstr(kind_name(l.spec.kind)) + ",\"value\":" + num(l.spec.value) + ",\"verdict\":" +
         jstr(verdict_name(l.verdict)) + ",\"blocks\":" + (l.blocks ? "true" : "false") +
         ",\"n\":" + std::to_string(l.n) + ",\"baseline\":" + num(l.base) + ",\"candidate\":" + num(l.cand) +
         ",\"quantity\":" + jstr(l.quantity) + ",\"estimate\":" + num(l.estimate) + ",\"lo\":" + num(l.lo) +
         ",\"hi\":" + num(l.hi) + ",\"bound\":" + num(l.limit) + ",\"method\":" + jstr(l.method) +
         ",\"mcnemar_p_worse\":" + num(l.p_worse) + ",\"regressed\":" + std::to_string(l.base_only) +
         ",\"improved\":" + std::to_string(l.cand_only) + ",\"detail\":" + jstr(l.detail) + "}";
  }
  j += "]},\"categories\":[";
  for (size_t k = 0; k < r.gate.categories.size(); ++k) {
    const auto& c = r.gate.categories[k];
    if (k) j += ',';
    j += "{\"category\":" + jstr(c.category) + ",\"n\":" + std::to_string(c.n) + ",\"baseline_pass_rate\":" +
         num(c.base_pass) + ",\"candidate_pass_rate\":" + num(c.cand_pass) + ",\"both\":" + std::to_string(c.both) +
         ",\"regressed\":" + std::to_string(c.base_only) + ",\"improved\":" + std::to_string(c.cand_only) +
         ",\"neither\":" + std::to_string(c.neither) + ",\"baseline_cost\":" + num(c.base_cost) +
         ",\"candidate_cost\":" + num(c.cand_cost) + ",\"baseline_p95_ttft_ms\":" + fixed_text(c.base_p95_ttft, 1) +
         ",\"candidate_p95_ttft_ms\":" + fixed_text(c.cand_p95_ttft, 1) + ",\"baseline_p95_latency_ms\":" +
         fixed_text(c.base_p95_latency, 1) + ",\"candidate_p95_latency_ms\":" + fixed_text(c.cand_p95_latency, 1) +
         ",\"baseline_flaky\":" + std::to_string(c.base_flaky) + ",\"candidate_flaky\":" +
         std::to_string(c.cand_flaky) + "}";
  }
  j += "]";
  auto id_list = [&](const std::vector<size_t>& idx, size_t limit) {
    std::string a = "[";
    for (size_t k = 0; k < idx.size() && k < limit; ++k) {
      if (k) a += ',';
      a += jstr(s.cases[idx[k]].id);
    }
    return a + "]";
  };
  auto flaky_of = [&](const ArmRun& a) {
    std::vector<size_t> f;
    for (size_t i = 0; i < s.cases.size(); ++i) {
      int k = passes(a, i);
      if (k > 0 && k < r.repeat) f.push_back(i);
    }
    return f;
  };
  size_t limit = with_cases ? s.cases.size() : 100;
  auto varied = [&](const ArmRun& a) {
    int64_t n = 0;
    for (size_t i = 0; i < s.cases.size(); ++i) n += distinct_answers(a, i) > 1;
    return std::to_string(n);
  };
  j += ",\"answers_varied\":{\"candidate\":" + varied(*r.cand) + ",\"baseline\":" + (r.base ? varied(*r.base) : "0") + "}";
  j += ",\"flaky\":{\"candidate\":" + id_list(flaky_of(*r.cand), limit) +
       ",\"baseline\":" + (r.base ? id_list(flaky_of(*r.base), limit) : std::string("[]")) + "}";
  auto reg = regressions(r);
  j += ",\"regressions\":" + id_list(reg, limit);
  j += ",\"errors\":[";
  bool first = true;
  for (size_t i = 0; i < s.cases.size(); ++i) {
    if (r.included[i]) continue;
    if (!first) j += ',';
    first = false;
    j += "{\"id\":" + jstr(s.cases[i].id) + ",\"error\":" + jstr(r.case_errors[i]) + "}";
  }
  j += "],\"warnings\":[";
  for (size_t k = 0; k < r.warnings.size(); ++k) j += (k ? "," : "") + jstr(r.warnings[k]);
  j += "]";
  if (with_cases) {
    j += ",\"cases\":[";
    for (size_t i = 0; i < s.cases.size(); ++i) {
      const Case& c = s.cases[i];
      if (i) j += ',';
      j += "{\"id\":" + jstr(c.id) + ",\"category\":" + jstr(c.category) + ",\"origin\":" + jstr(c.origin) +
           ",\"included\":" + (r.included[i] ? "true" : "false");
      j += ",\"candidate\":" + arm_case_json(*r.cand, i, r.repeat);
      if (r.base) j += ",\"baseline\":" + arm_case_json(*r.base, i, r.repeat);
      j += "}";
    }
    j += "]";
  }
  return j + "}\n";
}

std::string report_junit(const RunReport& r) {
  const Suite& s = *r.suite;
  const std::string prefix = "sluice.eval." + s.name;
  std::string body;
  int total = 0, failures = 0, errors = 0, skipped = 0;

  // The gate: one test case per limit.
  {
    int t = 0, f = 0, sk = 0;
    std::string cases;
    for (const auto& l : r.gate.limits) {
      ++t;
      cases += "    <testcase classname=\"" + xml_escape(prefix + ".gate") + "\" name=\"" + xml_escape(l.name) +
               "\" time=\"0\">\n";
      if (l.verdict == Verdict::kSkipped) {
        ++sk;
        cases += "      <skipped message=\"" + xml_escape(l.detail) + "\"/>\n";
      } else if (l.blocks) {
        ++f;
        std::string msg = std::string(verdict_name(l.verdict)) + ": " + l.detail;
        cases += "      <failure message=\"" + xml_escape(msg) + "\" type=\"" +
                 (l.verdict == Verdict::kFail ? "gate-fail" : "gate-not-enough-evidence") + "\">" +
                 xml_escape(l.method + "\n" + l.detail) + "</failure>\n";
      } else {
        cases += "      <system-out>" + xml_escape(std::string(verdict_name(l.verdict)) + ": " + l.detail) +
                 "</system-out>\n";
      }
      cases += "    </testcase>\n";
    }
    body += "  <testsuite name=\"" + xml_escape(s.name + ".gate") + "\" tests=\"" + std::to_string(t) +
            "\" failures=\"" + std::to_string(f) + "\" errors=\"0\" skipped=\"" + std::to_string(sk) +
            "\" time=\"" + fixed_text(r.wall_s, 3) + "\" timestamp=\"" + iso_time(r.created_at) + "\">\n";
    body += "    <properties>\n";
    auto prop = [&](const std::string& k, const std::string& v) {
      body += "      <property name=\"" + xml_escape(k) + "\" value=\"" + xml_escape(v) + "\"/>\n";
    };
    prop("eval_run", r.run_id);
    prop("verdict", r.gate.passed ? "pass" : "fail");
    prop("candidate", r.cand->release);
    if (r.base) prop("baseline", r.base->release);
    prop("suite_hash", s.hash);
    prop("repeat", std::to_string(r.repeat));
    body += "    </properties>\n" + cases + "  </testsuite>\n";
    total += t, failures += f, skipped += sk;
  }

  // One test suite per category, one test case per suite case.
  for (const auto& cat : s.categories()) {
    int t = 0, f = 0, e = 0, sk = 0;
    double time = 0;
    std::string cases;
    for (size_t i = 0; i < s.cases.size(); ++i) {
      const Case& c = s.cases[i];
      if (c.category != cat) continue;
      ++t;
      double secs = 0;
      for (const auto& o : r.cand->outputs[i]) secs += o.latency_ms / 1000;
      time += secs;
      cases += "    <testcase classname=\"" + xml_escape(prefix + "." + cat) + "\" name=\"" + xml_escape(c.id) +
               "\" time=\"" + fixed_text(secs, 3) + "\">\n";
      bool cand_ok = passed(*r.cand, i, r.repeat);
      bool base_ok = r.base ? passed(*r.base, i, r.repeat) : false;
      std::string cand_out = r.cand->outputs[i].empty() ? "" : clip(r.cand->outputs[i][0].text, 2000);
      if (!r.included[i]) {
        ++e;
        cases += "      <error message=\"" + xml_escape(r.case_errors[i]) + "\" type=\"no-answer\"/>\n";
      } else if (!cand_ok && (r.junit_all_failures || !r.base || base_ok)) {
        ++f;
        std::string detail = "candidate (" + r.cand->release + "): " + first_reason(*r.cand, i) + "\n" +
                             "case: " + c.origin + "\n\ncandidate output:\n" + cand_out;
        if (r.base && !r.base->outputs[i].empty())
          detail += "\n\nbaseline (" + r.base->release + (base_ok ? ", passed" : ", failed") + ") output:\n" +
                    clip(r.base->outputs[i][0].text, 2000);
        std::string type = r.base && base_ok ? "regression" : "assertion";
        cases += "      <failure message=\"" + xml_escape(first_reason(*r.cand, i)) + "\" type=\"" + type + "\">" +
                 xml_escape(detail) + "</failure>\n";
      } else if (!cand_ok) {
        ++sk;
        cases += "      <skipped message=\"" +
                 xml_escape("known failure: the baseline fails it too (" + first_reason(*r.cand, i) + ")") + "\"/>\n";
      }
      int k = passes(*r.cand, i);
      if (k > 0 && k < r.repeat)
        cases += "      <system-out>" +
                 xml_escape("flaky: passed " + std::to_string(k) + " of " + std::to_string(r.repeat) + " repeats") +
                 "</system-out>\n";
      cases += "    </testcase>\n";
    }
    body += "  <testsuite name=\"" + xml_escape(s.name + "." + cat) + "\" tests=\"" + std::to_string(t) +
            "\" failures=\"" + std::to_string(f) + "\" errors=\"" + std::to_string(e) + "\" skipped=\"" +
            std::to_string(sk) + "\" time=\"" + fixed_text(time, 3) + "\" timestamp=\"" + iso_time(r.created_at) +
            "\">\n" + cases + "  </testsuite>\n";
    total += t, failures += f, errors += e, skipped += sk;
  }
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"" + xml_escape("sluice eval " + s.name) +
         "\" tests=\"" + std::to_string(total) + "\" failures=\"" + std::to_string(failures) + "\" errors=\"" +
         std::to_string(errors) + "\" skipped=\"" + std::to_string(skipped) + "\" time=\"" + fixed_text(r.wall_s, 3) +
         "\">\n" + body + "</testsuites>\n";
}

std::string report_markdown(const RunReport& r) {
  const Suite& s = *r.suite;
  std::string m;
  m += "# Eval `" + s.name + "`: " + (r.gate.passed ? "**PASS**" : "**FAIL**") + "\n\n";
  m += "Candidate `" + r.cand->release + "` (" + r.cand->model + ")";
  if (r.base) m += " vs baseline `" + r.base->release + "` (" + r.base->model + ")";
  m += ". " + std::to_string(s.cases.size()) + " cases × " + std::to_string(r.repeat) + " repeat" +
       (r.repeat > 1 ? "s" : "") + "; eval run `" + r.run_id + "`; " + std::to_string(r.requests_sent) +
       " requests sent (" + std::to_string(r.cache_hits) + " answers from the cache) in " + fixed_text(r.wall_s, 1) +
       " s.\n\n";

  char lvl[64];
  std::snprintf(lvl, sizeof lvl, "%.0f%%", 100 * (1 - s.gate.alpha));
  m += "## Gate\n\n| limit | baseline | candidate | estimate | " + std::string(lvl) +
       " interval | bound | verdict |\n|---|---|---|---|---|---|---|\n";
  for (const auto& l : r.gate.limits) {
    std::string verdict = verdict_name(l.verdict);
    if (l.verdict == Verdict::kPass) verdict = "✅ pass";
    else if (l.verdict == Verdict::kFail) verdict = "❌ fail";
    else if (l.verdict == Verdict::kInconclusive) verdict = l.blocks ? "❌ not enough evidence" : "⚠️ not enough evidence";
    else verdict = "➖ skipped";
    m += "| " + cell(l.name) + " | " + show_metric(l.spec.metric, l.base) + " | " + show_metric(l.spec.metric, l.cand) +
         " | " + show_value(l, l.estimate) + " | [" + show_value(l, l.lo) + ", " + show_value(l, l.hi) + "] | " +
         show_value(l, l.limit) + " | " + verdict + " |\n";
  }
  m += "\n";
  for (const auto& l : r.gate.limits) m += "- **" + l.name + "**: " + l.detail + (l.method.empty() ? "" : " (" + l.method + ")") + "\n";
  if (s.gate.inconclusive_fails)
    m += "\n\"Not enough evidence\" fails the gate (fail closed; `gate.on_inconclusive: pass` to change).\n";

  m += "\n## Categories\n\n| category | cases | baseline | candidate | Δ | regressed / improved | mean cost | p95 TTFT | flaky (cand) |\n"
       "|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& c : r.gate.categories) {
    bool all = c.category == "all";
    std::string name = all ? "**all**" : c.category;
    std::string delta = r.base ? pts(c.cand_pass - c.base_pass) + " pts" : "-";
    std::string ri = r.base ? std::to_string(c.base_only) + " / " + std::to_string(c.cand_only) : "-";
    std::string cost = r.base ? show_metric(Metric::kCost, c.base_cost) + " → " + show_metric(Metric::kCost, c.cand_cost)
                              : show_metric(Metric::kCost, c.cand_cost);
    std::string ttft = r.base ? show_metric(Metric::kP95Ttft, c.base_p95_ttft) + " → " +
                                    show_metric(Metric::kP95Ttft, c.cand_p95_ttft)
                              : show_metric(Metric::kP95Ttft, c.cand_p95_ttft);
    m += "| " + name + " | " + std::to_string(c.n) + " | " + (r.base ? pct(c.base_pass) : "-") + " | " +
         pct(c.cand_pass) + " | " + delta + " | " + ri + " | " + cost + " | " + ttft + " | " +
         std::to_string(c.cand_flaky) + " |\n";
  }

  auto reg = regressions(r);
  if (r.base) {
    m += "\n## Worst regressions\n\n";
    if (reg.empty()) m += "None: no case that the baseline passed fails with the candidate.\n";
    m += reg.size() > 10 ? "The first 10 of " + std::to_string(reg.size()) + ".\n\n" : std::string();
    for (size_t k = 0; k < reg.size() && k < 10; ++k) {
      size_t i = reg[k];
      const Case& c = s.cases[i];
      m += "### " + cell(c.id, 120) + " (" + c.category + ")\n\n`" + c.origin + "`";
      if (!c.vars.empty()) {
        m += " — vars: ";
        for (size_t v = 0; v < c.vars.size() && v < 4; ++v)
          m += (v ? ", " : "") + std::string("`") + c.vars[v].first + "` = " + cell(c.vars[v].second, 160);
      }
      m += "\n\n| baseline `" + r.base->release + "` (" + std::to_string(passes(*r.base, i)) + "/" +
           std::to_string(r.repeat) + " passed) | candidate `" + r.cand->release + "` (" +
           std::to_string(passes(*r.cand, i)) + "/" + std::to_string(r.repeat) + " passed) |\n|---|---|\n";
      m += "| " + cell(r.base->outputs[i][0].text) + " | " + cell(r.cand->outputs[i][0].text) + " |\n\n";
      m += "Candidate fails: " + cell(first_reason(*r.cand, i), 300) + "\n\n";
    }
  }

  std::vector<size_t> flaky;
  for (size_t i = 0; i < s.cases.size(); ++i) {
    int kc = passes(*r.cand, i), kb = r.base ? passes(*r.base, i) : 0;
    if ((kc > 0 && kc < r.repeat) || (r.base && kb > 0 && kb < r.repeat)) flaky.push_back(i);
  }
  if (r.repeat > 1) {
    m += "\n## Flaky cases\n\n";
    int64_t varied = 0;
    for (size_t i = 0; i < s.cases.size(); ++i) varied += distinct_answers(*r.cand, i) > 1;
    m += "Candidate: " + std::to_string(varied) + " cases changed their answer between repeats; the ones below changed "
         "their verdict.\n\n";
    if (flaky.empty()) m += "None: every case gave the same verdict in all " + std::to_string(r.repeat) + " repeats.\n";
    for (size_t k = 0; k < flaky.size() && k < 50; ++k) {
      size_t i = flaky[k];
      m += "- " + cell(s.cases[i].id, 120) + " (" + s.cases[i].category + "): candidate " +
           std::to_string(passes(*r.cand, i)) + "/" + std::to_string(r.repeat);
      if (r.base) m += ", baseline " + std::to_string(passes(*r.base, i)) + "/" + std::to_string(r.repeat);
      m += "\n";
    }
  }
  bool any_error = std::find(r.included.begin(), r.included.end(), false) != r.included.end();
  if (any_error) {
    m += "\n## Left out (no usable answer)\n\n";
    for (size_t i = 0; i < s.cases.size(); ++i)
      if (!r.included[i]) m += "- " + cell(s.cases[i].id, 120) + ": " + cell(r.case_errors[i], 300) + "\n";
  }
  if (!r.warnings.empty()) {
    m += "\n## Warnings\n\n";
    for (const auto& w : r.warnings) m += "- " + cell(w, 300) + "\n";
  }
  return m;
}

std::string report_text(const RunReport& r) {
  const Suite& s = *r.suite;
  std::string t = "eval " + r.run_id + ": suite " + s.name + " (" + std::to_string(s.cases.size()) + " cases";
  if (r.repeat > 1) t += " x " + std::to_string(r.repeat);
  t += "), candidate " + r.cand->release + (r.base ? " vs baseline " + r.base->release : std::string()) + "\n";
  for (const auto& c : r.gate.categories) {
    char b[256];
    if (r.base)
      std::snprintf(b, sizeof b, "  %-14s n=%-5lld %6s -> %6s (%s pts; %lld regressed, %lld improved)\n",
                    c.category.c_str(), static_cast<long long>(c.n), pct(c.base_pass).c_str(), pct(c.cand_pass).c_str(),
                    pts(c.cand_pass - c.base_pass).c_str(), static_cast<long long>(c.base_only),
                    static_cast<long long>(c.cand_only));
    else
      std::snprintf(b, sizeof b, "  %-14s n=%-5lld %6s\n", c.category.c_str(), static_cast<long long>(c.n),
                    pct(c.cand_pass).c_str());
    t += b;
  }
  int npass = 0;
  for (const auto& l : r.gate.limits) {
    std::string v = l.verdict == Verdict::kPass ? "PASS" : l.verdict == Verdict::kFail ? "FAIL"
                    : l.verdict == Verdict::kSkipped ? "SKIP" : (l.blocks ? "NOT ENOUGH EVIDENCE (fails)" : "NOT ENOUGH EVIDENCE");
    npass += l.verdict == Verdict::kPass;
    t += "  " + v + "  " + l.name + ": " + l.detail + "\n";
  }
  int64_t flaky = 0;
  for (const auto& c : r.gate.categories)
    if (c.category == "all") flaky = c.cand_flaky;
  if (r.repeat > 1) {
    int64_t varied = 0;
    for (size_t i = 0; i < s.cases.size(); ++i) varied += distinct_answers(*r.cand, i) > 1;
    t += "  flaky cases (candidate): " + std::to_string(flaky) + " changed verdict between repeats; " +
         std::to_string(varied) + " changed their answer\n";
  }
  t += std::string("gate: ") + (r.gate.passed ? "PASS" : "FAIL") + " (" + std::to_string(npass) + " of " +
       std::to_string(r.gate.limits.size()) + " limits pass); " + std::to_string(r.requests_sent) + " requests, " +
       std::to_string(r.cache_hits) + " from the cache, " + fixed_text(r.wall_s, 1) + " s\n";
  return t;
}

}  // namespace sluice::eval
