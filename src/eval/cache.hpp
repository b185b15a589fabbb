// eval/cache.hpp: answers already obtained, keyed by (release id, case hash, repeat index),
// in DATA_DIR/eval-cache.db (SQLite, WAL). A release is immutable (model, prompt, params), so
// its answer to the same request can be reused: an unchanged baseline is not re-run.
// llm-rubric verdicts are cached the same way under "judge:<route>".
#pragma once
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace sluice::eval {

class Cache {
 public:
  struct Entry {
    std::string release, key;
    int rep = 0;
    std::string value;
  };
  static std::unique_ptr<Cache> open(const std::string& path, std::string& error);
  ~Cache();
  std::optional<std::string> get(const std::string& release, const std::string& key, int rep);
  // One transaction; errors are reported, never fatal (a cache is an optimisation).
  std::string put(const std::vector<Entry>& entries);

 private:
  Cache() = default;
  std::mutex mu_;
  sqlite3* db_ = nullptr;
};

}  // namespace sluice::eval
