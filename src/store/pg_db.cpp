// store/pg_db.cpp: the PostgreSQL backend (libpq) for several replicas sharing one store.
//  - Write transactions take a transaction-scoped advisory lock: writers are serialized
//    across replicas exactly as SQLite serializes them, so the store's read-check-write
//    logic (one active rollout per route, compare-and-set versions) holds unchanged.
//  - Change feed: a commit a snapshot shows runs NOTIFY sluice_changes and bumps
//    change_seq. Replicas LISTEN; external_version() only drains what already arrived on
//    the socket (no round trip), and every few seconds reads change_seq as a safety net for
//    notifications lost with a broken connection.
//  - Every I/O has a bound: connect_timeout, TCP keepalives and tcp_user_timeout, and a
//    statement_timeout that also bounds waiting for the write lock.
//  - A broken connection is re-opened on the next call (at most once a second), so a
//    replica cut off from PostgreSQL keeps its last snapshot and catches up when it returns.
#include <libpq-fe.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>

#include "store/db.hpp"
#include "store/store.hpp"

namespace sluice::store {

namespace {

constexpr int64_t kWriteLockKey = 0x5111CE;  // the advisory lock of write transactions
constexpr const char* kChannel = "sluice_changes";
constexpr int64_t kSafetyPollMs = 2000;
constexpr int64_t kReconnectEveryMs = 1000;

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// `?` placeholders become $1, $2... (quoted text is left alone).
std::string number_placeholders(const char* sql) {
  std::string out;
  int n = 0;
  bool quoted = false;
  for (const char* p = sql; *p; ++p) {
    if (*p == '\'') quoted = !quoted;
    if (*p == '?' && !quoted) out += "$" + std::to_string(++n);
    else out += *p;
  }
  return out;
}

std::string result_error(PGconn* c, PGresult* r) {
  const char* m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  std::string s = m && *m ? m : PQerrorMessage(c);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return "postgres: " + s;
}

class PgDb;

class PgQuery final : public Query {
 public:
  PgQuery(PgDb& db, const char* sql) : db_(db), sql_(number_placeholders(sql)) {}
  ~PgQuery() override { PQclear(res_); }
  void bind_text(int i, const std::string& v) override { set(i, v, 25, 0); }  // text
  void bind_blob(int i, const std::string& v) override { set(i, v, 17, 1); }  // bytea, binary
  void bind_int(int i, int64_t v) override { set(i, std::to_string(v), 20, 0); }  // int8
  void bind_double(int i, double v) override {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    set(i, buf, 701, 0);  // float8
  }
  void bind_null(int i) override {
    grow(i);
    null_[i - 1] = true;
    types_[i - 1] = 0;
  }
  void reset() override {
    PQclear(res_);
    res_ = nullptr;
    row_ = -1;
  }
  bool step() override;
  std::string text(int col) const override {
    if (PQgetisnull(res_, row_, col)) return {};
    return std::string(PQgetvalue(res_, row_, col), static_cast<size_t>(PQgetlength(res_, row_, col)));
  }
  std::string blob(int col) const override {
    if (PQgetisnull(res_, row_, col)) return {};
    size_t n = 0;
    unsigned char* p = PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(res_, row_, col)), &n);
    if (!p) throw std::runtime_error("postgres: cannot decode bytea");
    std::string out(reinterpret_cast<char*>(p), n);
    PQfreemem(p);
    return out;
  }
  int64_t integer(int col) const override {
    return PQgetisnull(res_, row_, col) ? 0 : std::strtoll(PQgetvalue(res_, row_, col), nullptr, 10);
  }
  double real(int col) const override {
    return PQgetisnull(res_, row_, col) ? 0 : std::strtod(PQgetvalue(res_, row_, col), nullptr);
  }

 private:
  void grow(int i) {
    if (static_cast<size_t>(i) > vals_.size()) {
      vals_.resize(i);
      null_.resize(i, true);
      types_.resize(i, 0);
      formats_.resize(i, 0);
    }
  }
  void set(int i, std::string v, Oid type, int format) {
    grow(i);
    vals_[i - 1] = std::move(v);
    null_[i - 1] = false;
    types_[i - 1] = type;
    formats_[i - 1] = format;
  }
  PgDb& db_;
  std::string sql_;
  std::vector<std::string> vals_;
  std::vector<bool> null_;
  std::vector<Oid> types_;
  std::vector<int> formats_;
  PGresult* res_ = nullptr;
  int row_ = -1;
};

class PgDb final : public Db {
 public:
  explicit PgDb(std::string url) : url_(std::move(url)) {}
  ~PgDb() override {
    if (conn_) PQfinish(conn_);
  }

