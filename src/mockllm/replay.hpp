// mockllm/replay.hpp: recorded real completions, looked up by prompt text.
//  - GSM8K: model_solutions.jsonl, one model version (e.g. 175b_verification)
//  - XSTest: completions_<model>.csv (prompt -> completion)
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/csv.hpp"

namespace sluice::mockllm {

class ReplayStore {
 public:
  static std::shared_ptr<const ReplayStore> load_gsm8k(const std::string& path, const std::string& version,
                                                      std::string& error);
  static std::shared_ptr<const ReplayStore> load_xstest(const std::string& path, std::string& error);

  // The recorded answer for a prompt: exact match of the text, else the first recorded
  // prompt contained in it (templates wrap the question in instructions).
  std::optional<std::string_view> find(std::string_view prompt) const;
  size_t size() const { return answers_.size(); }

 private:
  std::unordered_map<std::string, std::string> answers_;
  std::vector<const std::string*> keys_;  // longest first, for containment search
  void index();
};

using sluice::parse_csv;  // core/csv.hpp

}  // namespace sluice::mockllm
