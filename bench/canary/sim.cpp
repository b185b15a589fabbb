// bench/canary/sim.cpp: canary rollouts on a seeded simulated clock, gated three ways with the
// real gate code of src/stats:
//   - sequential: diff_cs(canary, stable) + decide() after every canary request;
//   - Argo Rollouts-style fixed windows (FixedWindowAnalysis);
//   - Kayenta-style repeated Mann-Whitney on the data so far (RepeatedMannWhitney).
// Part (a) runs A/A rollouts (canary == stable) and reports false rollbacks; part (b) runs
// regressions and reports how fast, and after how many users, each method rolls back. See
// README.md for the model and run.sh for the command that produced results/.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "stats/baselines.hpp"
#include "stats/normal.hpp"
#include "stats/random.hpp"
#include "stats/sequential.hpp"

namespace {

using namespace sluice::stats;

constexpr double kInf = std::numeric_limits<double>::infinity();

// ---- configuration -------------------------------------------------------------------------

struct Config {
  int aa_runs = 1000;  // A/A rollouts per metric and weight
  int reg_runs = 300;  // rollouts per regression and weight
  double minutes = 30;  // longest canary step
  double rps = 1000;    // total traffic
  int users = 50000;
  double zipf = 0.8;  // user i (0-based) sends requests in proportion to (i + 1)^-zipf
  uint64_t seed = 1;
  double alpha = 0.01;
  double effect = 0.1;
  double min_n = 30;
  int argo_interval = 60;  // seconds
  int argo_fast_interval = 10;
  int argo_failure_limit = 0;
  int kayenta_interval = 60;
  double kayenta_alpha = 0.01;
  std::vector<double> weights{0.01, 0.05};
  std::vector<std::string> metrics{"error_rate", "latency_p99", "cost", "refusal_rate"};
  std::string json = "canary_sim.json";
};

// ---- random variates -------------------------------------------------------------------------

struct Urbg {  // std distributions over the module's generator
  using result_type = uint64_t;
  Rng& rng;
  static constexpr uint64_t min() { return 0; }
  static constexpr uint64_t max() { return ~uint64_t{0}; }
  uint64_t operator()() { return rng.next(); }
};

class Variates {
 public:
  explicit Variates(uint64_t seed) : rng_(seed) {}
  Rng& rng() { return rng_; }
  double uniform() { return rng_.uniform(); }
  double exponential(double rate) { return -std::log1p(-rng_.uniform()) / rate; }
  double normal() { return normal_(rng_); }
  int poisson(double mean) {
    Urbg g{rng_};
    return std::poisson_distribution<int>(mean)(g);
  }
  int binomial(int n, double p) {
    if (n <= 0) return 0;
    Urbg g{rng_};
    return std::binomial_distribution<int>(n, p)(g);
  }

 private:
  Rng rng_;
  NormalVariate normal_;
};

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char ch : s) h = (h ^ ch) * 0x100000001b3ULL;
  return h;
}

uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// ---- metrics -------------------------------------------------------------------------------

enum class Kind { kRate, kLatencyExceedance, kCost };

struct Metric {
  std::string name;
  Kind kind;
  double base_rate = 0;  // kRate: stable's event rate
  double mu = 0, sigma = 0;  // lognormal latency (ms) or cost
  double limit = 0;  // kLatencyExceedance: stable's p99
  // Argo "typical" configuration: value = mean(canary) - factor * mean(stable) > threshold.
  double argo_factor = 1, argo_threshold = 0;
  bool bernoulli() const { return kind != Kind::kCost; }
};

Metric make_metric(const std::string& name) {
  Metric m{name, Kind::kRate};
  if (name == "error_rate") {
    m.base_rate = 0.01;
    m.argo_threshold = 0.005;  // "error rate <= stable + 0.5 pp"
  } else if (name == "refusal_rate") {
    m.base_rate = 0.03;
    m.argo_threshold = 0.01;  // "refusals <= stable + 1 pp"
  } else if (name == "latency_p99") {
    m.kind = Kind::kLatencyExceedance;
    m.mu = std::log(800.0);  // median 800 ms
    m.sigma = 0.6;
    m.limit = std::exp(m.mu + m.sigma * normal_quantile(0.99));  // stable's p99
    m.base_rate = 0.01;
    m.argo_threshold = 0.01;  // "at most 2 % of canary requests above stable's p99"
  } else if (name == "cost") {
    m.kind = Kind::kCost;
    m.mu = 0;  // cost per call, arbitrary unit, median 1
    m.sigma = 0.5;
    m.argo_factor = 1.1;  // "mean cost <= 1.1 x stable's"
  } else {
    std::fprintf(stderr, "unknown metric %s\n", name.c_str());
    std::exit(2);
  }
  return m;
}