  // Opens the connection and LISTENs; "" or why not.
  std::string connect() {
    if (conn_) PQfinish(conn_);
    const char* keys[] = {"dbname", "connect_timeout", "keepalives_idle", "keepalives_interval", "keepalives_count",
                          "tcp_user_timeout", "application_name", "options", nullptr};
    const char* vals[] = {url_.c_str(), "3", "5", "2", "3", "10000", "sluice",
                          "-c statement_timeout=15000 -c idle_in_transaction_session_timeout=30000", nullptr};
    conn_ = PQconnectdbParams(keys, vals, /*expand_dbname=*/1);
    last_connect_ms_ = steady_ms();
    if (PQstatus(conn_) != CONNECTION_OK) {
      std::string e = PQerrorMessage(conn_);
      while (!e.empty() && (e.back() == '\n' || e.back() == ' ')) e.pop_back();
      return "cannot connect to PostgreSQL: " + e;
    }
    PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);  // NOTICEs of IF NOT EXISTS
    PGresult* r = PQexec(conn_, (std::string("LISTEN ") + kChannel).c_str());
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    std::string err = ok ? "" : result_error(conn_, r);
    PQclear(r);
    if (!ok) return err;
    pid_ = PQbackendPID(conn_);
    last_poll_ms_ = 0;  // read change_seq on the next check
    ++ext_;  // notifications may have been missed while disconnected: look again
    return "";
  }

  // Runs one statement; throws on failure. A broken connection is re-opened first when no
  // transaction is open (in one, the transaction is lost: the caller's call fails).
  PGresult* run(const std::string& sql, int n, const Oid* types, const char* const* vals, const int* lens,
                const int* formats) {
    ensure_connected();
    PGresult* r = PQexecParams(conn_, sql.c_str(), n, types, vals, lens, formats, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      std::string e = result_error(conn_, r);
      PQclear(r);
      throw std::runtime_error(e);
    }
    const char* t = PQcmdTuples(r);
    changes_ = t && *t ? std::atoll(t) : 0;
    return r;
  }

  std::unique_ptr<Query> prepare(const char* sql) override { return std::make_unique<PgQuery>(*this, sql); }
  void exec(const char* sql) override { PQclear(run_simple(sql)); }
  void begin() override {
    exec(("BEGIN; SELECT pg_advisory_xact_lock(" + std::to_string(kWriteLockKey) + ")").c_str());
    in_tx_ = true;
  }
  void commit(bool counts) override {
    if (counts) {
      PGresult* r = run_simple(("UPDATE change_seq SET seq = seq + 1 WHERE id = 1 RETURNING seq; NOTIFY " +
                                std::string(kChannel))
                                   .c_str());
      PQclear(r);
      ++own_commits_;
    }
    in_tx_ = false;
    exec("COMMIT");
  }
  void rollback() override {
    in_tx_ = false;
    if (conn_ && PQstatus(conn_) == CONNECTION_OK) {
      PGresult* r = PQexec(conn_, "ROLLBACK");
      PQclear(r);
    }
  }
  int64_t changes() override { return changes_; }

  uint64_t external_version() override {
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
      if (steady_ms() - last_connect_ms_ >= kReconnectEveryMs) connect();
      return ext_;
    }
    if (!PQconsumeInput(conn_)) return ext_;  // broken: reconnected on the next call
    while (PGnotify* n = PQnotifies(conn_)) {
      if (n->be_pid != pid_) {
        ++ext_;
        ++notified_;
      }
      PQfreemem(n);
    }
    if (!in_tx_ && steady_ms() - last_poll_ms_ >= kSafetyPollMs) safety_poll();
    return ext_;
  }

  bool connected() override { return conn_ && PQstatus(conn_) == CONNECTION_OK; }
  const std::vector<Migration>& migrations() override { return pg_migrations(); }

 private:
  PGresult* run_simple(const char* sql) {
    ensure_connected();
    PGresult* r = PQexec(conn_, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      std::string e = result_error(conn_, r);
      PQclear(r);
      throw std::runtime_error(e);
    }
    return r;
  }

  void ensure_connected() {
    if (conn_ && PQstatus(conn_) == CONNECTION_OK) return;
    if (in_tx_) throw std::runtime_error("postgres: connection lost inside a transaction");
    if (std::string e = connect(); !e.empty()) throw std::runtime_error(e);
  }

  // change_seq counts every shown commit: what it grew by beyond our own commits and the
  // notifications we received was missed; count it (the caller republishes).
  void safety_poll() {
    last_poll_ms_ = steady_ms();
    PGresult* r = PQexec(conn_, "SELECT seq FROM change_seq WHERE id = 1");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
      int64_t seq = std::atoll(PQgetvalue(r, 0, 0));
      if (seq_known_) {
        int64_t missed = seq - last_seq_ - own_commits_ - notified_;
        if (missed > 0) ext_ += static_cast<uint64_t>(missed);
      }
      seq_known_ = true;
      last_seq_ = seq;
      own_commits_ = notified_ = 0;
    }
    PQclear(r);
  }

  std::string url_;
  PGconn* conn_ = nullptr;
  int pid_ = 0;
  bool in_tx_ = false;
  int64_t changes_ = 0;
  uint64_t ext_ = 0;
  int64_t own_commits_ = 0, notified_ = 0, last_seq_ = 0;
  bool seq_known_ = false;
  int64_t last_poll_ms_ = 0, last_connect_ms_ = 0;
};

bool PgQuery::step() {
  if (!res_) {
    std::vector<const char*> v(vals_.size());
    std::vector<int> lens(vals_.size());
    for (size_t i = 0; i < vals_.size(); ++i) {
      v[i] = null_[i] ? nullptr : vals_[i].data();
      lens[i] = static_cast<int>(vals_[i].size());
    }
    res_ = db_.run(sql_, static_cast<int>(vals_.size()), types_.data(), v.data(), lens.data(), formats_.data());
    row_ = 0;
  } else {
    ++row_;
  }
  return row_ < PQntuples(res_);
}

}  // namespace

std::unique_ptr<Store> open_postgres(const std::string& url, std::string& error) {
  auto db = std::make_unique<PgDb>(url);
  if (std::string e = db->connect(); !e.empty()) {
    error = e;
    return nullptr;
  }
  return open_sql_store(std::move(db), "postgres", error);
}

}  // namespace sluice::store
