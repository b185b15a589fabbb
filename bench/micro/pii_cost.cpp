// bench/micro/pii_cost.cpp: what the PII and secret detectors (src/guard/) cost and find on
// real text: every XSTest prompt and answer (../shared/data/xstest). Prints ns per byte for
// all kinds and for each kind alone (median of 5 passes), and every match found, so its
// precision can be read off (docs/guardrails.md).
//
//   pii_cost DATA_DIR      (DATA_DIR = ../shared/data)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "core/csv.hpp"
#include "core/files.hpp"
#include "guard/pii.hpp"

using namespace sluice::guard;

int main(int argc, char** argv) {
  const std::string dir = std::string(argc > 1 ? argv[1] : "../shared/data") + "/xstest/";
  std::vector<std::string> texts;
  for (const char* f : {"prompts.csv", "completions_gpt4.csv", "completions_llama2orig.csv",
                        "completions_mistralguard.csv"}) {
    auto content = sluice::read_file(dir + f);
    if (!content) {
      std::fprintf(stderr, "cannot read %s%s\n", dir.c_str(), f);
      return 2;
    }
    auto rows = sluice::parse_csv(*content);
    for (size_t c = 0; !rows.empty() && c < rows[0].size(); ++c)
      if (rows[0][c] == "prompt" || rows[0][c] == "completion")
        for (size_t r = 1; r < rows.size(); ++r)
          if (c < rows[r].size() && !rows[r][c].empty()) texts.push_back(rows[r][c]);
  }
  size_t bytes = 0;
  for (const auto& t : texts) bytes += t.size();
  std::printf("%zu texts, %zu bytes\n\n| kinds | ns per byte (median of 5) | matches |\n|---|---:|---:|\n", texts.size(),
              bytes);
  for (int k = -1; k < kPiiKinds; ++k) {
    const PiiMask mask = k < 0 ? kAllPii : pii_bit(static_cast<PiiKind>(k));
    std::vector<double> runs;
    size_t found = 0;
    for (int rep = 0; rep < 5; ++rep) {
      found = 0;
      auto t0 = std::chrono::steady_clock::now();
      for (const auto& t : texts) found += find_pii(t, mask).size();
      runs.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() /
                     static_cast<double>(bytes));
    }
    std::sort(runs.begin(), runs.end());
    std::printf("| %s | %.1f | %zu |\n", k < 0 ? "all" : std::string(pii_label(static_cast<PiiKind>(k))).c_str(), runs[2],
                found);
  }
  std::printf("\nMatches (all kinds):\n");
  for (const auto& t : texts)
    for (const auto& m : find_pii(t))
      std::printf("- %s: %s\n", std::string(pii_label(m.kind)).c_str(), t.substr(m.begin, m.end - m.begin).c_str());
  return 0;
}
