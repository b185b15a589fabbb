// bench/micro/drift_eval.cpp: how fast the drift statistics (src/drift/) notice real shifts
// in the shared data, at a fixed false-alarm rate. Prints Markdown (docs/drift.md).
//
//   drift_eval DATA_DIR      (DATA_DIR = ../shared/data)
//
// 1. Lengths: the Azure conversation trace is the baseline; the stream then turns into the
//    code trace (all of it, or mixed in at a share). PSI of log context tokens and log
//    generated tokens over a sliding window, the larger of the two against a threshold set
//    on a calibration stretch of the conversation trace for a 1% false-alarm rate, checked on
//    a later stretch it was not set on.
// 2. Content: GSM8K questions are the baseline; the stream then mixes in XSTest prompts at a
//    share. Hashed word sketches, a permutation test per window, alarm at p <= 0.01 (a false
//    alarm rate of 1% by construction, measured on pure GSM8K windows).
// Delay = requests (or prompts) after the change until the first alarm.
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/csv.hpp"
#include "drift/drift.hpp"

using namespace sluice::drift;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Req {
  double ctx, gen;
};

std::vector<Req> trace(const std::string& path) {
  std::vector<Req> out;
  auto rows = sluice::parse_csv(slurp(path));
  for (size_t i = 1; i < rows.size(); ++i)
    if (rows[i].size() >= 3) out.push_back({std::log1p(std::stod(rows[i][1])), std::log1p(std::stod(rows[i][2]))});
  return out;
}

double max_psi(const Bins& bc, const Bins& bg, const std::vector<double>& rc, const std::vector<double>& rg,
               const std::vector<Req>& window) {
  std::vector<double> c, g;
  for (const auto& r : window) c.push_back(r.ctx), g.push_back(r.gen);
  return std::max(psi(rc, bc.shares(c)), psi(rg, bg.shares(g)));
}

// `split`: the baseline and threshold come from the first half of the conversation trace and
// false alarms are counted on the second; otherwise both come from the whole trace (the
// threshold is then in-sample: 1% false alarms by construction).
void lengths(const std::string& dir, bool split) {
  auto conv = trace(dir + "/azure-llm-trace-2023/conv.csv");
  auto code = trace(dir + "/azure-llm-trace-2023/code.csv");
  const size_t kBase = 3000, kWindow = 500, kStep = 50;
  // Calibration stretch: conv[0, mid), the baseline a random sample of it (the traffic the
  // route normally sees, across its hour); test stretch: conv[mid, end).
  const size_t mid = split ? conv.size() / 2 : conv.size();
  std::mt19937 pick(1);
  std::vector<Req> sample(conv.begin(), conv.begin() + mid);
  std::shuffle(sample.begin(), sample.end(), pick);
  std::vector<double> c, g;
  for (size_t i = 0; i < kBase; ++i) c.push_back(sample[i].ctx), g.push_back(sample[i].gen);
  Bins bc(c, 10), bg(g, 10);
  auto rc = bc.shares(c), rg = bg.shares(g);
  auto scores = [&](size_t from, size_t to) {
    std::vector<double> s;
    for (size_t end = from + kWindow; end <= to; end += kStep)
      s.push_back(max_psi(bc, bg, rc, rg, std::vector<Req>(conv.begin() + end - kWindow, conv.begin() + end)));
    return s;
  };
  auto cal = scores(0, mid), test = split ? scores(mid, conv.size()) : cal;
  std::vector<double> sorted = cal;
  std::sort(sorted.begin(), sorted.end());
  const double threshold = sorted[std::min(sorted.size() - 1, static_cast<size_t>(std::ceil(0.99 * sorted.size())))];
  size_t fa = 0;
  for (double s : test) fa += s > threshold;
  std::printf("## Lengths: Azure conversation trace, then the code trace (%s)\n\n",
              split ? "baseline and threshold from the first half, false alarms on the second"
                    : "baseline and threshold from the whole trace, in-sample");
  std::printf("Baseline: %zu requests sampled from the calibration stretch of the conversation trace; features log(1+context tokens) and "
              "log(1+generated tokens), 10 quantile bins each; window %zu requests, checked every %zu; score = "
              "the larger PSI.\nThreshold %.3f (99th percentile of %zu calibration windows of the conversation "
              "trace); false alarms on %zu conversation windows%s: %zu (%.1f%%).\n\n",
              kBase, kWindow, kStep, threshold, cal.size(), test.size(), split ? " it was not set on" : "", fa,
              100.0 * fa / test.size());
  std::printf("| share of code requests after the change | detected within 5,000 | delay, median (requests) | "
              "PSI after %zu requests, median |\n|---:|---:|---:|---:|\n",
              kWindow);
  std::mt19937 rng(42);
  const int kStreams = 10;
  for (double share : {0.1, 0.25, 0.5, 1.0}) {
    std::vector<long> delays;
    std::vector<double> at;
    for (int k = 0; k < kStreams; ++k) {
      // The stream: a random point of the test stretch, then a mix from there on.
      const size_t from = split ? mid : 0;
      size_t start = from + rng() % (conv.size() - from - 6000);
      std::vector<Req> stream(conv.begin() + start, conv.begin() + start + kWindow);
      const size_t change = stream.size();
      size_t ci = rng() % code.size(), vi = start + kWindow;
      std::bernoulli_distribution from_code(share);
      for (size_t n = 0; n < 5000; ++n)
        stream.push_back(from_code(rng) ? code[ci++ % code.size()] : conv[vi++]);
      long delay = -1;
      for (size_t end = change + kStep; end <= stream.size(); end += kStep) {
        double s = max_psi(bc, bg, rc, rg, std::vector<Req>(stream.begin() + end - kWindow, stream.begin() + end));
        if (end == change + kWindow) at.push_back(s);
        if (s > threshold && delay < 0) delay = static_cast<long>(end - change);
      }
      if (delay >= 0) delays.push_back(delay);
    }
    std::sort(delays.begin(), delays.end());
    std::sort(at.begin(), at.end());
    std::printf("| %.0f%% | %zu / %d | %s | %.3f |\n", share * 100, delays.size(), kStreams,
                delays.empty() ? "-" : std::to_string(delays[delays.size() / 2]).c_str(), at[at.size() / 2]);
  }
  std::printf("\n");
}

