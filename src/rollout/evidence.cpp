#include "core/strings.hpp"
#include "rollout/evidence.hpp"

#include <simdjson.h>

#include <cmath>
#include <utility>
#include <cstdio>

#include "core/error.hpp"

namespace sluice::rollout {

namespace {

constexpr double kBase = 0.01;  // ms
constexpr double kGrowth = 1.02;
const double kLogGrowth = std::log(kGrowth);
constexpr size_t kMaxBuckets = 1000;

size_t bucket_of(double ms) {
  if (!(ms > kBase)) return 0;
  double b = std::floor(std::log(ms / kBase) / kLogGrowth) + 1;
  return std::min(static_cast<size_t>(b), kMaxBuckets - 1);
}
// Upper edge of a bucket (bucket 0 holds everything <= kBase).
double upper_edge(size_t b) { return kBase * std::pow(kGrowth, static_cast<double>(b)); }

std::string num(double v) { return num_text(v, 17); }

void put_moments(std::string& o, const char* name, const stats::Moments& m) {
  o += "\"";
  o += name;
  o += "\":[" + num(m.n) + "," + num(m.sum) + "," + num(m.sumsq) + "]";
}

bool get_moments(simdjson::dom::object obj, const char* name, stats::Moments& m) {
  simdjson::dom::array a;
  if (obj[name].get_array().get(a)) return true;  // absent: zero
  double v[3] = {0, 0, 0};
  size_t i = 0;
  for (auto e : a) {
    if (i < 3 && e.get_double().get(v[i])) return false;
    ++i;
  }
  m.n = v[0];
  m.sum = v[1];
  m.sumsq = v[2];
  return true;
}

struct ArmFields {
  const char* name;
  stats::Moments ArmEvidence::*field;
};
constexpr ArmFields kArmFields[] = {
    {"error", &ArmEvidence::error},         {"latency", &ArmEvidence::latency},   {"ttft", &ArmEvidence::ttft},
    {"tpot", &ArmEvidence::tpot},           {"tokens_out", &ArmEvidence::tokens_out}, {"cost", &ArmEvidence::cost},
    {"tokens_in", &ArmEvidence::tokens_in},
    {"refusal", &ArmEvidence::refusal},     {"schema_valid", &ArmEvidence::schema_valid},
    {"feedback", &ArmEvidence::feedback},
};

std::string arm_json(const ArmEvidence& a) {
  std::string o = "{";
  for (const auto& f : kArmFields) {
    put_moments(o, f.name, a.*(f.field));
    o += ",";
  }
  o += "\"latency_h\":" + a.latency_h.to_json() + ",\"ttft_h\":" + a.ttft_h.to_json() + "}";
  return o;
}

bool arm_from(simdjson::dom::element e, ArmEvidence& a) {
  simdjson::dom::object obj;
  if (e.get_object().get(obj)) return false;
  for (const auto& f : kArmFields)
    if (!get_moments(obj, f.name, a.*(f.field))) return false;
  simdjson::dom::element h;
  if (!obj["latency_h"].get(h) && !a.latency_h.from_json(simdjson::minify(h))) return false;
  if (!obj["ttft_h"].get(h) && !a.ttft_h.from_json(simdjson::minify(h))) return false;
  return true;
}

}  // namespace

void LogHistogram::add(double ms) {
  size_t b = bucket_of(ms);
  if (counts_.size() <= b) counts_.resize(b + 1, 0);
  ++counts_[b];
  ++total_;
}

void LogHistogram::merge(const LogHistogram& o) {
  if (counts_.size() < o.counts_.size()) counts_.resize(o.counts_.size(), 0);
  for (size_t i = 0; i < o.counts_.size(); ++i) counts_[i] += o.counts_[i];
  total_ += o.total_;
}

uint64_t LogHistogram::count_above(double ms) const {
  // Buckets entirely above `ms` count; the bucket holding `ms` is split by position.
  size_t b = bucket_of(ms);
  uint64_t n = 0;
  for (size_t i = b + 1; i < counts_.size(); ++i) n += counts_[i];
  if (b < counts_.size() && counts_[b] > 0 && b > 0) {
    double lo = upper_edge(b - 1), hi = upper_edge(b);
    double frac = (hi - ms) / (hi - lo);
    n += static_cast<uint64_t>(std::llround(static_cast<double>(counts_[b]) * std::clamp(frac, 0.0, 1.0)));
  }
  return n;
}

double LogHistogram::quantile(double q) const {
  if (total_ == 0) return 0;
  double target = q * static_cast<double>(total_);
  double seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i] == 0) continue;
    if (seen + static_cast<double>(counts_[i]) >= target) {
      double lo = i == 0 ? 0 : upper_edge(i - 1), hi = upper_edge(i);
      double frac = (target - seen) / static_cast<double>(counts_[i]);
      return lo + (hi - lo) * std::clamp(frac, 0.0, 1.0);
    }
    seen += static_cast<double>(counts_[i]);
  }
  return upper_edge(counts_.size() - 1);
}

std::string LogHistogram::to_json() const {
  std::string o = "[";
  bool first = true;
  for (size_t i = 0; i < counts_.size(); ++i) {
    if (!counts_[i]) continue;
    if (!first) o += ",";
    first = false;
    o += "[" + std::to_string(i) + "," + std::to_string(counts_[i]) + "]";
  }
  return o + "]";
}

