// fuzz/answer_fuzz.cpp: what the gateway reads out of upstream answers for rollouts and
// evals: JSON Schema checks (the input is split into a schema and a document), structural
// JSON equality, final numbers, refusal detection and agreement.
// Invariants: no crash, bounded work; a document equals itself; a valid check has no error.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "quality/refusal.hpp"
#include "quality/text.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t cut = in.find('\n');
  std::string_view schema = cut == std::string_view::npos ? std::string_view() : in.substr(0, cut);
  std::string_view doc = cut == std::string_view::npos ? in : in.substr(cut + 1);
  auto check = sluice::quality::check_json(doc, schema);
  if (check.valid && !check.error.empty()) std::abort();
  if (auto eq = sluice::quality::json_equal(doc, doc); eq && !*eq) std::abort();
  (void)sluice::quality::final_number(in);
  (void)sluice::quality::is_refusal(in, "");
  auto a = sluice::quality::compare(schema, doc);
  if (a.token_set < 0 || a.token_set > 1) std::abort();
  if (sluice::quality::token_set_similarity(doc, doc) != 1.0) std::abort();
  return 0;
}
