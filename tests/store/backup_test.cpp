// Online backup and restore of the SQLite store (store/backup.hpp): a backup taken while a
// writer commits holds everything committed before it began, restores into a fresh data
// directory that accepts writes, and a damaged or foreign backup is refused.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "store/backup.hpp"
#include "store/store.hpp"

namespace sluice::store {

namespace fs = std::filesystem;

namespace {

std::unique_ptr<Store> open_at(const std::string& dir) {
  std::string err;
  auto s = open_sqlite(dir + "/sluice.db", err);
  EXPECT_TRUE(s) << err;
  return s;
}

ReleaseRecord rel(const std::string& id, const std::string& route) {
  ReleaseRecord r;
  r.id = id;
  r.full_hash = id + "-full";
  r.route = route;
  r.tuple = "{\"route\":\"" + route + "\",\"id\":\"" + id + "\"}";
  r.created_by = "writer";
  return r;
}

// What a writer does, one iteration: a release promoted, a canary's state, an audit entry;
// now and then a whole rollout, a flag and a tenant.
void write_step(Store& s, int i, RolloutRecord& canary) {
  bool created = false;
  const std::string route = "r" + std::to_string(i % 3);
  const std::string id = "rel_w" + std::to_string(i);
  ASSERT_TRUE(s.create_release(rel(id, route), {{"blob_" + id, "prompt of " + id}}, created).ok());
  ASSERT_TRUE(s.promote(route, id, "writer", "step " + std::to_string(i)).ok());
  canary.state = "{\"step\":" + std::to_string(i) + "}";
  // The canary's step and its event commit together; its evidence is written beside them.
  const std::vector<RolloutEvent> events{{0, canary.id, 0, "step", std::to_string(i)}};
  ASSERT_TRUE(s.update_rollout(canary, false, nullptr, nullptr, &events).ok());
  s.put_rollout_evidence(canary.id, "replica-a", "{\"n\":" + std::to_string(i) + "}", 1000 + i);
  s.append_audit({0, 0, "writer", "test.step", route, "", std::to_string(i), "", "ok"});
  if (i % 4 == 0) {
    const std::string side = "side" + std::to_string(i), n = std::to_string(i);
    ASSERT_TRUE(s.create_release(rel("rel_s" + n, side), {}, created).ok());
    ASSERT_TRUE(s.create_release(rel("rel_c" + n, side), {}, created).ok());
    ASSERT_TRUE(s.promote(side, "rel_s" + n, "writer", "").ok());
    RolloutRecord r;
    r.id = "ro_" + n;
    r.route = side;
    r.stable_release = "rel_s" + n;
    r.candidate_release = "rel_c" + n;
    r.spec = "{}";
    r.state = "{}";
    r.created_by = "writer";
    ASSERT_TRUE(s.create_rollout(r, "side rollout").ok());
    auto got = s.get_rollout(r.id);
    ASSERT_TRUE(got);
    got->status = "completed";
    ASSERT_TRUE(s.update_rollout(*got, true, nullptr).ok());
  }
  if (i % 5 == 0) {
    const std::string k = "f" + std::to_string(i);
    AuditEntry a{0, 0, "writer", "flag.set", k, "", "{}", "", "ok"};
    ASSERT_TRUE(s.write_flags({{k, "{\"v\":" + std::to_string(i) + "}", "writer"}}, {}, {a}).ok());
    ASSERT_TRUE(s.put_tenant({"t" + std::to_string(i), "{\"rpm\":" + std::to_string(i) + "}", "writer", 0, 0}, true, "")
                    .ok());
  }
}

// Everything the test compares, read through the Store interface.
struct Contents {
  std::map<std::string, ReleaseRecord> releases;
  std::map<std::string, std::vector<RouteChange>> history;
  std::map<std::string, RouteRecord> routes;
  std::map<std::string, RolloutRecord> rollouts;
  std::map<int64_t, AuditEntry> audit;
  std::map<std::string, FlagRecord> flags;
  std::map<std::string, TenantRecord> tenants;
  std::vector<RolloutEvent> canary_events;
  std::vector<std::pair<std::string, std::string>> canary_evidence;
};

Contents read_all(Store& s) {
  Contents c;
  for (auto& r : s.list_releases()) c.releases[r.id] = r;
  for (auto& r : s.list_routes()) {
    c.history[r.name] = s.route_history(r.name);
    c.routes[r.name] = r;
  }
  for (auto& r : s.list_rollouts("", false)) c.rollouts[r.id] = r;
  for (auto& a : s.list_audit(1000000)) c.audit[a.seq] = a;
  for (auto& f : s.list_flags()) c.flags[f.key] = f;
  for (auto& t : s.list_tenants()) c.tenants[t.name] = t;
  c.canary_events = s.rollout_events("ro_canary", 0);
  c.canary_evidence = s.list_rollout_evidence("ro_canary");
  return c;
}

bool same(const ReleaseRecord& a, const ReleaseRecord& b) {
  return a.id == b.id && a.full_hash == b.full_hash && a.route == b.route && a.tuple == b.tuple &&
         a.created_by == b.created_by && a.created_at == b.created_at;
}
bool same(const AuditEntry& a, const AuditEntry& b) {
  return a.seq == b.seq && a.at == b.at && a.actor == b.actor && a.action == b.action && a.target == b.target &&
         a.before == b.before && a.after == b.after && a.reason == b.reason && a.outcome == b.outcome;
}
bool same(const RouteChange& a, const RouteChange& b) {
  return a.seq == b.seq && a.route == b.route && a.release == b.release && a.previous == b.previous &&
         a.action == b.action && a.at == b.at;
}

class StoreBackup : public ::testing::Test {
 protected:
  void SetUp() override {
    root = (fs::temp_directory_path() / ("sluice-backup-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(root);
    fs::create_directories(root + "/src");
  }
  void TearDown() override { fs::remove_all(root); }

  // A source store with some of everything, closed again.
  void seed(int n) {
    auto s = open_at(root + "/src");
    RolloutRecord canary = start_canary(*s);
    for (int i = 0; i < n; ++i) write_step(*s, i, canary);
  }
  static RolloutRecord start_canary(Store& s) {
    bool created = false;
    EXPECT_TRUE(s.create_release(rel("rel_stable", "canary"), {}, created).ok());
    EXPECT_TRUE(s.create_release(rel("rel_cand", "canary"), {}, created).ok());
    EXPECT_TRUE(s.promote("canary", "rel_stable", "writer", "").ok());
    RolloutRecord r;
    r.id = "ro_canary";
    r.route = "canary";
    r.stable_release = "rel_stable";
    r.candidate_release = "rel_cand";
    r.spec = "{}";
    r.state = "{}";
    r.created_by = "writer";
    EXPECT_TRUE(s.create_rollout(r, "").ok());
    return *s.get_rollout("ro_canary");
  }

  std::string root;
};

}  // namespace

TEST_F(StoreBackup, BackupUnderWritesRestoresEverythingCommittedBeforeIt) {
  auto writer_store = open_at(root + "/src");
  RolloutRecord canary = start_canary(*writer_store);
  const RolloutRecord canary_at_start = canary;
  std::atomic<int> done{0};
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop.load(); ++i) {
      write_step(*writer_store, i, canary);
      if (::testing::Test::HasFatalFailure()) return;
      done.fetch_add(1);
    }
  });
  // A bounded wait on progress (never a timing assertion): fails rather than hangs.
  auto wait_for = [&](int n) {
    for (int t = 0; t < 30000 && done.load() < n; ++t) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return done.load() >= n;
  };
  ASSERT_TRUE(wait_for(25));

