// release/manifest.hpp: a release manifest (YAML) turned into the canonical tuple whose
// hash is the release id. Referenced files are embedded by content: the tuple holds their
// SHA-256, the store holds the bytes.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "release/canonical.hpp"

namespace sluice::release {

struct Blob {
  std::string path;     // as referenced (for humans)
  std::string sha256;   // hex
  std::string content;
};

struct Manifest {
  Value tuple;          // the canonical object that is hashed
  std::string route;
  std::string id;       // "rel_" + first 8 hex of full_hash
  std::string full_hash;
  std::vector<Blob> blobs;
  // Lineage, recorded but not part of the identity:
  std::string parent, git_commit;
};

// Reads and validates a manifest file; errors are "file:line:col: message".
std::optional<Manifest> load_manifest(const std::string& path, std::vector<std::string>& errors);

// The id for a canonical tuple.
std::string release_id_for(const std::string& canonical_json, std::string* full_hash = nullptr);

}  // namespace sluice::release
