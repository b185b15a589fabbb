#include "scale/simulate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace sluice::scale {

namespace {

// "2023-11-16 18:17:03.9799600" -> seconds since the epoch (days counted from the date, so a
// trace crossing midnight stays in order).
bool parse_time(const std::string& s, double& out) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0;
  double sec = 0;
  if (std::sscanf(s.c_str(), "%d-%d-%d %d:%d:%lf", &y, &mo, &d, &h, &mi, &sec) != 6) return false;
  // days from civil (Howard Hinnant's algorithm)
  y -= mo <= 2;
  const int era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const double days = era * 146097.0 + doe - 719468.0;
  out = days * 86400 + h * 3600 + mi * 60 + sec;
  return true;
}

double alone_s(const TraceRequest& r, const SimOptions& o) {
  return static_cast<double>(r.prompt_tokens) / o.prefill_tps + static_cast<double>(r.output_tokens) / o.decode_tps;
}

}  // namespace

std::string read_trace(const std::string& path, std::vector<TraceRequest>& out) {
  std::ifstream in(path);
  if (!in) return "cannot open " + path;
  std::string line;
  size_t n = 0;
  double first = 0;
  constexpr size_t kMaxRows = 10'000'000;  // a bound on what is read into memory
  while (std::getline(in, line)) {
    ++n;
    if (n == 1 && line.rfind("TIMESTAMP", 0) == 0) continue;
    if (line.empty()) continue;
    if (out.size() >= kMaxRows) return path + ": more than 10,000,000 requests";
    std::stringstream ss(line);
    std::string ts, a, b;
    if (!std::getline(ss, ts, ',') || !std::getline(ss, a, ',') || !std::getline(ss, b, ','))
      return path + ":" + std::to_string(n) + ": expected TIMESTAMP,ContextTokens,GeneratedTokens";
    double t = 0;
    if (!parse_time(ts, t)) return path + ":" + std::to_string(n) + ": bad timestamp '" + ts + "'";
    char* end = nullptr;
    const long long p = std::strtoll(a.c_str(), &end, 10);
    const long long g = std::strtoll(b.c_str(), &end, 10);
    if (p < 0 || g < 0) return path + ":" + std::to_string(n) + ": negative token count";
    if (out.empty()) first = t;
    out.push_back({t - first, p, g});
  }
  std::stable_sort(out.begin(), out.end(), [](const TraceRequest& x, const TraceRequest& y) { return x.arrival_s < y.arrival_s; });
  if (out.empty()) return path + ": no requests";
  const double t0 = out.front().arrival_s;
  for (auto& r : out) r.arrival_s -= t0;
  return "";
}

double calibrated_target_tokens(const std::vector<TraceRequest>& trace, const SimOptions& o) {
  double w = 0, wd = 0;
  for (const auto& r : trace) {
    const double work = static_cast<double>(r.prompt_tokens + r.output_tokens);
    w += work;
    wd += work * alone_s(r, o);
  }
  return w > 0 ? o.cpu_target * o.capacity_tps * (wd / w) : 0;
}