// How a release behaves on a metric: event rate (kRate) or multiplier of the lognormal.
struct Behaviour {
  double rate = 0;
  double scale = 1;
};

Behaviour stable_behaviour(const Metric& m) { return {m.base_rate, 1}; }

// One observation as the gates see it: 0/1 for rates and exceedances, the cost itself.
double observe(const Metric& m, const Behaviour& b, Variates& v) {
  switch (m.kind) {
    case Kind::kRate:
      return v.uniform() < b.rate ? 1 : 0;
    case Kind::kLatencyExceedance:
      return b.scale * std::exp(m.mu + m.sigma * v.normal()) > m.limit ? 1 : 0;
    case Kind::kCost:
      return b.scale * std::exp(m.mu + m.sigma * v.normal());
  }
  return 0;
}

// One second of stable traffic, aggregated: n ~ Poisson(rate); events ~ Binomial(n, p) for
// 0/1 metrics; for cost, sum and sum of squares of n lognormals by their normal
// approximation (n is about 900-990; the stable arm's own noise is a small part of V).
Moments stable_second(const Metric& m, double rate, Variates& v) {
  const int n = v.poisson(rate);
  Moments out;
  out.n = n;
  if (m.kind != Kind::kCost) {
    out.sum = out.sumsq = v.binomial(n, m.base_rate);
    return out;
  }
  const double s2 = m.sigma * m.sigma;
  const double m1 = std::exp(m.mu + s2 / 2), m2 = std::exp(2 * m.mu + 2 * s2);
  const double v1 = m2 - m1 * m1, m4 = std::exp(4 * m.mu + 8 * s2), v2 = m4 - m2 * m2;
  out.sum = n * m1 + std::sqrt(n * v1) * v.normal();
  out.sumsq = n * m2 + std::sqrt(n * v2) * v.normal();
  return out;
}

LogBins cost_bins(const Metric& m) {
  return LogBins{std::exp(m.mu - 6 * m.sigma), std::exp(m.mu + 6 * m.sigma) * 2, 2048};
}

// ---- users ---------------------------------------------------------------------------------

struct Population {
  std::vector<double> weight;  // request share of each user, sums to 1
  explicit Population(const Config& c) : weight(static_cast<size_t>(c.users)) {
    double total = 0;
    for (size_t i = 0; i < weight.size(); ++i) total += weight[i] = std::pow(i + 1.0, -c.zipf);
    for (double& w : weight) w /= total;
  }
};

// Sticky assignment by user hash: buckets [0, w) canary, [w, 2w) Kayenta's baseline.
struct Assignment {
  std::vector<double> canary_cdf;  // cumulative request share of the canary's users
  double canary_share = 0, baseline_share = 0;
  void assign(const Population& p, double weight, uint64_t salt) {
    canary_cdf.clear();
    canary_share = baseline_share = 0;
    const auto cut = static_cast<uint64_t>(weight * 1e6);
    for (size_t i = 0; i < p.weight.size(); ++i) {
      const uint64_t bucket = mix64(i ^ salt) % 1000000;
      if (bucket < cut) {
        canary_share += p.weight[i];
        canary_cdf.push_back(canary_share);
      } else if (bucket < 2 * cut) {
        baseline_share += p.weight[i];
      }
    }
  }
  size_t pick_canary_user(double u) const {
    const auto it = std::upper_bound(canary_cdf.begin(), canary_cdf.end(), u * canary_share);
    return std::min(static_cast<size_t>(it - canary_cdf.begin()), canary_cdf.size() - 1);
  }
};

// ---- one rollout ---------------------------------------------------------------------------

enum Method { kSequential, kArgo, kArgoTuned, kArgoFastTuned, kKayenta, kKayentaTuned, kMethods };
const char* kMethodNames[kMethods] = {"sequential", "argo", "argo-tuned", "argo-fast-tuned",
                                      "kayenta", "kayenta-tuned"};

struct Tuning {  // thresholds found on the A/A runs; inactive (never fail) until set
  double argo_threshold = kInf, argo_fast_threshold = kInf, kayenta_alpha = 0;
};

struct Rollback {
  bool failed = false;
  double seconds = kInf, requests = kInf, users = 0;
};

struct RolloutResult {
  Rollback method[kMethods];
  double canary_share = 0, canary_requests = 0, users_total = 0;
  std::vector<double> argo_values, argo_fast_values;  // every window's value (factor 1)
  double kayenta_min_p = 1;
};

class Rollout {
 public:
  Rollout(const Config& c, const Population& pop) : c_(c), pop_(pop) {}

