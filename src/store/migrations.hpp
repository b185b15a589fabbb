// store/migrations.hpp: schema migrations, generated from migrations/NNN_name.sql.
#pragma once
#include <vector>

namespace sluice::store {
struct Migration {
  int version;
  const char* name;
  const char* sql;
};
const std::vector<Migration>& migrations();
}  // namespace sluice::store