void content(const std::string& dir) {
  std::vector<std::string> gsm, xs;
  simdjson::dom::parser parser;
  std::istringstream lines(slurp(dir + "/gsm8k/test.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    simdjson::dom::element e;
    std::string_view q;
    if (!line.empty() && !parser.parse(line).get(e) && !e["question"].get(q)) gsm.emplace_back(q);
  }
  auto rows = sluice::parse_csv(slurp(dir + "/xstest/prompts.csv"));
  for (size_t i = 1; i < rows.size(); ++i)
    if (rows[i].size() > 1) xs.push_back(rows[i][1]);
  std::mt19937 rng(7);
  std::shuffle(gsm.begin(), gsm.end(), rng);
  std::shuffle(xs.begin(), xs.end(), rng);
  const size_t kBase = 300, kWindow = 100, kStep = 25;
  std::vector<Sketch> base;
  for (size_t i = 0; i < kBase; ++i) base.push_back(sketch(gsm[i]));
  // False alarms: windows of GSM8K questions the baseline did not hold.
  size_t fa = 0, windows = 0;
  uint64_t seed = 1;
  for (size_t end = kBase + kWindow; end <= gsm.size(); end += kWindow, ++windows) {
    std::vector<Sketch> w;
    for (size_t i = end - kWindow; i < end; ++i) w.push_back(sketch(gsm[i]));
    fa += permutation_test(base, w, 199, seed++).p_value <= 0.01;
  }
  std::printf("## Content: GSM8K questions, then XSTest prompts mixed in\n\n");
  std::printf("Baseline: %zu GSM8K questions (shuffled); hashed word 1-2-gram sketches (%zu buckets); window %zu "
              "prompts, checked every %zu; alarm when the permutation test (199 permutations) gives p <= 0.01.\n"
              "False alarms on %zu windows of other GSM8K questions: %zu (%.1f%%).\n\n",
              kBase, kSketchBuckets, kWindow, kStep, windows, fa, 100.0 * fa / windows);
  std::printf("| share of XSTest prompts after the change | detected within 600 | delay, median (prompts) |\n"
              "|---:|---:|---:|\n");
  const int kStreams = 10;
  for (double share : {0.02, 0.05, 0.1, 0.2, 0.5}) {
    std::vector<long> delays;
    for (int k = 0; k < kStreams; ++k) {
      // GSM8K questions the baseline does not hold, in a fresh order per stream.
      std::vector<std::string> rest(gsm.begin() + kBase, gsm.end());
      std::shuffle(rest.begin(), rest.end(), rng);
      std::vector<Sketch> stream;
      size_t gi = 0, xi = rng() % xs.size();
      for (size_t i = 0; i < kWindow; ++i) stream.push_back(sketch(rest[gi++]));
      const size_t change = stream.size();
      std::bernoulli_distribution from_xs(share);
      for (size_t n = 0; n < 600; ++n)
        stream.push_back(sketch(from_xs(rng) ? xs[xi++ % xs.size()] : rest[gi++ % rest.size()]));
      long delay = -1;
      for (size_t end = change + kStep; end <= stream.size() && delay < 0; end += kStep) {
        std::vector<Sketch> w(stream.begin() + end - kWindow, stream.begin() + end);
        if (permutation_test(base, w, 199, seed++).p_value <= 0.01) delay = static_cast<long>(end - change);
      }
      if (delay >= 0) delays.push_back(delay);
    }
    std::sort(delays.begin(), delays.end());
    std::printf("| %.0f%% | %zu / %d | %s |\n", share * 100, delays.size(), kStreams,
                delays.empty() ? "-" : std::to_string(delays[delays.size() / 2]).c_str());
  }
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "../shared/data";
  lengths(dir, false);
  lengths(dir, true);
  content(dir);
  return 0;
}
