#include "eval/gate.hpp"

#include <algorithm>
#include <cstdio>

#include "stats/normal.hpp"
#include "stats/paired.hpp"

namespace sluice::eval {

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kPass: return "pass";
    case Verdict::kFail: return "fail";
    case Verdict::kInconclusive: return "not enough evidence";
    case Verdict::kSkipped: return "skipped";
  }
  return "?";
}

void wilson(int64_t k, int64_t n, double alpha, double& lo, double& hi) {
  if (n <= 0) {
    lo = 0, hi = 1;
    return;
  }
  double z = stats::normal_quantile(1 - alpha / 2);
  double p = static_cast<double>(k) / static_cast<double>(n), nn = static_cast<double>(n);
  double denom = 1 + z * z / nn;
  double center = (p + z * z / (2 * nn)) / denom;
  double half = z * std::sqrt(p * (1 - p) / nn + z * z / (4 * nn * nn)) / denom;
  lo = std::max(0.0, center - half);
  hi = std::min(1.0, center + half);
  if (k == 0) lo = 0;
  if (k == n) hi = 1;
}

namespace {

double mean(const std::vector<double>& v) {
  if (v.empty()) return NAN;
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

struct Slice {
  std::vector<size_t> idx;  // cases in the category, included
};

std::vector<double> pick(const std::vector<double>& v, const Slice& s) {
  std::vector<double> out;
  out.reserve(s.idx.size());
  for (size_t i : s.idx) out.push_back(v[i]);
  return out;
}

std::string pct(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f%%", 100 * x);
  return b;
}

std::string fmt(double x, const char* f = "%.4g") {
  char b[48];
  std::snprintf(b, sizeof b, f, x);
  return b;
}

std::string limit_name(const LimitSpec& l) {
  std::string cat = l.category.empty() ? "all" : l.category;
  std::string v;
  switch (l.kind) {
    case LimitKind::kFloor: v = ">= " + pct(l.value); break;
    case LimitKind::kMaxDrop: v = fmt(100 * l.value, "%.3g") + " pts"; break;
    case LimitKind::kMaxIncrease: v = "+" + fmt(100 * l.value, "%.3g") + "%"; break;
    case LimitKind::kCeiling:
      v = l.metric == Metric::kCost ? "$" + fmt(l.value, "%.6g") : fmt(l.value, "%.6g") + " ms";
      break;
  }
  return cat + ": " + l.key + " " + v;
}

// Decides an interval against a bound: higher_is_better -> pass when lo >= bound.
Verdict against(double lo, double hi, double bound, bool higher_is_better) {
  if (std::isnan(lo) || std::isnan(hi)) return Verdict::kInconclusive;
  if (higher_is_better) {
    if (lo >= bound) return Verdict::kPass;
    if (hi < bound) return Verdict::kFail;
  } else {
    if (hi <= bound) return Verdict::kPass;
    if (lo > bound) return Verdict::kFail;
  }
  return Verdict::kInconclusive;
}

const std::vector<double>& metric_of(const ArmData& a, Metric m) {
  switch (m) {
    case Metric::kPassRate: return a.pass;
    case Metric::kCost: return a.cost;
    case Metric::kP95Ttft: return a.ttft;
    case Metric::kP95Latency: return a.latency;
  }
  return a.pass;
}

const char* metric_label(Metric m) {
  switch (m) {
    case Metric::kPassRate: return "pass rate";
    case Metric::kCost: return "mean cost per case";
    case Metric::kP95Ttft: return "p95 time to first token";
    case Metric::kP95Latency: return "p95 latency";
  }
  return "";
}

std::string show(Metric m, double x) {
  if (std::isnan(x)) return "-";
  switch (m) {
    case Metric::kPassRate: return pct(x);
    case Metric::kCost: return "$" + fmt(x, "%.3g");
    default: return fmt(x, "%.0f") + " ms";
  }
}

}  // namespace

GateResult decide_gate(const Suite& suite, const std::vector<bool>& included, const ArmData& cand,
                       const ArmData* base, int repeat) {
  GateResult g;
  const GateSpec& spec = suite.gate;
  const double alpha = spec.alpha;
  auto slice_of = [&](const std::string& cat) {
    Slice s;
    for (size_t i = 0; i < suite.cases.size(); ++i)
      if (included[i] && (cat.empty() || suite.cases[i].category == cat)) s.idx.push_back(i);
    return s;
  };
  // Majority outcome of a case (strictly more than half of the repeats passed).
  auto majority = [&](const ArmData& a, size_t i) { return a.passes[i] * 2 > repeat; };

  // ---- per-category statistics (for the report)
  auto cats = suite.categories();
  cats.push_back("");
  for (const auto& cat : cats) {
    Slice s = slice_of(cat);
    CategoryStats cs;
    cs.category = cat.empty() ? "all" : cat;
    cs.n = static_cast<int64_t>(s.idx.size());
    if (cs.n > 0) {
      cs.cand_pass = mean(pick(cand.pass, s));
      cs.cand_cost = mean(pick(cand.cost, s));
      cs.cand_p95_ttft = stats::quantile(pick(cand.ttft, s), 0.95);
      cs.cand_p95_latency = stats::quantile(pick(cand.latency, s), 0.95);
      for (size_t i : s.idx) cs.cand_flaky += cand.flaky[i];
      if (base) {
        cs.base_pass = mean(pick(base->pass, s));
        cs.base_cost = mean(pick(base->cost, s));
        cs.base_p95_ttft = stats::quantile(pick(base->ttft, s), 0.95);
        cs.base_p95_latency = stats::quantile(pick(base->latency, s), 0.95);
        for (size_t i : s.idx) {
          bool b = majority(*base, i), c = majority(cand, i);
          cs.both += b && c, cs.base_only += b && !c, cs.cand_only += !b && c, cs.neither += !b && !c;
          cs.base_flaky += base->flaky[i];
        }
      }
    }
    g.categories.push_back(cs);
  }

  // ---- limits
  for (const LimitSpec& l : spec.limits) {
    LimitResult r;
    r.spec = l;
    r.name = limit_name(l);
    Slice s = slice_of(l.category);
    r.n = static_cast<int64_t>(s.idx.size());
    const bool relative = l.kind == LimitKind::kMaxDrop || l.kind == LimitKind::kMaxIncrease;
    auto cv = pick(metric_of(cand, l.metric), s);
    std::vector<double> bv;
    if (base) bv = pick(metric_of(*base, l.metric), s);
    auto summary = [&](const std::vector<double>& v) {
      return l.metric == Metric::kPassRate || l.metric == Metric::kCost ? mean(v) : stats::quantile(v, 0.95);
    };
    if (r.n > 0) {
      r.cand = summary(cv);
      if (base) r.base = summary(bv);
    }
    if (r.n == 0) {
      r.verdict = Verdict::kInconclusive;
      r.detail = "no usable cases";
    } else if (relative && !base) {
      r.verdict = Verdict::kSkipped;
      r.detail = "no baseline given";
    } else if (l.kind == LimitKind::kMaxDrop) {
      r.quantity = "diff";
      r.limit = -l.value;
      int64_t both = 0, bo = 0, co = 0, neither = 0;
      for (size_t i : s.idx) {
        bool b = majority(*base, i), c = majority(cand, i);
        both += b && c, bo += b && !c, co += !b && c, neither += !b && !c;
      }
      auto mc = stats::mcnemar_exact(bo, co);
      r.p_worse = mc.p_cand_worse;
      r.base_only = bo, r.cand_only = co;
      stats::Interval ci;
      if (repeat <= 1) {
        ci = stats::paired_proportion_diff(both, bo, co, neither, alpha);
        r.method = "paired difference (Newcombe) + exact McNemar";
      } else {
        ci = stats::paired_bootstrap(bv, cv, stats::Statistic::kMeanDiff, alpha, spec.seed, spec.resamples);
        r.method = "paired bootstrap over cases (" + std::to_string(repeat) + " repeats each)";
      }
      r.estimate = ci.estimate, r.lo = ci.lo, r.hi = ci.hi;
      r.verdict = ci.valid ? against(ci.lo, ci.hi, r.limit, true) : Verdict::kInconclusive;
      r.detail = "pass rate " + pct(r.base) + " -> " + pct(r.cand) + ", change " + fmt(100 * ci.estimate, "%+.1f") +
                 " pts [" + fmt(100 * ci.lo, "%+.1f") + ", " + fmt(100 * ci.hi, "%+.1f") + "], may not drop more than " +
                 fmt(100 * l.value, "%.3g") + " pts; discordant pairs: " + std::to_string(bo) + " regressed, " +
                 std::to_string(co) + " improved (exact McNemar, one-sided p that the candidate is worse: " + fmt(mc.p_cand_worse, "%.2g") + ")";
    } else if (l.kind == LimitKind::kMaxIncrease) {
      r.quantity = "ratio";
      r.limit = 1 + l.value;
      double bsum = summary(bv);
      if (!(bsum > 0)) {
        r.verdict = Verdict::kSkipped;
        r.detail = l.metric == Metric::kCost ? "baseline cost is 0 (no prices configured for its upstream)"
                                             : "baseline value is 0";
      } else {
        auto stat = l.metric == Metric::kCost ? stats::Statistic::kMeanRatio : stats::Statistic::kQuantileRatio;
        auto ci = stats::paired_bootstrap(bv, cv, stat, alpha, spec.seed, spec.resamples, 0.95);
        r.method = std::string("paired bootstrap of the ") +
                   (l.metric == Metric::kCost ? "ratio of means" : "ratio of 95th percentiles");
        r.estimate = ci.estimate, r.lo = ci.lo, r.hi = ci.hi;
        r.verdict = ci.valid ? against(ci.lo, ci.hi, r.limit, false) : Verdict::kInconclusive;
        r.detail = std::string(metric_label(l.metric)) + " " + show(l.metric, r.base) + " -> " +
                   show(l.metric, r.cand) + ", ratio " + fmt(ci.estimate, "%.3f") + " [" + fmt(ci.lo, "%.3f") + ", " +
                   fmt(ci.hi, "%.3f") + "], may not exceed " + fmt(r.limit, "%.3f");
      }
    } else if (l.kind == LimitKind::kFloor) {
      r.quantity = "value";
      r.limit = l.value;
      if (repeat <= 1) {
        int64_t k = 0;
        for (double x : cv) k += x >= 0.5;
        wilson(k, r.n, alpha, r.lo, r.hi);
        r.estimate = static_cast<double>(k) / static_cast<double>(r.n);
        r.method = "Wilson interval";
      } else {
        std::vector<double> zeros(cv.size(), 0.0);
        auto ci = stats::paired_bootstrap(zeros, cv, stats::Statistic::kMeanDiff, alpha, spec.seed, spec.resamples);
        r.estimate = ci.estimate, r.lo = ci.lo, r.hi = ci.hi;
        r.method = "bootstrap over cases";
      }
      r.verdict = against(r.lo, r.hi, r.limit, true);
      r.detail = "pass rate " + pct(r.estimate) + " [" + pct(r.lo) + ", " + pct(r.hi) + "], must be at least " +
                 pct(l.value);
    } else {  // ceiling
      r.quantity = "value";
      r.limit = l.value;
      std::vector<double> ref(cv.size(), l.metric == Metric::kCost ? 0.0 : 1.0);
      auto stat = l.metric == Metric::kCost ? stats::Statistic::kMeanDiff : stats::Statistic::kQuantileRatio;
      auto ci = stats::paired_bootstrap(ref, cv, stat, alpha, spec.seed, spec.resamples, 0.95);
      r.estimate = ci.estimate, r.lo = ci.lo, r.hi = ci.hi;
      r.method = "bootstrap over cases";
      r.verdict = ci.valid ? against(ci.lo, ci.hi, r.limit, false) : Verdict::kInconclusive;
      r.detail = std::string(metric_label(l.metric)) + " " + show(l.metric, ci.estimate) + " [" +
                 show(l.metric, ci.lo) + ", " + show(l.metric, ci.hi) + "], must be at most " +
                 show(l.metric, l.value);
    }
    r.blocks = r.verdict == Verdict::kFail || (r.verdict == Verdict::kInconclusive && spec.inconclusive_fails);
    if (r.verdict != Verdict::kSkipped) ++g.decided;
    g.limits.push_back(std::move(r));
  }
  g.passed = g.decided > 0;
  for (const auto& r : g.limits) g.passed = g.passed && !r.blocks;
  return g;
}

}  // namespace sluice::eval