  // A/A when canary == stable_behaviour(m). `run_to_end`: keep going after every method
  // failed (A/A runs record the whole horizon for the tuning).
  RolloutResult run(const Metric& m, const Behaviour& canary_b, double weight,
                    const Tuning& tuning, bool run_to_end, Variates& v) {
    RolloutResult r;
    assign_.assign(pop_, weight, v.rng().next());
    r.canary_share = assign_.canary_share;
    const double rate_c = c_.rps * assign_.canary_share, rate_b = c_.rps * assign_.baseline_share;
    const double rate_s = c_.rps - rate_c - rate_b;
    const Behaviour stable_b = stable_behaviour(m);
    seen_.assign(assign_.canary_cdf.size(), 0);
    double distinct = 0;

    const SequentialOptions seq{.alpha = c_.alpha, .effect = c_.effect, .min_n = c_.min_n,
                                .bernoulli = m.bernoulli()};
    const int fl = c_.argo_failure_limit;
    FixedWindowAnalysis argo({.interval_s = double(c_.argo_interval),
                              .threshold = m.argo_threshold, .factor = m.argo_factor,
                              .failure_limit = fl});
    FixedWindowAnalysis argo_tuned({.interval_s = double(c_.argo_interval),
                                    .threshold = tuning.argo_threshold, .failure_limit = fl});
    FixedWindowAnalysis argo_fast({.interval_s = double(c_.argo_fast_interval),
                                   .threshold = tuning.argo_fast_threshold, .failure_limit = fl});
    RepeatedMannWhitney kayenta({.interval_s = double(c_.kayenta_interval),
                                 .alpha = c_.kayenta_alpha});
    RepeatedMannWhitney kayenta_tuned({.interval_s = double(c_.kayenta_interval),
                                       .alpha = tuning.kayenta_alpha});
    const LogBins bins = cost_bins(m);
    const size_t nbins = m.bernoulli() ? 2 : static_cast<size_t>(bins.bins);
    bins_c_.assign(nbins, 0);
    bins_b_.assign(nbins, 0);
    auto bin_of = [&](double x) {
      return m.bernoulli() ? static_cast<size_t>(x) : static_cast<size_t>(bins.index(x));
    };

    Moments canary, stable, win_c, win_s, fast_c, fast_s;
    double n_baseline = 0;
    int open = kMethods;
    auto roll_back = [&](Method k, double t) {
      Rollback& b = r.method[k];
      if (b.failed) return;
      b = {true, t, canary.n, distinct};
      --open;
    };

    const int horizon = static_cast<int>(c_.minutes * 60);
    double t_c = rate_c > 0 ? v.exponential(rate_c) : kInf;
    double t_b = rate_b > 0 ? v.exponential(rate_b) : kInf;
    for (int sec = 1; sec <= horizon; ++sec) {
      for (; t_c < sec; t_c += v.exponential(rate_c)) {  // canary requests of this second
        const size_t user = assign_.pick_canary_user(v.uniform());
        if (!seen_[user]) {
          seen_[user] = 1;
          ++distinct;
        }
        const double x = observe(m, canary_b, v);
        canary.add(x);
        win_c.add(x);
        fast_c.add(x);
        bins_c_[bin_of(x)] += 1;
        if (!r.method[kSequential].failed &&
            decide(diff_cs(canary, stable, 1, seq), 0, true) == Verdict::kFail) {
          roll_back(kSequential, t_c);
        }
      }
      for (; t_b < sec; t_b += v.exponential(rate_b)) {  // Kayenta's baseline
        bins_b_[bin_of(observe(m, stable_b, v))] += 1;
        n_baseline += 1;
      }
      const Moments batch = stable_second(m, rate_s, v);  // stable: refreshed every second
      stable.merge(batch);
      win_s.merge(batch);
      fast_s.merge(batch);
      const double t = sec;
      if (sec % c_.argo_interval == 0) {
        r.argo_values.push_back(FixedWindowAnalysis::value(win_c, win_s, 1));
        if (argo.measure(win_c, win_s) == Verdict::kFail) roll_back(kArgo, t);
        if (argo_tuned.measure(win_c, win_s) == Verdict::kFail) roll_back(kArgoTuned, t);
        win_c = win_s = {};
      }
      if (sec % c_.argo_fast_interval == 0) {
        r.argo_fast_values.push_back(FixedWindowAnalysis::value(fast_c, fast_s, 1));
        if (argo_fast.measure(fast_c, fast_s) == Verdict::kFail) roll_back(kArgoFastTuned, t);
        fast_c = fast_s = {};
      }
      if (sec % c_.kayenta_interval == 0) {
        const MannWhitney mw = mann_whitney_binned(bins_c_, bins_b_);
        if (kayenta.judge(mw, canary.n, n_baseline) == Verdict::kFail) roll_back(kKayenta, t);
        if (kayenta_tuned.judge(mw, canary.n, n_baseline) == Verdict::kFail) {
          roll_back(kKayentaTuned, t);
        }
      }
      if (open == 0 && !run_to_end) break;
    }
    for (Rollback& b : r.method) {
      if (!b.failed) b.users = distinct;  // never rolled back: everyone routed to it
    }
    r.canary_requests = canary.n;
    r.users_total = distinct;
    r.kayenta_min_p = kayenta.min_p();
    return r;
  }

