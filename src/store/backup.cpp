// store/backup.cpp: online backup and restore of the SQLite store (see backup.hpp for why
// VACUUM INTO rather than the batched backup API).
#include "store/backup.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <system_error>

#include "store/migrations.hpp"

namespace sluice::store {

namespace fs = std::filesystem;

namespace {

// What the summary counts: (table, label). Tables an older schema lacks are left out.
constexpr std::pair<const char*, const char*> kCounted[] = {
    {"releases", "releases"},     {"routes", "routes"},   {"route_history", "route changes"},
    {"rollouts", "rollouts"},     {"audit", "audit entries"}, {"flags", "flags"},
    {"tenants", "tenants"},       {"api_keys", "api keys"},
};

struct DbCloser {
  void operator()(sqlite3* d) const { sqlite3_close_v2(d); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

struct StmtCloser {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtCloser>;

std::string db_error(sqlite3* db) { return db ? sqlite3_errmsg(db) : "out of memory"; }

// A URI for a file nobody writes while we read it: `immutable` skips locks and WAL files.
std::string immutable_uri(const std::string& path) {
  std::string u = "file:";
  for (unsigned char c : fs::absolute(path).string()) {
    if (c == '%' || c == '?' || c == '#' || c < 0x20 || c >= 0x7f) {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      u += buf;
    } else {
      u += static_cast<char>(c);
    }
  }
  return u + "?immutable=1";
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Streams the file through SHA-256 (a store may be larger than we want in memory).
std::string file_sha256(const std::string& path, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read " + path;
    return "";
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) {
    error = "read error on " + path;
    return "";
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &n);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

// fsync a file or a directory, so a backup or restore reported done survives a crash.
bool sync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return false;
  bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

std::string parent_dir(const std::string& path) {
  fs::path p = fs::absolute(path).parent_path();
  return p.empty() ? "." : p.string();
}

bool write_file_synced(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".partial";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!(out << content) || !out.flush()) return false;
  }
  if (!sync_path(tmp, false)) return false;
  std::error_code ec;
  fs::rename(tmp, path, ec);
  return !ec;
}

std::string human_bytes(int64_t b) {
  char buf[32];
  if (b >= (1 << 20)) std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / (1 << 20));
  else if (b >= 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(b) / 1024);
  else std::snprintf(buf, sizeof buf, "%lld bytes", static_cast<long long>(b));
  return buf;
}

// The checks of verify_sqlite_backup; `allow_newer` for a backup this binary only copied.
std::string verify_file(const std::string& file, bool allow_newer, BackupSummary& out) {
  out = BackupSummary{};
  out.path = file;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return "no backup file " + file;
  out.bytes = static_cast<int64_t>(fs::file_size(file, ec));
  std::string err;
  out.sha256 = file_sha256(file, err);
  if (!err.empty()) return err;
  if (std::ifstream sum(file + ".sha256"); sum) {
    std::string want;
    sum >> want;
    if (want != out.sha256)
      return file + " does not match " + file + ".sha256 (a corrupt or truncated copy): sha256 " + out.sha256 +
             ", expected " + want;
  }

  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(immutable_uri(file).c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) return "cannot open " + file + ": " + db_error(raw);

  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(raw, "PRAGMA integrity_check(20)", -1, &s, nullptr) != SQLITE_OK)
    return file + " is not a readable SQLite database: " + db_error(raw);
  StmtPtr check(s);
  std::string problems;
  int lines = 0;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    const char* t = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    std::string line = t ? t : "";
    if (line == "ok" && lines == 0) continue;
    if (lines++ < 5) problems += "\n  " + line;
  }
  if (rc != SQLITE_DONE) return file + " is not a readable SQLite database: " + db_error(raw);
  if (lines > 0) return file + " fails SQLite's integrity check:" + problems;

  if (sqlite3_prepare_v2(raw, "SELECT MAX(version) FROM schema_migrations", -1, &s, nullptr) != SQLITE_OK)
    return file + " is not a sluice store (no schema_migrations table)";
  StmtPtr ver(s);
  if (sqlite3_step(s) != SQLITE_ROW || sqlite3_column_type(s, 0) == SQLITE_NULL)
    return file + " is not a sluice store (no migration applied)";
  out.schema_version = sqlite3_column_int64(s, 0);
  if (!allow_newer && out.schema_version > known_schema_version())
    return file + " has schema version " + std::to_string(out.schema_version) + ", newer than this binary's " +
           std::to_string(known_schema_version()) + ": restore it with the sluice version that wrote it";

