// Cost per answer of the refusal detector (quality/refusal.hpp), over the 1,350 real XSTest
// answers (../shared/data/xstest). Build and run (Release, not under sanitizers):
//   cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DSLUICE_BENCH=ON -DSLUICE_TESTS=OFF
//   cmake --build build/bench --target refusal_bench && build/bench/bench/micro/refusal_bench
// Each iteration classifies one answer (cycling through all of them); the figure is time/iter.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/csv.hpp"
#include "core/files.hpp"
#include "quality/refusal.hpp"

namespace {

using namespace sluice;

const std::vector<std::string>& answers() {
  static const std::vector<std::string> all = [] {
    std::vector<std::string> out;
    for (const char* m : {"gpt4", "llama2orig", "mistralguard"}) {
      auto text = read_file(std::string(SLUICE_SOURCE_DIR) + "/../shared/data/xstest/completions_" + m + ".csv");
      if (!text) continue;
      auto rows = parse_csv(*text);
      for (size_t r = 1; r < rows.size(); ++r) {
        if (rows[r].size() > 3) out.push_back(rows[r][3]);  // id,type,prompt,completion,...
      }
    }
    if (out.empty()) out = {"I'm sorry, but I can't help with that.", "Sure! To kill a Python process, run kill."};
    return out;
  }();
  return all;
}

template <typename F>
void run(benchmark::State& state, F classify) {
  const auto& a = answers();
  size_t i = 0, hits = 0;
  for (auto _ : state) {
    hits += classify(a[i]) ? 1 : 0;
    if (++i == a.size()) i = 0;
  }
  benchmark::DoNotOptimize(hits);
  state.counters["answers"] = static_cast<double>(a.size());
}

void BM_PhrasesOnly(benchmark::State& state) {
  run(state, [](const std::string& t) { return quality::is_refusal(t, "stop", quality::phrase_refusal_config()); });
}
void BM_DefaultPhrasesOrModel(benchmark::State& state) {
  run(state, [](const std::string& t) { return quality::is_refusal(t, "stop"); });
}
void BM_AssertionModel(benchmark::State& state) {
  run(state, [](const std::string& t) { return quality::is_refusal(t, "stop", quality::assertion_refusal_config()); });
}
void BM_Score(benchmark::State& state) {
  run(state, [](const std::string& t) { return quality::refusal_score(t, "stop") > 0.5; });
}

BENCHMARK(BM_PhrasesOnly);
BENCHMARK(BM_DefaultPhrasesOrModel);
BENCHMARK(BM_AssertionModel);
BENCHMARK(BM_Score);

}  // namespace

BENCHMARK_MAIN();