 private:
  const Config& c_;
  const Population& pop_;
  Assignment assign_;
  std::vector<uint8_t> seen_;
  std::vector<double> bins_c_, bins_b_;
};

// ---- statistics of the runs -----------------------------------------------------------------

double percentile(std::vector<double> v, double q) {  // nearest rank; inf when censored
  if (v.empty()) return kInf;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

struct Rate {
  double k = 0, n = 0;
  double value() const { return n > 0 ? k / n : 0; }
  // Wilson 95 % interval.
  double lo() const { return wilson(-1); }
  double hi() const { return wilson(1); }
  double wilson(double sign) const {
    if (n == 0) return 0;
    const double z = 1.959963984540054, p = k / n;
    const double c = (p + z * z / (2 * n)) / (1 + z * z / n);
    const double h = z / (1 + z * z / n) * std::sqrt(p * (1 - p) / n + z * z / (4 * n * n));
    return std::clamp(c + sign * h, 0.0, 1.0);
  }
};

// The statistic that decides an Argo rollout with failure limit fl: its (fl + 1)-th largest
// window value (the rollout fails iff that value exceeds the threshold).
double deciding_value(std::vector<double> values, int fl) {
  std::sort(values.begin(), values.end(), std::greater<>());
  return static_cast<size_t>(fl) < values.size() ? values[static_cast<size_t>(fl)] : -kInf;
}

// Smallest threshold with at most `target` of the rollouts' deciding values above it.
double tune_threshold(std::vector<double> deciding, double target) {
  std::sort(deciding.begin(), deciding.end(), std::greater<>());
  const auto allowed = static_cast<size_t>(std::floor(target * static_cast<double>(deciding.size())));
  return deciding[std::min(allowed, deciding.size() - 1)];
}

// Largest per-test alpha with at most `target` of the rollouts' smallest p-values below it.
double tune_alpha(std::vector<double> min_p, double target) {
  std::sort(min_p.begin(), min_p.end());
  const auto allowed = static_cast<size_t>(std::floor(target * static_cast<double>(min_p.size())));
  return min_p[std::min(allowed, min_p.size() - 1)];
}

struct AaSummary {
  std::string metric;
  double weight = 0;
  int runs = 0;
  Rate frr[kMethods];  // tuned methods: out of sample (2-fold cross-fitting)
  double target = 0;
  Tuning tuning;
  double share_p10 = 0, share_p50 = 0, share_p90 = 0, canary_requests_p50 = 0, users_p50 = 0;
};

struct RegSummary {
  std::string metric, label;
  double weight = 0;
  int runs = 0;
  Rate detected[kMethods];
  double req_p50[kMethods], req_p90[kMethods], sec_p50[kMethods], sec_p90[kMethods],
      users_p50[kMethods], users_p90[kMethods];
};

AaSummary run_aa(const Config& c, const Population& pop, const Metric& m, double weight,
                 Variates& v) {
  Rollout rollout(c, pop);
  AaSummary s;
  s.metric = m.name;
  s.weight = weight;
  s.runs = c.aa_runs;
  std::vector<double> argo_dec, fast_dec, min_p, shares, reqs, users;
  for (int i = 0; i < c.aa_runs; ++i) {
    const RolloutResult r = rollout.run(m, stable_behaviour(m), weight, Tuning{}, true, v);
    for (int k : {kSequential, kArgo, kKayenta}) {
      s.frr[k].n += 1;
      s.frr[k].k += r.method[k].failed ? 1 : 0;
    }
    argo_dec.push_back(deciding_value(r.argo_values, c.argo_failure_limit));
    fast_dec.push_back(deciding_value(r.argo_fast_values, c.argo_failure_limit));
    min_p.push_back(r.kayenta_min_p);
    shares.push_back(r.canary_share);
    reqs.push_back(r.canary_requests);
    users.push_back(r.users_total);
  }
  // Baselines are tuned to the sequential gate's false-rollback rate, but not below alpha/2
  // (the one-sided level it is designed for): a tie goes to the baselines.
  s.target = std::max(s.frr[kSequential].value(), c.alpha / 2);
  s.tuning.argo_threshold = tune_threshold(argo_dec, s.target);
  s.tuning.argo_fast_threshold = tune_threshold(fast_dec, s.target);
  s.tuning.kayenta_alpha = tune_alpha(min_p, s.target);
  // Out-of-sample false-rollback rates of the tuned baselines: tune on one half, count on
  // the other, both ways.
  const size_t half = argo_dec.size() / 2;
  for (int fold = 0; fold < 2; ++fold) {
    auto part = [&](const std::vector<double>& x, bool first) {
      return first ? std::vector<double>(x.begin(), x.begin() + long(half))
                   : std::vector<double>(x.begin() + long(half), x.end());
    };
    const bool tune_first = fold == 0;
    const double thr = tune_threshold(part(argo_dec, tune_first), s.target);
    const double thr_fast = tune_threshold(part(fast_dec, tune_first), s.target);
    const double a = tune_alpha(part(min_p, tune_first), s.target);
    auto count = [](Rate& r, bool failed) {
      r.k += failed ? 1 : 0;
      r.n += 1;
    };
    for (double x : part(argo_dec, !tune_first)) count(s.frr[kArgoTuned], x > thr);
    for (double x : part(fast_dec, !tune_first)) count(s.frr[kArgoFastTuned], x > thr_fast);
    for (double p : part(min_p, !tune_first)) count(s.frr[kKayentaTuned], p < a);
  }
  s.share_p10 = percentile(shares, 0.1);
  s.share_p50 = percentile(shares, 0.5);
  s.share_p90 = percentile(shares, 0.9);
  s.canary_requests_p50 = percentile(reqs, 0.5);
  s.users_p50 = percentile(users, 0.5);
  return s;
}

RegSummary run_regression(const Config& c, const Population& pop, const Metric& m,
                          const std::string& label, const Behaviour& b, double weight,
                          const Tuning& tuning, Variates& v) {
  Rollout rollout(c, pop);
  RegSummary s;
  s.metric = m.name;
  s.label = label;
  s.weight = weight;
  s.runs = c.reg_runs;
  std::vector<double> req[kMethods], sec[kMethods], usr[kMethods];
  for (int i = 0; i < c.reg_runs; ++i) {
    const RolloutResult r = rollout.run(m, b, weight, tuning, false, v);
    for (int k = 0; k < kMethods; ++k) {
      const Rollback& rb = r.method[k];
      s.detected[k].n += 1;
      s.detected[k].k += rb.failed ? 1 : 0;
      req[k].push_back(rb.requests);
      sec[k].push_back(rb.seconds);
      usr[k].push_back(rb.users);
    }
  }
  for (int k = 0; k < kMethods; ++k) {
    s.req_p50[k] = percentile(req[k], 0.5);
    s.req_p90[k] = percentile(req[k], 0.9);
    s.sec_p50[k] = percentile(sec[k], 0.5);
    s.sec_p90[k] = percentile(sec[k], 0.9);
    s.users_p50[k] = percentile(usr[k], 0.5);
    s.users_p90[k] = percentile(usr[k], 0.9);
  }
  return s;
}

// ---- output ----------------------------------------------------------------------------------

std::string num(double x, const char* fmt = "%.0f") {
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, x);
  return buf;
}

