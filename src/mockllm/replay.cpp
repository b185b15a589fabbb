#include "mockllm/replay.hpp"

#include <simdjson.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/files.hpp"
#include "core/strings.hpp"

namespace sluice::mockllm {

namespace {
bool read_file(const std::string& path, std::string& out) {
  auto content = sluice::read_file(path);
  if (content) out = std::move(*content);
  return content.has_value();
}
}  // namespace

void ReplayStore::index() {
  for (const auto& [k, v] : answers_) keys_.push_back(&k);
  std::sort(keys_.begin(), keys_.end(), [](const std::string* a, const std::string* b) {
    return a->size() != b->size() ? a->size() > b->size() : *a < *b;
  });
}

std::shared_ptr<const ReplayStore> ReplayStore::load_gsm8k(const std::string& path, const std::string& version,
                                                         std::string& error) {
  std::string text;
  if (!read_file(path, text)) {
    error = "cannot read " + path;
    return nullptr;
  }
  auto store = std::make_shared<ReplayStore>();
  simdjson::dom::parser parser;
  size_t line_no = 0;
  for (std::string_view line : split(text, '\n')) {
    ++line_no;
    if (trim(line).empty()) continue;
    simdjson::dom::element doc;
    if (parser.parse(line.data(), line.size()).get(doc)) {
      error = path + ":" + std::to_string(line_no) + ": not JSON";
      return nullptr;
    }
    std::string_view q, sol;
    if (doc["question"].get_string().get(q) || doc[version]["solution"].get_string().get(sol)) {
      error = path + ":" + std::to_string(line_no) + ": no question or no '" + version + ".solution'";
      return nullptr;
    }
    store->answers_.emplace(std::string(trim(q)), std::string(sol));
  }
  store->index();
  return store;
}

std::shared_ptr<const ReplayStore> ReplayStore::load_xstest(const std::string& path, std::string& error) {
  std::string text;
  if (!read_file(path, text)) {
    error = "cannot read " + path;
    return nullptr;
  }
  auto rows = parse_csv(text);
  if (rows.empty()) {
    error = path + ": empty";
    return nullptr;
  }
  int prompt_col = -1, completion_col = -1;
  for (size_t i = 0; i < rows[0].size(); ++i) {
    if (rows[0][i] == "prompt") prompt_col = static_cast<int>(i);
    if (rows[0][i] == "completion") completion_col = static_cast<int>(i);
  }
  if (prompt_col < 0 || completion_col < 0) {
    error = path + ": needs 'prompt' and 'completion' columns";
    return nullptr;
  }
  auto store = std::make_shared<ReplayStore>();
  for (size_t r = 1; r < rows.size(); ++r) {
    const auto& row = rows[r];
    if (row.size() <= static_cast<size_t>(std::max(prompt_col, completion_col))) continue;
    store->answers_.emplace(std::string(trim(row[prompt_col])), row[completion_col]);
  }
  store->index();
  return store;
}

std::optional<std::string_view> ReplayStore::find(std::string_view prompt) const {
  prompt = trim(prompt);
  if (auto it = answers_.find(std::string(prompt)); it != answers_.end()) return it->second;
  for (const std::string* k : keys_) {
    if (k->size() <= prompt.size() && prompt.find(*k) != std::string_view::npos) return answers_.at(*k);
  }
  return std::nullopt;
}

}  // namespace sluice::mockllm