bool LogHistogram::from_json(std::string_view json) {
  simdjson::dom::parser p;
  simdjson::dom::array a;
  if (p.parse(json.data(), json.size(), true).get_array().get(a)) return false;
  counts_.clear();
  total_ = 0;
  for (auto pair : a) {
    simdjson::dom::array kv;
    uint64_t idx = 0, n = 0;
    if (pair.get_array().get(kv) || kv.size() != 2) return false;
    if (kv.at(0).get_uint64().get(idx) || kv.at(1).get_uint64().get(n) || idx >= kMaxBuckets) return false;
    if (counts_.size() <= idx) counts_.resize(idx + 1, 0);
    counts_[idx] += n;
    total_ += n;
  }
  return true;
}

void ArmEvidence::add(const Observation& o) {
  error.add(o.error ? 1 : 0);
  if (o.error) return;  // latency, tokens and quality are measured on answers
  latency.add(o.latency_ms);
  latency_h.add(o.latency_ms);
  if (o.ttft_ms >= 0) {
    ttft.add(o.ttft_ms);
    ttft_h.add(o.ttft_ms);
  }
  if (o.tpot_ms >= 0) tpot.add(o.tpot_ms);
  if (o.tokens_in >= 0) tokens_in.add(o.tokens_in);
  if (o.tokens_out >= 0) tokens_out.add(o.tokens_out);
  if (o.cost >= 0) cost.add(o.cost);
  if (o.refusal >= 0) refusal.add(o.refusal);
  if (o.schema_valid >= 0) schema_valid.add(o.schema_valid);
}

void ArmEvidence::merge(const ArmEvidence& o) {
  for (auto [into, from] : {std::pair{&error, &o.error}, {&latency, &o.latency}, {&ttft, &o.ttft}, {&tpot, &o.tpot},
                            {&tokens_in, &o.tokens_in}, {&tokens_out, &o.tokens_out}, {&cost, &o.cost},
                            {&refusal, &o.refusal}, {&schema_valid, &o.schema_valid}, {&feedback, &o.feedback}})
    into->merge(*from);
  latency_h.merge(o.latency_h);
  ttft_h.merge(o.ttft_h);
}

void Evidence::merge(const Evidence& o) {
  stable.merge(o.stable);
  candidate.merge(o.candidate);
  pairs.agreement.merge(o.pairs.agreement);
  pairs.latency_delta.merge(o.pairs.latency_delta);
  pairs.cost_delta.merge(o.pairs.cost_delta);
  pairs.refusal_delta.merge(o.pairs.refusal_delta);
  for (const auto& d : o.pairs.kept) {
    pairs.kept.push_back(d);
    if (pairs.kept.size() > ShadowEvidence::kKeep) pairs.kept.pop_front();
  }
}

const stats::Moments* ArmEvidence::moments(const std::string& m) const {
  if (m == "error_rate") return &error;
  if (m == "refusal_rate") return &refusal;
  if (m == "schema_valid_rate") return &schema_valid;
  if (m == "latency_ms") return &latency;
  if (m == "ttft_ms") return &ttft;
  if (m == "tpot_ms") return &tpot;
  if (m == "tokens_in") return &tokens_in;
  if (m == "tokens_out") return &tokens_out;
  if (m == "cost_per_call") return &cost;
  if (m == "feedback_mean") return &feedback;
  return nullptr;
}

const LogHistogram* ArmEvidence::histogram(const std::string& base) const {
  if (base == "latency_ms") return &latency_h;
  if (base == "ttft_ms") return &ttft_h;
  return nullptr;
}

std::string disagreements_json(const std::deque<Disagreement>& kept) {
  std::string o = "[";
  for (const auto& d : kept) {
    if (o.size() > 1) o += ",";
    o += "{\"request_id\":";
    append_json_string(o, d.request_id);
    o += ",\"stable\":";
    append_json_string(o, d.stable_text);
    o += ",\"candidate\":";
    append_json_string(o, d.candidate_text);
    o += ",\"similarity\":" + num(d.similarity) + "}";
  }
  return o + "]";
}

std::string Evidence::to_json() const {
  std::string o = "{\"stable\":" + arm_json(stable) + ",\"candidate\":" + arm_json(candidate) + ",\"pairs\":{";
  put_moments(o, "agreement", pairs.agreement);
  o += ",";
  put_moments(o, "latency_delta", pairs.latency_delta);
  o += ",";
  put_moments(o, "cost_delta", pairs.cost_delta);
  o += ",";
  put_moments(o, "refusal_delta", pairs.refusal_delta);
  o += ",\"kept\":" + disagreements_json(pairs.kept) + "}}";
  return o;
}

bool Evidence::from_json(std::string_view json) {
  simdjson::dom::parser p;
  simdjson::dom::object obj;
  if (p.parse(json.data(), json.size(), true).get_object().get(obj)) return false;
  simdjson::dom::element e;
  if (!obj["stable"].get(e) && !arm_from(e, stable)) return false;
  if (!obj["candidate"].get(e) && !arm_from(e, candidate)) return false;
  simdjson::dom::object pr;
  if (!obj["pairs"].get_object().get(pr)) {
    if (!get_moments(pr, "agreement", pairs.agreement) || !get_moments(pr, "latency_delta", pairs.latency_delta) ||
        !get_moments(pr, "cost_delta", pairs.cost_delta) || !get_moments(pr, "refusal_delta", pairs.refusal_delta))
      return false;
    simdjson::dom::array kept;
    if (!pr["kept"].get_array().get(kept)) {
      for (auto k : kept) {
        Disagreement d;
        std::string_view v;
        if (!k["request_id"].get_string().get(v)) d.request_id = v;
        if (!k["stable"].get_string().get(v)) d.stable_text = v;
        if (!k["candidate"].get_string().get(v)) d.candidate_text = v;
        double sim = 0;
        if (!k["similarity"].get_double().get(sim)) d.similarity = sim;
        pairs.kept.push_back(std::move(d));
      }
    }
  }
  return true;
}

}  // namespace sluice::rollout