std::string censored(double x, double max) {  // "> max" when not reached ("-" without a max)
  if (!std::isinf(x)) return num(x);
  return std::isinf(max) ? "-" : "> " + num(max);
}

std::string pct(double x) { return num(100 * x, "%.2f") + " %"; }

void print_markdown(const Config& c, const std::vector<AaSummary>& aa,
                    const std::vector<RegSummary>& reg, double elapsed) {
  const double max_s = c.minutes * 60;
  std::printf("## Canary gates: simulated rollouts\n\n");
  std::printf(
      "%.0f requests/s, %d users (Zipf %.2f, sticky by user hash), canary step up to %.0f min; "
      "alpha %.3g, effect %.3g, min_n %.0f; Argo windows %d s and %d s (failure limit %d), "
      "Kayenta every %d s at alpha %.3g; seed %llu; %d A/A and %d regression rollouts per "
      "cell; %.0f s on one core.\n\n",
      c.rps, c.users, c.zipf, c.minutes, c.alpha, c.effect, c.min_n, c.argo_interval,
      c.argo_fast_interval, c.argo_failure_limit, c.kayenta_interval, c.kayenta_alpha,
      static_cast<unsigned long long>(c.seed), c.aa_runs, c.reg_runs, elapsed);
  std::printf("### (a) A/A: false-rollback rate within %.0f min (95 %% Wilson interval)\n\n",
              c.minutes);
  std::printf(
      "| metric | weight | canary share p10/p50/p90 | sequential | argo (typical) | kayenta "
      "(alpha %.3g/test) | tuning target | argo-tuned (thr) | argo-fast-tuned (thr) | "
      "kayenta-tuned (alpha) |\n",
      c.kayenta_alpha);
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  auto rate = [](const Rate& r) {
    return pct(r.value()) + " [" + num(100 * r.lo(), "%.2f") + ", " + num(100 * r.hi(), "%.2f") + "]";
  };
  for (const AaSummary& s : aa) {
    std::printf("| %s | %s | %s / %s / %s | %s | %s | %s | %s | %s (%s) | %s (%s) | %s (%s) |\n",
                s.metric.c_str(), pct(s.weight).c_str(), pct(s.share_p10).c_str(),
                pct(s.share_p50).c_str(), pct(s.share_p90).c_str(),
                rate(s.frr[kSequential]).c_str(), rate(s.frr[kArgo]).c_str(),
                rate(s.frr[kKayenta]).c_str(), pct(s.target).c_str(),
                rate(s.frr[kArgoTuned]).c_str(), num(s.tuning.argo_threshold, "%.4g").c_str(),
                rate(s.frr[kArgoFastTuned]).c_str(),
                num(s.tuning.argo_fast_threshold, "%.4g").c_str(),
                rate(s.frr[kKayentaTuned]).c_str(), num(s.tuning.kayenta_alpha, "%.3g").c_str());
  }
  std::printf(
      "\nTuned baselines: threshold (Argo) or per-test alpha (Kayenta) set on these A/A runs so "
      "that their false-rollback rate is the target, max(sequential's, alpha/2); their rates "
      "above are out of sample (tuned on one half of the runs, counted on the other).\n");
  std::printf(
      "\n### (b) regressions: rollback within %.0f min\n\nMedian (p90) over rollouts; a rollout "
      "that was not rolled back counts as \"> %.0f s\" (requests \"-\") and exposes every user "
      "routed to the canary during the step.\n\n",
      c.minutes, max_s);
  std::printf(
      "| regression | weight | method | detected | canary requests | seconds | users exposed "
      "|\n|---|---|---|---|---|---|---|\n");
  for (const RegSummary& s : reg) {
    for (int k = 0; k < kMethods; ++k) {
      std::printf("| %s | %s | %s | %s | %s (%s) | %s (%s) | %s (%s) |\n", s.label.c_str(),
                  pct(s.weight).c_str(), kMethodNames[k],
                  (num(100 * s.detected[k].value(), "%.1f") + " %").c_str(),
                  censored(s.req_p50[k], kInf).c_str(), censored(s.req_p90[k], kInf).c_str(),
                  censored(s.sec_p50[k], max_s).c_str(), censored(s.sec_p90[k], max_s).c_str(),
                  num(s.users_p50[k]).c_str(), num(s.users_p90[k]).c_str());
    }
  }
}

