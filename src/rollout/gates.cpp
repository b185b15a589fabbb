#include "core/strings.hpp"
#include "rollout/gates.hpp"

#include <cmath>
#include <cstdio>

#include "core/error.hpp"

namespace sluice::rollout {

namespace {

// An unbounded interval end is the string "inf" (JSON has no infinity).
std::string num(double v) {
  if (std::isinf(v)) return v > 0 ? "\"inf\"" : "\"-inf\"";
  return num_text(v, 6);
}

const char* verdict_of(stats::Verdict v) {
  switch (v) {
    case stats::Verdict::kPass: return "pass";
    case stats::Verdict::kFail: return "fail";
    default: return "collecting";
  }
}

stats::Moments exceedances(const LogHistogram& h, double threshold) {
  stats::Moments m;
  m.n = static_cast<double>(h.count());
  m.sum = static_cast<double>(h.count_above(threshold));
  m.sumsq = m.sum;
  return m;
}

}  // namespace

std::string GateStatus::to_json() const {
  std::string o = "{\"check\":";
  append_json_string(o, check);
  o += ",\"verdict\":\"" + verdict + "\",\"candidate\":" + num(candidate_value) + ",\"stable\":" + num(stable_value);
  o += ",\"estimate\":" + num(estimate) + ",\"lo\":" + num(lo) + ",\"hi\":" + num(hi);
  o += ",\"threshold\":" + num(threshold) + ",\"quantile_ms\":" + num(quantile_ms) + ",\"n_candidate\":" + num(n_candidate) + ",\"n_stable\":" + num(n_stable);
  o += ",\"confidence\":" + num(confidence) + ",\"guardrail\":" + (guardrail ? "true" : "false") + "}";
  return o;
}

GateStatus evaluate(const Gate& g, const Evidence& ev, Phase phase, double alpha, double effect, int64_t elapsed_ms) {
  GateStatus st;
  st.check = g.check;
  st.guardrail = g.guardrail;
  st.confidence = 1 - alpha;
  auto info = metric_info(g.metric);
  if (!info) {
    st.verdict = "n/a";
    return st;
  }
  // Metrics without a source in this phase do not apply: no feedback on mirrored answers,
  // no pairs once live traffic is split.
  bool shadow_metric = info->kind == MetricKind::kShadowProportion || info->kind == MetricKind::kShadowMean;
  if ((phase == Phase::kLive && shadow_metric) || (phase == Phase::kShadow && g.metric == "feedback_mean")) {
    st.verdict = "n/a";
    return st;
  }
  stats::SequentialOptions o;
  o.alpha = alpha;
  o.effect = effect;
  o.min_n = static_cast<double>(g.min_samples);
  stats::Interval ci;
  double limit = g.limit;

  if (shadow_metric) {
    const stats::Moments& m = g.metric == "shadow_agreement"         ? ev.pairs.agreement
                              : g.metric == "shadow_latency_delta_ms" ? ev.pairs.latency_delta
                              : g.metric == "shadow_cost_delta"       ? ev.pairs.cost_delta
                                                                      : ev.pairs.refusal_delta;
    o.bernoulli = g.metric == "shadow_agreement";
    st.candidate_value = m.mean();
    st.n_candidate = m.n;
    ci = stats::mean_cs(m, o);
    // Relative shadow limits compare with "no difference" (agreement 1, deltas 0).
    if (g.relative) limit = g.factor * (g.metric == "shadow_agreement" ? 1.0 : 0.0) + g.limit;
  } else if (info->kind == MetricKind::kQuantile) {
    const LogHistogram* hc = ev.candidate.histogram(info->base);
    const LogHistogram* hs = ev.stable.histogram(info->base);
    st.candidate_value = hc->quantile(info->q);
    st.stable_value = hs->quantile(info->q);
    st.n_candidate = static_cast<double>(hc->count());
    st.n_stable = static_cast<double>(hs->count());
    double threshold = g.limit;
    if (g.relative) {
      if (st.n_stable < o.min_n) {
        st.verdict = "collecting";
        return st;
      }
      threshold = g.factor * st.stable_value + g.limit;
    }
    o.bernoulli = true;
    ci = stats::mean_cs(exceedances(*hc, threshold), o);
    // The metric is below the threshold exactly when fewer than (1 - q) exceed it.
    limit = 1 - info->q;
    st.quantile_ms = threshold;
  } else {
    const stats::Moments* c = ev.candidate.moments(g.metric);
    const stats::Moments* s = ev.stable.moments(g.metric);
    o.bernoulli = info->kind == MetricKind::kProportion;
    st.candidate_value = c->mean();
    st.stable_value = s->mean();
    st.n_candidate = c->n;
    st.n_stable = s->n;
    if (g.relative) {
      ci = stats::diff_cs(*c, *s, g.factor, o);  // candidate - factor * stable vs the offset
    } else {
      ci = stats::mean_cs(*c, o);
    }
  }
  st.threshold = limit;
  st.estimate = ci.estimate;
  st.lo = ci.lo;
  st.hi = ci.hi;
  stats::Verdict v = ci.valid ? stats::decide(ci, limit, g.lower_is_better) : stats::Verdict::kKeepCollecting;
  st.verdict = verdict_of(v);
  if (v == stats::Verdict::kKeepCollecting && elapsed_ms >= g.max_duration_ms) st.verdict = "inconclusive";
  return st;
}

}  // namespace sluice::rollout
