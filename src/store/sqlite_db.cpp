// store/sqlite_db.cpp: the embedded backend. WAL journal, synchronous=FULL, a busy timeout
// for the CLI writing while a gateway runs; BEGIN IMMEDIATE takes the write lock up front.
#include <sqlite3.h>

#include <stdexcept>

#include "store/db.hpp"
#include "store/store.hpp"

namespace sluice::store {

namespace {

class SqliteQuery final : public Query {
 public:
  SqliteQuery(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK)
      throw std::runtime_error(std::string("sqlite prepare: ") + sqlite3_errmsg(db));
  }
  ~SqliteQuery() override { sqlite3_finalize(s_); }
  void bind_text(int i, const std::string& v) override {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void bind_blob(int i, const std::string& v) override {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void bind_int(int i, int64_t v) override { sqlite3_bind_int64(s_, i, v); }
  void bind_double(int i, double v) override { sqlite3_bind_double(s_, i, v); }
  void bind_null(int i) override { sqlite3_bind_null(s_, i); }
  void reset() override { sqlite3_reset(s_); }
  bool step() override {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw std::runtime_error(std::string("sqlite: ") + sqlite3_errmsg(db_));
  }
  std::string text(int col) const override {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, col))) : std::string();
  }
  std::string blob(int col) const override {
    auto* p = static_cast<const char*>(sqlite3_column_blob(s_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, col))) : std::string();
  }
  int64_t integer(int col) const override { return sqlite3_column_int64(s_, col); }
  double real(int col) const override { return sqlite3_column_double(s_, col); }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

class SqliteDb final : public Db {
 public:
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  ~SqliteDb() override { sqlite3_close(db_); }
  std::unique_ptr<Query> prepare(const char* sql) override { return std::make_unique<SqliteQuery>(db_, sql); }
  void exec(const char* sql) override {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : "unknown";
      sqlite3_free(err);
      throw std::runtime_error("sqlite: " + m);
    }
  }
  void begin() override { exec("BEGIN IMMEDIATE"); }
  // A change the snapshot shows bumps change_seq (migration 010) inside the transaction, so
  // other processes tell it from bookkeeping writes. A gap in the sequence means another
  // process committed a change this one has not looked at yet: it counts as external.
  void commit(bool counts) override {
    if (counts && has_seq_) {
      SqliteQuery q(db_, "UPDATE change_seq SET seq = seq + 1 WHERE id = 1 RETURNING seq");
      if (q.step()) {
        const int64_t seq = q.integer(0);
        if (seq_known_ && seq != last_seq_ + 1) ++ext_;
        last_seq_ = seq;
        seq_known_ = true;
      }
    }
    exec("COMMIT");
  }
  void rollback() override { exec("ROLLBACK"); }
  int64_t changes() override { return sqlite3_changes(db_); }
  // PRAGMA data_version changes when another connection commits (costs microseconds); only
  // then is change_seq read, and only a counted change moves the version.
  uint64_t external_version() override {
    SqliteQuery q(db_, "PRAGMA data_version");
    q.step();
    const int64_t dv = q.integer(0);
    if (dv == data_version_) return ext_;
    data_version_ = dv;
    if (!has_seq_) {
      has_seq_ = has_table("change_seq");
      if (!has_seq_) return ++ext_;  // an older schema: every commit counts
    }
    SqliteQuery s(db_, "SELECT seq FROM change_seq WHERE id = 1");
    if (s.step()) {
      const int64_t seq = s.integer(0);
      if (!seq_known_ || seq != last_seq_) ++ext_;
      last_seq_ = seq;
      seq_known_ = true;
    }
    return ext_;
  }
  // After migrations: whether change_seq exists yet.
  void schema_ready() override { has_seq_ = has_table("change_seq"); }
  bool connected() override { return true; }
  const std::vector<Migration>& migrations() override { return store::migrations(); }

 private:
  bool has_table(const char* name) {
    SqliteQuery q(db_, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?");
    q.bind_text(1, name);
    return q.step();
  }
  sqlite3* db_;
  bool has_seq_ = false, seq_known_ = false;
  int64_t data_version_ = -1, last_seq_ = 0;
  uint64_t ext_ = 0;
};

}  // namespace

std::unique_ptr<Store> open_sqlite(const std::string& path, std::string& error) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
      SQLITE_OK) {
    error = "cannot open " + path + ": " + (db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return nullptr;
  }
  sqlite3_busy_timeout(db, 5000);
  auto conn = std::make_unique<SqliteDb>(db);
  try {
    conn->exec("PRAGMA journal_mode=WAL");
    conn->exec("PRAGMA synchronous=FULL");
    conn->exec("PRAGMA foreign_keys=ON");
  } catch (const std::exception& e) {
    error = path + ": " + e.what();
    return nullptr;
  }
  return open_sql_store(std::move(conn), path, error);
}

}  // namespace sluice::store