// The two goals of the benchmark, reported whether met or not.
void print_goals(const Config& c, const std::vector<AaSummary>& aa,
                 const std::vector<RegSummary>& reg) {
  std::printf("\n### Goals\n\n");
  double worst = 0, worst_hi = 0;
  std::string where;
  for (const AaSummary& s : aa) {
    if (s.frr[kSequential].value() >= worst) {
      worst = s.frr[kSequential].value();
      worst_hi = s.frr[kSequential].hi();
      where = s.metric + " at " + pct(s.weight);
    }
  }
  std::printf(
      "- Sequential false rollbacks <= alpha (%.3g) in every A/A cell: highest %s (%s; upper "
      "95 %% bound %s): **%s**.\n",
      c.alpha, pct(worst).c_str(), where.c_str(), pct(worst_hi).c_str(),
      worst <= c.alpha ? "met" : "not met");
  for (const RegSummary& s : reg) {
    if (s.label != "error rate 1% -> 5%" || std::fabs(s.weight - 0.05) > 1e-9) continue;
    const double seq = s.sec_p50[kSequential], argo = s.sec_p50[kArgoTuned],
                 fast = s.sec_p50[kArgoFastTuned];
    std::printf(
        "- Time to detect 1 %% -> 5 %% errors at 5 %% weight, median: sequential %s s, Argo-style "
        "%d-s windows at the same false-rollback rate %s s: %.1fx shorter (goal 2x): **%s**. "
        "With %d-s windows (same false-rollback rate) Argo takes %s s (%.1fx).\n",
        num(seq, "%.1f").c_str(), c.argo_interval, num(argo, "%.1f").c_str(), argo / seq,
        argo / seq >= 2 ? "met" : "not met", c.argo_fast_interval, num(fast, "%.1f").c_str(),
        fast / seq);
  }
}

