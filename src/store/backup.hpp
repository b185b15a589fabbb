// store/backup.hpp: online backup and restore of the SQLite store (`sluice store backup`,
// `sluice store restore`). Works on the database file with SQLite directly, beside any
// process that has the store open: a running gateway keeps serving and writing.
//
// The copy is `VACUUM INTO` on its own connection: one read transaction, so the file is the
// store exactly as it was when that transaction began. In WAL mode a reader never blocks a
// writer, so the gateway's commits go on during the copy. (The page-by-page backup API in
// small batches would have to restart from the first page whenever another connection
// commits between two batches: under a gateway that writes every second it may never end.)
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace sluice::store {

// What a backup (or a restored store) holds, as verified.
struct BackupSummary {
  std::string path;
  int64_t bytes = 0;
  int64_t schema_version = 0;  // highest row of schema_migrations
  std::string sha256;          // of the file
  std::vector<std::pair<std::string, int64_t>> counts;  // ("releases", 12), ... (tables present only)
  int64_t elapsed_ms = 0;
};

struct BackupOptions {
  // Test hook: called (on the backup's thread, inside its read transaction) every hundred
  // SQLite instructions of the copy. Empty in production.
  std::function<void()> on_progress;
};

// The schema version this binary knows (its highest migration).
int64_t known_schema_version();

// Copies the store at `db_path` into `dest` (which must not exist), syncs it, writes
// `dest.sha256` (sha256sum's format) and verifies the copy. Error text, or "" on success.
std::string backup_sqlite(const std::string& db_path, const std::string& dest, const BackupOptions& o,
                          BackupSummary& out);

// Checks a backup file: its `.sha256` when present, SQLite's integrity_check, that it is a
// sluice store, and that its schema is not newer than this binary's. Error text or "".
std::string verify_sqlite_backup(const std::string& file, BackupSummary& out);

// Restores a verified backup as `data_dir`/sluice.db. `data_dir` must be missing or empty
// unless `force` (then its sluice.db and WAL files are replaced; stop every gateway using it
// first). The restored file is verified again. Error text or "".
std::string restore_sqlite(const std::string& backup_file, const std::string& data_dir, bool force,
                           BackupSummary& out);

// Human-readable lines: path, size, schema version, checksum, counts.
std::string summary_text(const BackupSummary& s);

}  // namespace sluice::store