  for (const auto& [table, label] : kCounted) {
    const std::string sql = std::string("SELECT COUNT(*) FROM ") + table;
    if (sqlite3_prepare_v2(raw, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) continue;  // not in this schema
    StmtPtr count(s);
    if (sqlite3_step(s) == SQLITE_ROW) out.counts.emplace_back(label, sqlite3_column_int64(s, 0));
  }
  return "";
}

}  // namespace

int64_t known_schema_version() {
  int64_t v = 0;
  for (const Migration& m : migrations()) v = std::max<int64_t>(v, m.version);
  return v;
}

std::string backup_sqlite(const std::string& db_path, const std::string& dest, const BackupOptions& o,
                          BackupSummary& out) {
  const int64_t start = now_ms();
  std::error_code ec;
  if (!fs::is_regular_file(db_path, ec)) return "no store at " + db_path;
  if (fs::exists(dest, ec)) return dest + " already exists: choose a new file name";
  const std::string tmp = dest + ".partial";
  fs::remove(tmp, ec);  // a previous backup that did not finish

  sqlite3* raw = nullptr;
  // Read-write without CREATE: a WAL database needs its -shm, which a read-only handle may not create.
  int rc = sqlite3_open_v2(db_path.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) return "cannot open " + db_path + ": " + db_error(raw);
  sqlite3_busy_timeout(raw, 10000);
  if (o.on_progress) {
    sqlite3_progress_handler(
        raw, 100,
        [](void* p) {
          (*static_cast<const std::function<void()>*>(p))();
          return 0;
        },
        const_cast<std::function<void()>*>(&o.on_progress));
  }
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(raw, "VACUUM INTO ?", -1, &s, nullptr) != SQLITE_OK)
    return "backup of " + db_path + " failed: " + db_error(raw);
  StmtPtr vacuum(s);
  sqlite3_bind_text(s, 1, tmp.c_str(), -1, SQLITE_TRANSIENT);
  rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) {
    std::string e = "backup of " + db_path + " failed: " + db_error(raw);
    fs::remove(tmp, ec);
    return e;
  }
  vacuum.reset();
  db.reset();

  if (!sync_path(tmp, false)) {
    fs::remove(tmp, ec);
    return "cannot sync " + tmp;
  }
  fs::rename(tmp, dest, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return "cannot rename " + tmp + " to " + dest + ": " + ec.message();
  }
  sync_path(parent_dir(dest), true);

  // A copy that does not verify is no backup: remove it rather than leave it to be trusted.
  if (std::string err = verify_file(dest, true, out); !err.empty()) {
    fs::remove(dest, ec);
    return "the backup did not verify, removed: " + err;
  }
  const std::string name = fs::path(dest).filename().string();
  if (!write_file_synced(dest + ".sha256", out.sha256 + "  " + name + "\n")) return "cannot write " + dest + ".sha256";
  out.elapsed_ms = now_ms() - start;
  return "";
}

std::string verify_sqlite_backup(const std::string& file, BackupSummary& out) { return verify_file(file, false, out); }

std::string restore_sqlite(const std::string& backup_file, const std::string& data_dir, bool force,
                           BackupSummary& out) {
  const int64_t start = now_ms();
  BackupSummary source;
  if (std::string err = verify_file(backup_file, false, source); !err.empty()) return "refused: " + err;

  std::error_code ec;
  if (fs::exists(data_dir, ec)) {
    if (!fs::is_directory(data_dir, ec)) return "refused: " + data_dir + " is not a directory";
    if (!fs::is_empty(data_dir, ec) && !force)
      return "refused: " + data_dir + " is not empty (restore into a fresh data directory, or pass --force to "
             "replace its store after stopping every gateway that uses it)";
  }
  fs::create_directories(data_dir, ec);
  if (ec) return "cannot create " + data_dir + ": " + ec.message();

  const std::string db = (fs::path(data_dir) / "sluice.db").string();
  const std::string tmp = db + ".restoring";
  fs::copy_file(backup_file, tmp, fs::copy_options::overwrite_existing, ec);
  if (ec) return "cannot copy " + backup_file + " to " + tmp + ": " + ec.message();
  if (!sync_path(tmp, false)) {
    fs::remove(tmp, ec);
    return "cannot sync " + tmp;
  }
  // A WAL left by the replaced store would be replayed onto the restored one.
  for (const char* suffix : {"-wal", "-shm", "-journal"}) fs::remove(db + suffix, ec);
  fs::rename(tmp, db, ec);
  if (ec) return "cannot rename " + tmp + " to " + db + ": " + ec.message();
  sync_path(data_dir, true);

  if (std::string err = verify_file(db, false, out); !err.empty()) return "the restored store does not verify: " + err;
  if (out.sha256 != source.sha256) return "the restored store differs from " + backup_file + " (copy failed)";
  out.elapsed_ms = now_ms() - start;
  return "";
}

std::string summary_text(const BackupSummary& s) {
  std::string t = s.path + ": " + human_bytes(s.bytes) + ", schema version " + std::to_string(s.schema_version) +
                  " (this binary: " + std::to_string(known_schema_version()) + "), integrity ok\n";
  t += "sha256 " + s.sha256 + "\n";
  t += "holds";
  bool first = true;
  for (const auto& [label, n] : s.counts) {
    t += (first ? " " : ", ") + std::to_string(n) + " " + label;
    first = false;
  }
  t += "\n";
  if (s.elapsed_ms > 0) t += "took " + std::to_string(s.elapsed_ms) + " ms\n";
  return t;
}

}  // namespace sluice::store
