// store/db.hpp: what the SQL store (sql_store.cpp) needs from a database, implemented by
// SQLite (sqlite_db.cpp) and PostgreSQL (pg_db.cpp). Statements use `?` placeholders; a
// backend that numbers them ($1...) rewrites them. Errors are thrown as std::runtime_error:
// this is control-plane code, and a store call is one transaction that either commits or not.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "store/migrations.hpp"

namespace sluice::store {

// One prepared statement: bind (1-based), then step() through its rows.
class Query {
 public:
  virtual ~Query() = default;
  virtual void bind_text(int i, const std::string& v) = 0;
  virtual void bind_blob(int i, const std::string& v) = 0;
  virtual void bind_int(int i, int64_t v) = 0;
  virtual void bind_double(int i, double v) = 0;
  virtual void bind_null(int i) = 0;
  virtual void reset() = 0;   // ready to run again with new bindings
  virtual bool step() = 0;    // runs on first call; true while a row is current
  virtual std::string text(int col) const = 0;
  virtual std::string blob(int col) const = 0;
  virtual int64_t integer(int col) const = 0;
  virtual double real(int col) const = 0;
};

class Db {
 public:
  virtual ~Db() = default;
  virtual std::unique_ptr<Query> prepare(const char* sql) = 0;
  virtual void exec(const char* sql) = 0;  // one or more statements without parameters
  // Write transactions are serialized across every connection and process (SQLite's write
  // lock, a PostgreSQL advisory lock): the store's read-check-write logic relies on it.
  virtual void begin() = 0;
  // `counts`: the change is one a snapshot shows; other processes are told about it.
  virtual void commit(bool counts) = 0;
  virtual void rollback() = 0;
  virtual int64_t changes() = 0;  // rows changed by the last statement
  // Grows when another connection commits a change (never blocks on the network).
  virtual uint64_t external_version() = 0;
  virtual bool connected() = 0;
  virtual const std::vector<Migration>& migrations() = 0;
  virtual void schema_ready() {}  // called once the migrations are applied
};

// The statement wrapper sql_store.cpp uses: chained binds over a backend's Query.
class Stmt {
 public:
  Stmt(Db* db, const char* sql) : q_(db->prepare(sql)) {}
  Stmt& bind(int i, const std::string& v) { return q_->bind_text(i, v), *this; }
  Stmt& bind_blob(int i, const std::string& v) { return q_->bind_blob(i, v), *this; }
  Stmt& bind(int i, int64_t v) { return q_->bind_int(i, v), *this; }
  Stmt& bind_double(int i, double v) { return q_->bind_double(i, v), *this; }
  Stmt& bind_null_if_empty(int i, const std::string& v) {
    if (v.empty()) return q_->bind_null(i), *this;
    return bind(i, v);
  }
  Stmt& reset() { return q_->reset(), *this; }
  bool step() { return q_->step(); }
  std::string text(int col) const { return q_->text(col); }
  std::string blob(int col) const { return q_->blob(col); }
  int64_t integer(int col) const { return q_->integer(col); }
  double real(int col) const { return q_->real(col); }

 private:
  std::unique_ptr<Query> q_;
};

// Migrates `db` and wraps it as a Store; nullptr and `error` (prefixed by `name`) if not.
class Store;
std::unique_ptr<Store> open_sql_store(std::unique_ptr<Db> db, const std::string& name, std::string& error);

const std::vector<Migration>& pg_migrations();

}  // namespace sluice::store
