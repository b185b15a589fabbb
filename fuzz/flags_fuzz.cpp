// fuzz/flags_fuzz.cpp: flag files (flagd's format, JSON or YAML, from operators and the
// control plane) and the evaluation of every flag they hold.
// Invariants: no crash; a refusal says why; every flag evaluates for a few fixed contexts,
// with the same answers whatever order the evaluations come in; a file's export parses
// back to the same flags.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "flags/flagd.hpp"

namespace {

using namespace sluice::flags;

const std::vector<Value>& contexts() {
  static const std::vector<Value> all = [] {
    std::vector<Value> v;
    for (const char* text : {
             "{}",
             R"({"targetingKey": "user-1", "email": "admin@example.com", "version": "1.2.3-beta.1", "age": 30,
                 "plan": "pro", "tags": ["beta", 1, null], "items": [1, 2.5, "3"], "user": {"id": 7, "tier": "pro"}})",
             R"({"targetingKey": "", "email": 5, "version": "v2", "age": "abc", "plan": null, "tags": "beta",
                 "items": {"length": 2}, "user": [], "$flagd": {"flagKey": "spoofed"}})",
             "{\"targetingKey\": \"\xF0\x9F\x98\x80\", \"s\": \"\xEF\xBD\xB6\", \"x\": -0.5, \"y\": 1e21, \"n\": [[[]]]}",
         }) {
      std::string error;
      v.push_back(*parse_json(text, error));
    }
    return v;
  }();
  return all;
}

std::string answer(const Evaluation& e) {
  return std::string(reason_name(e.reason)) + '|' + e.variant + '|' + (e.has_value ? to_json(e.value) : "") + '|' +
         std::string(error_name(e.error));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string error;
  auto file = parse_flag_file(in, error);
  if (!file) {
    if (error.empty()) std::abort();
    return 0;
  }
  const auto& ctxs = contexts();
  const auto& flags = file->flags;
  constexpr int64_t kNow = 1750000000;
  // Every flag for one context, then one flag for every context: the same answers.
  std::vector<std::string> first;
  for (const auto& ctx : ctxs)
    for (const auto& f : flags) first.push_back(answer(evaluate(f, ctx, kNow)));
  for (size_t i = 0; i < flags.size(); ++i)
    for (size_t c = 0; c < ctxs.size(); ++c)
      if (answer(evaluate(flags[i], ctxs[c], kNow)) != first[c * flags.size() + i]) std::abort();

  std::vector<const Flag*> ptrs;
  for (const auto& f : flags) ptrs.push_back(&f);
  auto again = parse_flag_file(flag_file_json(ptrs, file->metadata), error);
  if (!again || again->flags.size() != flags.size()) std::abort();
  for (size_t i = 0; i < flags.size(); ++i)
    if (again->flags[i].key != flags[i].key || again->flags[i].json() != flags[i].json()) std::abort();
  return 0;
}
