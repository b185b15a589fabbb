// store/open.cpp: picks the backend from where the store lives.
#include "store/store.hpp"

#include <cstdlib>

namespace sluice::store {

bool is_postgres_url(const std::string& where) {
  return where.rfind("postgres://", 0) == 0 || where.rfind("postgresql://", 0) == 0;
}

std::unique_ptr<Store> open_store(const std::string& where, std::string& error) {
  return is_postgres_url(where) ? open_postgres(where, error) : open_sqlite(where, error);
}

std::string store_location(const std::string& configured, const std::string& data_dir) {
  if (const char* env = std::getenv("SLUICE_STORE_URL"); env && *env) return env;
  if (!configured.empty()) return configured;
  return data_dir + "/sluice.db";
}

std::string redact_location(const std::string& where) {
  if (!is_postgres_url(where)) return where;
  // postgres://user:password@host/db: the password sits between the first ':' after the
  // scheme and the last '@' of the authority.
  const size_t start = where.find("://") + 3;
  size_t end = where.find_first_of("/?", start);
  if (end == std::string::npos) end = where.size();
  const size_t at = where.rfind('@', end);
  if (at == std::string::npos || at < start) return where;
  const size_t colon = where.find(':', start);
  if (colon == std::string::npos || colon > at) return where;
  return where.substr(0, colon + 1) + "***" + where.substr(at);
}

}  // namespace sluice::store