  // Everything read here was committed before the backup began.
  auto reader = open_at(root + "/src");
  const Contents before = read_all(*reader);
  reader.reset();

  // Inside the backup's read transaction, wait for the writer to commit more: proof that
  // the backup does not hold writers off.
  int writes_during_backup = -1;
  BackupOptions o;
  o.on_progress = [&] {
    if (writes_during_backup >= 0) return;
    const int at_start = done.load();
    wait_for(at_start + 3);
    writes_during_backup = done.load() - at_start;
  };
  BackupSummary made;
  const std::string file = root + "/sluice.backup";
  const std::string err = backup_sqlite(root + "/src/sluice.db", file, o, made);
  stop = true;
  writer.join();
  ASSERT_EQ(err, "");
  EXPECT_GE(writes_during_backup, 3) << "the writer must keep committing while the backup runs";
  EXPECT_EQ(made.schema_version, known_schema_version());
  EXPECT_TRUE(fs::exists(file + ".sha256"));
  const Contents after = read_all(*writer_store);

  BackupSummary restored;
  ASSERT_EQ(restore_sqlite(file, root + "/fresh", false, restored), "");
  auto r = open_at(root + "/fresh");
  ASSERT_TRUE(r);
  const Contents got = read_all(*r);

  for (const auto& [id, want] : before.releases) {
    auto it = got.releases.find(id);
    ASSERT_TRUE(it != got.releases.end()) << "release " << id << " lost";
    EXPECT_TRUE(same(it->second, want)) << id;
    if (id.rfind("rel_w", 0) == 0) {
      EXPECT_EQ(r->get_blob("blob_" + id).value_or(""), "prompt of " + id);
    }
  }
  for (const auto& [seq, want] : before.audit) {
    auto it = got.audit.find(seq);
    ASSERT_TRUE(it != got.audit.end()) << "audit entry " << seq << " lost";
    EXPECT_TRUE(same(it->second, want)) << "audit entry " << seq;
  }
  // The backup is one moment of the source: each restored entry is the source's own.
  for (const auto& [seq, e] : got.audit) {
    auto it = after.audit.find(seq);
    ASSERT_TRUE(it != after.audit.end());
    EXPECT_TRUE(same(it->second, e)) << "audit entry " << seq;
  }
  for (const auto& [route, hist] : before.history) {
    const auto& restored_hist = got.history.at(route);
    ASSERT_GE(restored_hist.size(), hist.size()) << route;
    for (size_t i = 0; i < hist.size(); ++i) EXPECT_TRUE(same(restored_hist[i], hist[i])) << route << " #" << i;
    EXPECT_EQ(got.routes.at(route).stable_release, restored_hist.back().release) << route;
  }
  for (const auto& [id, want] : before.rollouts) {
    auto it = got.rollouts.find(id);
    ASSERT_TRUE(it != got.rollouts.end()) << "rollout " << id << " lost";
    EXPECT_GE(it->second.version, want.version) << id;
    EXPECT_EQ(it->second.candidate_release, want.candidate_release);
    if (it->second.version == want.version) {
      EXPECT_EQ(it->second.state, want.state) << id;
    }
  }
  // The canary's events: the source's own, at least those before the backup, and exactly one
  // per restored version (a step and its event were committed together).
  const RolloutRecord& canary_back = got.rollouts.at("ro_canary");
  ASSERT_GE(got.canary_events.size(), before.canary_events.size());
  ASSERT_LE(got.canary_events.size(), after.canary_events.size());
  for (size_t i = 0; i < got.canary_events.size(); ++i) {
    EXPECT_EQ(got.canary_events[i].seq, after.canary_events[i].seq);
    EXPECT_EQ(got.canary_events[i].detail, after.canary_events[i].detail);
  }
  EXPECT_EQ(static_cast<int64_t>(got.canary_events.size()), canary_back.version - canary_at_start.version);
  ASSERT_EQ(got.canary_evidence.size(), 1u);
  // Written after its step's transaction: the step's own evidence, or the one before.
  const std::string n_last = std::to_string(got.canary_events.size() - 1);
  const std::string n_prev = std::to_string(got.canary_events.size() - 2);
  EXPECT_TRUE(got.canary_evidence[0].second == "{\"n\":" + n_last + "}" ||
              got.canary_evidence[0].second == "{\"n\":" + n_prev + "}")
      << got.canary_evidence[0].second << " with " << got.canary_events.size() << " events";
  for (const auto& [k, want] : before.flags) {
    ASSERT_TRUE(got.flags.count(k)) << "flag " << k << " lost";
    EXPECT_EQ(got.flags.at(k).definition, want.definition);
  }
  for (const auto& [n, want] : before.tenants) {
    ASSERT_TRUE(got.tenants.count(n)) << "tenant " << n << " lost";
    EXPECT_EQ(got.tenants.at(n).spec, want.spec);
  }
  // The summary counts what the restored store holds.
  std::map<std::string, int64_t> counts(restored.counts.begin(), restored.counts.end());
  EXPECT_EQ(counts["releases"], static_cast<int64_t>(got.releases.size()));
  EXPECT_EQ(counts["rollouts"], static_cast<int64_t>(got.rollouts.size()));
  EXPECT_EQ(counts["audit entries"], static_cast<int64_t>(got.audit.size()));

