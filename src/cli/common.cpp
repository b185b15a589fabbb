#include "cli/common.hpp"

#include <simdjson.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "core/error.hpp"
#include "net/http_client.hpp"

namespace sluice::cli {

std::string Common::token() const {
  if (!admin_token.empty()) return admin_token;
  if (const char* t = std::getenv("SLUICE_ADMIN_TOKEN")) return t;
  std::ifstream in(data_dir + "/admin.token");
  std::string tok;
  in >> tok;
  return tok;
}

void add_common_options(CLI::App* c, Common& common) {
  if (const char* u = std::getenv("SLUICE_ADMIN_URL"); u && common.admin_url.empty()) common.admin_url = u;
  c->add_option("--data-dir", common.data_dir, "state directory (default ./sluice-data)");
  c->add_option("--store", common.store,
                "the store: a postgres:// URL or a SQLite file (default $SLUICE_STORE_URL, then DATA_DIR/sluice.db)");
  c->add_option("--actor", common.actor, "who is acting, for the audit log (default cli:$USER@host)");
  c->add_option("--admin", common.admin_url,
                "a running gateway's admin URL (http://host:port; env SLUICE_ADMIN_URL): act through its API");
  c->add_option("--token", common.admin_token, "admin bearer token (env SLUICE_ADMIN_TOKEN, else DATA_DIR/admin.token)");
}

int remote_call(const Common& c, const std::string& method, const std::string& path, const std::string& body,
                bool text_only) {
  auto r = net::http_request(method, c.admin_url + path, c.token(), body);
  if (!r.error.empty()) {
    std::cerr << "error: " << r.error << "\n";
    return 2;
  }
  bool ok = r.status / 100 == 2;
  if (ok && text_only) {
    simdjson::dom::parser p;
    simdjson::dom::element doc;
    std::string_view t;
    if (!p.parse(r.body).get(doc) && !doc["text"].get_string().get(t)) {
      std::cout << t;
      return 0;
    }
  }
  (ok ? std::cout : std::cerr) << r.body << "\n";
  return ok ? 0 : 1;
}

std::string json_str(const std::string& s) {
  std::string o;
  append_json_string(o, s);
  return o;
}

std::string default_actor() {
  const char* u = std::getenv("USER");
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return std::string("cli:") + (u ? u : "unknown") + "@" + host;
}

std::unique_ptr<store::Store> open(const Common& c) {
  std::filesystem::create_directories(c.data_dir);
  std::string err;
  auto s = store::open_store(store::store_location(c.store, c.data_dir), err);
  if (!s) std::cerr << "error: " << err << "\n";
  return s;
}

int64_t parse_duration_ms(const std::string& s) {
  if (s == "0") return 0;
  if (s.size() < 2 || s.size() > 12) return -1;
  const char unit = s.back();
  for (size_t i = 0; i + 1 < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9') return -1;
  const int64_t n = std::atoll(s.substr(0, s.size() - 1).c_str());
  if (n <= 0) return -1;
  switch (unit) {
    case 's': return n * 1000;
    case 'm': return n * 60000;
    case 'h': return n * 3600000;
    case 'd': return n * 86400000;
    default: return -1;
  }
}

int print(const control::Result& r) {
  if (!r.ok()) {
    std::cerr << "error: " << r.error << (r.error.back() == '\n' ? "" : "\n");
    return 1;
  }
  std::cout << r.text << (r.text.empty() || r.text.back() == '\n' ? "" : "\n");
  return 0;
}

}  // namespace sluice::cli