SimResult simulate(const std::vector<TraceRequest>& trace, const SimOptions& o, const std::string& signal) {
  SimResult res;
  res.signal = signal;
  const bool tokens = signal == "tokens";
  res.target = tokens ? (o.target_tokens > 0 ? o.target_tokens : calibrated_target_tokens(trace, o)) : o.cpu_target;

  struct Active {
    double work = 0;       // tokens (prompt + output)
    double rate = 0;       // tokens per second when alone
    double remaining = 0;  // tokens still to process
    double arrival = 0, alone = 0;
  };
  std::vector<Active> active;
  std::vector<double> slowdowns;
  slowdowns.reserve(trace.size());

  // The first minute's mean demand at the target sets the starting size, for both signals.
  double first_minute = 0;
  for (const auto& r : trace) {
    if (r.arrival_s >= 60) break;
    first_minute += static_cast<double>(r.prompt_tokens + r.output_tokens);
  }
  Policy pol = o.policy;
  const int lo = std::max(pol.min_replicas, 1);
  int spec = std::clamp(static_cast<int>(std::ceil(first_minute / 60 / (o.cpu_target * o.capacity_tps))), lo,
                        std::max(pol.max_replicas, lo));
  int ready = spec;
  std::vector<std::pair<double, int>> pending;  // (ready at, count) of starting replicas
  Recommender rec(pol);
  res.peak_replicas = spec;

  size_t next = 0;
  double t = 0, served_since_sync = 0, ready_time_since_sync = 0, next_sync = o.sync_period_s;
  const double end_guard = trace.back().arrival_s + 3600 * 4;  // never run away forever
  while ((next < trace.size() || !active.empty()) && t < end_guard) {
    while (next < trace.size() && trace[next].arrival_s <= t) {
      const TraceRequest& r = trace[next++];
      Active a;
      a.work = static_cast<double>(r.prompt_tokens + r.output_tokens);
      a.alone = std::max(alone_s(r, o), 1e-3);
      a.rate = a.work / a.alone;
      a.remaining = a.work;
      a.arrival = r.arrival_s;
      active.push_back(a);
    }
    for (auto it = pending.begin(); it != pending.end();) {
      if (it->first <= t) {
        ready += it->second;
        it = pending.erase(it);
      } else {
        ++it;
      }
    }
    ready = std::min(ready, spec);  // scale-down removes ready replicas first
    double demand = 0;
    for (const Active& a : active) demand += a.rate;
    const double cap = ready * o.capacity_tps;
    const double share = demand > cap ? (cap > 0 ? cap / demand : 0) : 1;
    if (demand > cap + 1e-9) res.under_capacity_s += o.step_s;
    double served = 0;
    for (auto it = active.begin(); it != active.end();) {
      const double done = std::min(it->remaining, it->rate * share * o.step_s);
      it->remaining -= done;
      served += done;
      if (it->remaining <= 1e-9) {
        slowdowns.push_back((t + o.step_s - it->arrival) / it->alone);
        *it = active.back();
        active.pop_back();
      } else {
        ++it;
      }
    }
    served_since_sync += served;
    ready_time_since_sync += ready * o.step_s;
    res.replica_hours += spec * o.step_s / 3600;
    t += o.step_s;

    if (t + 1e-9 >= next_sync) {
      next_sync += o.sync_period_s;
      std::vector<Signal> sig;
      if (tokens) {
        // What a scrape of /metrics/scale reads at that moment.
        double in_flight = 0;
        for (const Active& a : active) in_flight += a.work;
        sig.push_back({"tokens_in_flight", in_flight, res.target, false});
      } else {
        // Average utilization of the ready replicas over the period, times their count: the
        // HPA's ceil(ready x utilization / target).
        const double util = ready_time_since_sync > 0 ? served_since_sync / (ready_time_since_sync * o.capacity_tps) : 0;
        sig.push_back({"cpu", util * ready, o.cpu_target, false});
      }
      served_since_sync = ready_time_since_sync = 0;
      const int want = rec.decide(sig, static_cast<int64_t>(t * 1000), spec).replicas;
      if (want != spec) {
        ++res.scale_events;
        if (want > spec) {
          pending.emplace_back(t + o.startup_s, want - spec);
        } else {
          // Starting replicas are cancelled before ready ones are removed.
          int drop = spec - want;
          while (drop > 0 && !pending.empty()) {
            const int k = std::min(drop, pending.back().second);
            pending.back().second -= k;
            drop -= k;
            if (pending.back().second == 0) pending.pop_back();
          }
          ready -= drop;
        }
        spec = want;
        res.peak_replicas = std::max(res.peak_replicas, spec);
      }
    }
  }
  res.duration_s = t;
  if (!slowdowns.empty()) {
    double sum = 0;
    for (double s : slowdowns) sum += s;
    res.mean_slowdown = sum / static_cast<double>(slowdowns.size());
    const size_t k = std::min(slowdowns.size() - 1, static_cast<size_t>(0.99 * static_cast<double>(slowdowns.size())));
    std::nth_element(slowdowns.begin(), slowdowns.begin() + static_cast<ptrdiff_t>(k), slowdowns.end());
    res.p99_slowdown = slowdowns[k];
  }
  return res;
}

}  // namespace sluice::scale