std::string json_num(double x) {
  if (!std::isfinite(x)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

void write_json(const Config& c, const std::vector<AaSummary>& aa,
                const std::vector<RegSummary>& reg, double elapsed) {
  FILE* f = std::fopen(c.json.c_str(), "w");
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", c.json.c_str());
    return;
  }
  std::fprintf(f,
               "{\n  \"config\": {\"aa_runs\": %d, \"reg_runs\": %d, \"minutes\": %s, \"rps\": %s, "
               "\"users\": %d, \"zipf\": %s, \"seed\": %llu, \"alpha\": %s, \"effect\": %s, "
               "\"min_n\": %s, \"argo_interval_s\": %d, \"argo_fast_interval_s\": %d, "
               "\"argo_failure_limit\": %d, \"kayenta_interval_s\": %d, \"kayenta_alpha\": %s, "
               "\"elapsed_s\": %s},\n",
               c.aa_runs, c.reg_runs, json_num(c.minutes).c_str(), json_num(c.rps).c_str(),
               c.users, json_num(c.zipf).c_str(), static_cast<unsigned long long>(c.seed),
               json_num(c.alpha).c_str(), json_num(c.effect).c_str(), json_num(c.min_n).c_str(),
               c.argo_interval, c.argo_fast_interval, c.argo_failure_limit, c.kayenta_interval,
               json_num(c.kayenta_alpha).c_str(), json_num(elapsed).c_str());
  std::fprintf(f, "  \"aa\": [\n");
  for (size_t i = 0; i < aa.size(); ++i) {
    const AaSummary& s = aa[i];
    std::fprintf(f, "    {\"metric\": \"%s\", \"weight\": %s, \"runs\": %d, \"false_rollbacks\": {",
                 s.metric.c_str(), json_num(s.weight).c_str(), s.runs);
    for (int k = 0; k < kMethods; ++k) {
      std::fprintf(f, "%s\"%s\": {\"rate\": %s, \"lo95\": %s, \"hi95\": %s}", k ? ", " : "",
                   kMethodNames[k], json_num(s.frr[k].value()).c_str(),
                   json_num(s.frr[k].lo()).c_str(), json_num(s.frr[k].hi()).c_str());
    }
    std::fprintf(f,
                 "}, \"tuning_target\": %s, \"argo_tuned_threshold\": %s, "
                 "\"argo_fast_tuned_threshold\": %s, \"kayenta_tuned_alpha\": %s, "
                 "\"canary_share\": {\"p10\": %s, \"p50\": %s, \"p90\": %s}, "
                 "\"canary_requests_p50\": %s, \"users_p50\": %s}%s\n",
                 json_num(s.target).c_str(), json_num(s.tuning.argo_threshold).c_str(),
                 json_num(s.tuning.argo_fast_threshold).c_str(),
                 json_num(s.tuning.kayenta_alpha).c_str(), json_num(s.share_p10).c_str(),
                 json_num(s.share_p50).c_str(), json_num(s.share_p90).c_str(),
                 json_num(s.canary_requests_p50).c_str(), json_num(s.users_p50).c_str(),
                 i + 1 < aa.size() ? "," : "");
  }
  std::fprintf(f, "  ],\n  \"regressions\": [\n");
  for (size_t i = 0; i < reg.size(); ++i) {
    const RegSummary& s = reg[i];
    std::fprintf(f, "    {\"metric\": \"%s\", \"regression\": \"%s\", \"weight\": %s, \"runs\": %d, \"methods\": {",
                 s.metric.c_str(), s.label.c_str(), json_num(s.weight).c_str(), s.runs);
    for (int k = 0; k < kMethods; ++k) {
      std::fprintf(f,
                   "%s\"%s\": {\"detected\": %s, \"requests_p50\": %s, \"requests_p90\": %s, "
                   "\"seconds_p50\": %s, \"seconds_p90\": %s, \"users_p50\": %s, \"users_p90\": %s}",
                   k ? ", " : "", kMethodNames[k], json_num(s.detected[k].value()).c_str(),
                   json_num(s.req_p50[k]).c_str(), json_num(s.req_p90[k]).c_str(),
                   json_num(s.sec_p50[k]).c_str(), json_num(s.sec_p90[k]).c_str(),
                   json_num(s.users_p50[k]).c_str(), json_num(s.users_p90[k]).c_str());
    }
    std::fprintf(f, "}}%s\n", i + 1 < reg.size() ? "," : "");
  }
  std::fprintf(f, "  ]\n}\n");
  std::fclose(f);
}

// ---- scenarios and command line ----------------------------------------------------------------

struct Regression {
  std::string metric, label;
  Behaviour canary;
};

std::vector<Regression> regressions() {
  return {{"error_rate", "error rate 1% -> 1.5%", {0.015, 1}},
          {"error_rate", "error rate 1% -> 2%", {0.02, 1}},
          {"error_rate", "error rate 1% -> 5%", {0.05, 1}},
          {"latency_p99", "latency +20% (p99 exceedance)", {0.01, 1.2}},
          {"cost", "cost per call +15%", {0, 1.15}},
          {"refusal_rate", "refusal rate 3% -> 6%", {0.06, 1}}};
}

std::vector<double> parse_list(const char* s) {
  std::vector<double> out;
  for (const char* p = s; *p;) {
    char* end;
    out.push_back(std::strtod(p, &end));
    p = *end == ',' ? end + 1 : end;
    if (end == p && *p) break;
  }
  return out;
}

std::vector<std::string> parse_names(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = s.find(',', start);
    out.push_back(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

void usage() {
  std::fprintf(stderr,
               "usage: canary_sim [--aa-runs N] [--reg-runs N] [--minutes M] [--rps R] [--users U]\n"
               "  [--zipf S] [--seed N] [--alpha A] [--effect E] [--min-n N] [--weights 0.01,0.05]\n"
               "  [--metrics error_rate,latency_p99,cost,refusal_rate] [--argo-interval S]\n"
               "  [--argo-fast-interval S] [--argo-failure-limit K] [--kayenta-interval S]\n"
               "  [--kayenta-alpha A] [--json FILE]\n");
}

bool parse(int argc, char** argv, Config& c) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") return false;
    if (i + 1 >= argc) return false;
    const char* v = argv[++i];
    if (a == "--aa-runs") c.aa_runs = std::atoi(v);
    else if (a == "--reg-runs") c.reg_runs = std::atoi(v);
    else if (a == "--minutes") c.minutes = std::atof(v);
    else if (a == "--rps") c.rps = std::atof(v);
    else if (a == "--users") c.users = std::atoi(v);
    else if (a == "--zipf") c.zipf = std::atof(v);
    else if (a == "--seed") c.seed = std::strtoull(v, nullptr, 10);
    else if (a == "--alpha") c.alpha = std::atof(v);
    else if (a == "--effect") c.effect = std::atof(v);
    else if (a == "--min-n") c.min_n = std::atof(v);
    else if (a == "--weights") c.weights = parse_list(v);
    else if (a == "--metrics") c.metrics = parse_names(v);
    else if (a == "--argo-interval") c.argo_interval = std::atoi(v);
    else if (a == "--argo-fast-interval") c.argo_fast_interval = std::atoi(v);
    else if (a == "--argo-failure-limit") c.argo_failure_limit = std::atoi(v);
    else if (a == "--kayenta-interval") c.kayenta_interval = std::atoi(v);
    else if (a == "--kayenta-alpha") c.kayenta_alpha = std::atof(v);
    else if (a == "--json") c.json = v;
    else return false;
  }
  return c.aa_runs >= 2 && c.reg_runs >= 1 && c.minutes > 0 && c.users > 0 && c.rps > 0 &&
         c.argo_interval > 0 && c.argo_fast_interval > 0 && c.kayenta_interval > 0 &&
         !c.weights.empty();
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  if (!parse(argc, argv, c)) {
    usage();
    return 2;
  }
  const std::clock_t start = std::clock();
  const Population pop(c);
  std::vector<AaSummary> aa;
  std::vector<RegSummary> reg;
  for (const std::string& name : c.metrics) {
    const Metric m = make_metric(name);
    for (double w : c.weights) {
      // One generator per cell, so a cell's numbers do not depend on which others ran.
      Variates v(mix64(c.seed ^ fnv1a(name) ^ mix64(uint64_t(w * 1e6))));
      AaSummary s = run_aa(c, pop, m, w, v);
      std::fprintf(stderr, "A/A %s at %.0f%%: sequential %.4f, argo %.4f, kayenta %.4f (%.0f s)\n",
                   name.c_str(), 100 * w, s.frr[kSequential].value(), s.frr[kArgo].value(),
                   s.frr[kKayenta].value(), double(std::clock() - start) / CLOCKS_PER_SEC);
      for (const Regression& r : regressions()) {
        if (r.metric != name) continue;
        reg.push_back(run_regression(c, pop, m, r.label, r.canary, w, s.tuning, v));
        std::fprintf(stderr, "  %s at %.0f%%: sequential median %s s (%.0f s)\n", r.label.c_str(),
                     100 * w, num(reg.back().sec_p50[kSequential], "%.1f").c_str(),
                     double(std::clock() - start) / CLOCKS_PER_SEC);
      }
      aa.push_back(s);
    }
  }
  const double elapsed = double(std::clock() - start) / CLOCKS_PER_SEC;
  print_markdown(c, aa, reg, elapsed);
  print_goals(c, aa, reg);
  write_json(c, aa, reg, elapsed);
  return 0;
}
