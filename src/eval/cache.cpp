#include "eval/cache.hpp"

#include <sqlite3.h>

#include <ctime>

namespace sluice::eval {

std::unique_ptr<Cache> Cache::open(const std::string& path, std::string& error) {
  std::unique_ptr<Cache> c(new Cache());
  if (sqlite3_open_v2(path.c_str(), &c->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    error = "cannot open " + path + ": " + (c->db_ ? sqlite3_errmsg(c->db_) : "out of memory");
    return nullptr;
  }
  sqlite3_busy_timeout(c->db_, 5000);
  const char* ddl =
      "PRAGMA journal_mode=WAL;"
      "PRAGMA synchronous=NORMAL;"
      "CREATE TABLE IF NOT EXISTS answers ("
      "  release TEXT NOT NULL, case_hash TEXT NOT NULL, rep INTEGER NOT NULL,"
      "  value TEXT NOT NULL, created_at INTEGER NOT NULL,"
      "  PRIMARY KEY (release, case_hash, rep)) WITHOUT ROWID;";
  char* msg = nullptr;
  if (sqlite3_exec(c->db_, ddl, nullptr, nullptr, &msg) != SQLITE_OK) {
    error = "cannot initialise " + path + ": " + (msg ? msg : "?");
    sqlite3_free(msg);
    return nullptr;
  }
  return c;
}

Cache::~Cache() {
  if (db_) sqlite3_close_v2(db_);
}

std::optional<std::string> Cache::get(const std::string& release, const std::string& key, int rep) {
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT value FROM answers WHERE release=? AND case_hash=? AND rep=?", -1, &st,
                         nullptr) != SQLITE_OK)
    return std::nullopt;
  sqlite3_bind_text(st, 1, release.data(), static_cast<int>(release.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int(st, 3, rep);
  std::optional<std::string> out;
  if (sqlite3_step(st) == SQLITE_ROW) {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    out.emplace(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(st, 0)));
  }
  sqlite3_finalize(st);
  return out;
}

std::string Cache::put(const std::vector<Entry>& entries) {
  if (entries.empty()) return "";
  std::lock_guard<std::mutex> lock(mu_);
  std::string err;
  sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO answers(release, case_hash, rep, value, created_at) VALUES (?,?,?,?,?)",
                         -1, &st, nullptr) != SQLITE_OK) {
    err = sqlite3_errmsg(db_);
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return err;
  }
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  for (const auto& e : entries) {
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, e.release.data(), static_cast<int>(e.release.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, e.key.data(), static_cast<int>(e.key.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 3, e.rep);
    sqlite3_bind_text(st, 4, e.value.data(), static_cast<int>(e.value.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, now);
    if (sqlite3_step(st) != SQLITE_DONE && err.empty()) err = sqlite3_errmsg(db_);
  }
  sqlite3_finalize(st);
  if (sqlite3_exec(db_, err.empty() ? "COMMIT" : "ROLLBACK", nullptr, nullptr, nullptr) != SQLITE_OK && err.empty())
    err = sqlite3_errmsg(db_);
  return err;
}

}  // namespace sluice::eval