  // The restored store takes new writes, continuing its sequences.
  bool created = false;
  ASSERT_TRUE(r->create_release(rel("rel_after", "r0"), {}, created).ok());
  EXPECT_TRUE(created);
  ASSERT_TRUE(r->promote("r0", "rel_after", "ops", "after restore").ok());
  auto newest = r->list_audit(1);
  ASSERT_EQ(newest.size(), 1u);
  EXPECT_EQ(newest[0].action, "route.promote");
  EXPECT_GT(newest[0].seq, got.audit.rbegin()->first);
}

TEST_F(StoreBackup, DamagedForeignOrNewerBackupsAreRefused) {
  seed(12);
  const std::string file = root + "/good.backup";
  BackupSummary s;
  ASSERT_EQ(backup_sqlite(root + "/src/sluice.db", file, {}, s), "");
  EXPECT_NE(backup_sqlite(root + "/src/sluice.db", file, {}, s), "") << "an existing file is never overwritten";
  EXPECT_NE(backup_sqlite(root + "/nowhere/sluice.db", root + "/x.backup", {}, s), "");
  ASSERT_EQ(verify_sqlite_backup(file, s), "");

  std::string bytes;
  {
    std::ifstream in(file, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_GT(bytes.size(), 8192u);
  auto write = [&](const std::string& path, const std::string& content, bool with_sum) {
    std::ofstream(path, std::ios::binary) << content;
    if (with_sum) fs::copy_file(file + ".sha256", path + ".sha256", fs::copy_options::overwrite_existing);
  };
  auto refused = [&](const std::string& path, const std::string& why) {
    BackupSummary out;
    const std::string dir = root + "/restore-" + fs::path(path).filename().string();
    std::string err = restore_sqlite(path, dir, false, out);
    EXPECT_NE(err.find(why), std::string::npos) << path << ": " << err;
    EXPECT_FALSE(fs::exists(dir + "/sluice.db")) << path << " must not be restored";
  };

  // One byte changed in the middle: the checksum file catches it.
  std::string flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x5a;
  write(root + "/flipped.backup", flipped, true);
  refused(root + "/flipped.backup", "does not match");
  // Truncated with its checksum file, and truncated alone: SQLite's integrity check.
  write(root + "/cut.backup", bytes.substr(0, bytes.size() / 2), true);
  refused(root + "/cut.backup", "does not match");
  write(root + "/cut-alone.backup", bytes.substr(0, bytes.size() / 2), false);
  refused(root + "/cut-alone.backup", "refused");
  write(root + "/junk.backup", std::string(bytes.size(), 'x'), false);
  refused(root + "/junk.backup", "not a readable SQLite database");
  refused(root + "/missing.backup", "no backup file");

  // A SQLite file that is no sluice store, and a store from a newer sluice.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((root + "/other.backup").c_str(), &db), SQLITE_OK);
    sqlite3_exec(db, "CREATE TABLE t(x)", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }
  refused(root + "/other.backup", "not a sluice store");
  fs::copy_file(file, root + "/newer.backup");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((root + "/newer.backup").c_str(), &db), SQLITE_OK);
    const std::string sql = "INSERT INTO schema_migrations(version, name, applied_at) VALUES (" +
                            std::to_string(known_schema_version() + 1) + ", 'future', 0)";
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  refused(root + "/newer.backup", "newer than this binary");

  // Only into a fresh directory, unless forced; forcing drops the old store's WAL.
  fs::create_directories(root + "/used");
  std::ofstream(root + "/used/sluice.db-wal") << "stale";
  BackupSummary out;
  EXPECT_NE(restore_sqlite(file, root + "/used", false, out).find("not empty"), std::string::npos);
  EXPECT_FALSE(fs::exists(root + "/used/sluice.db"));
  ASSERT_EQ(restore_sqlite(file, root + "/used", true, out), "");
  EXPECT_FALSE(fs::exists(root + "/used/sluice.db-wal"));
  EXPECT_EQ(out.sha256, s.sha256);
  auto restored = open_at(root + "/used");
  ASSERT_TRUE(restored);
  EXPECT_EQ(restored->list_releases().size(), static_cast<size_t>(2 + 12 + 2 * 3));
}

}  // namespace sluice::store
