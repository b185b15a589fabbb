// control/bundle.hpp: a release carried between environments (staging -> production) with
// its evidence. `sluice release export` writes a self-contained directory:
//
//   bundle.json        what is in it: format, release, route, the exporting environment, the
//                      sha256 of every other file, a digest of itself, an optional HMAC
//   release.json       the release record and its canonical tuple (whose hash is the id)
//   blobs/<sha256>     every file the tuple references, named by its hash
//   evals/<run>.json   the release's eval runs with their reports
//
// `sluice release import` verifies all of it before it writes anything: the digest of
// bundle.json, every listed file's hash, no file that is not listed, the tuple hashing to
// the release id, every blob the tuple references present. A one-byte change anywhere is
// refused, naming the file. The digest catches accidents and edits that did not recompute
// it; an HMAC key (SLUICE_BUNDLE_KEY on both sides) also catches a deliberate forgery.
// Imported eval runs keep their ids and become evidence of the exporting environment:
// they satisfy a route policy's `evidence_environment`, never the importing store's own
// eval gate.
#pragma once
#include <string>

#include "control/releases.hpp"
#include "store/store.hpp"

namespace sluice::control {

inline constexpr const char* kBundleFormat = "sluice-bundle/1";

struct ExportOptions {
  std::string release;      // id or unique prefix
  std::string out_dir;      // created; must be empty or absent
  std::string environment;  // the environment this store serves (required: it names the evidence)
  std::string actor;
  std::string key;          // HMAC-SHA256 key; empty: unsigned
};

struct ImportOptions {
  std::string dir;
  std::string actor;
  std::string key;                 // verify the signature with it (required when set)
  bool require_signature = false;  // refuse an unsigned bundle
};

// Writes the bundle; `text` says what was written.
Result export_release(store::Store& s, const ExportOptions& o);
// Checks the bundle without a store; `text` is a summary, `error` names the failing file.
Result verify_bundle(const ImportOptions& o);
// Verifies, then stores the release, its blobs and its eval runs (idempotent).
Result import_release(store::Store& s, const ImportOptions& o);

}  // namespace sluice::control
