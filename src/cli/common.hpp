// cli/common.hpp: what the store-facing subcommands share: --data-dir/--admin/--token/
// --actor handling, opening the store, calling a running gateway's admin API, printing.
#pragma once
#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "control/releases.hpp"
#include "store/store.hpp"

namespace sluice::cli {

struct Common {
  std::string data_dir = "./sluice-data";
  std::string store;  // --store: a postgres:// URL or SQLite path (default: $SLUICE_STORE_URL, then DATA_DIR/sluice.db)
  std::string actor;
  std::string admin_url;    // set: talk to a running gateway's admin API instead of the store
  std::string admin_token;  // bearer token for it (default: SLUICE_ADMIN_TOKEN, then DATA_DIR/admin.token)

  bool remote() const { return !admin_url.empty(); }
  std::string token() const;
};

// --data-dir, --actor, --admin, --token (SLUICE_ADMIN_URL sets --admin's default).
void add_common_options(CLI::App* c, Common& common);

// Calls the admin API; prints the JSON body (or its "text" member with text_only). 0 on 2xx, 1 otherwise.
int remote_call(const Common& c, const std::string& method, const std::string& path, const std::string& body = "",
                bool text_only = false);
std::string json_str(const std::string& s);
std::string default_actor();
std::unique_ptr<store::Store> open(const Common& c);
int print(const control::Result& r);
// "90s", "30m", "1h", "2d" (or "0") -> milliseconds; -1 if malformed.
int64_t parse_duration_ms(const std::string& s);

}  // namespace sluice::cli
