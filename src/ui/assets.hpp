// ui/assets.hpp: the dashboard's static files (ui/dist), embedded at build time by
// src/ui/CMakeLists.txt. They hold no data: every number the page shows comes from the admin
// API, called by the page with the operator's bearer token.
#pragma once
#include <span>
#include <string_view>

namespace sluice::ui {

struct Asset {
  std::string_view name;          // path under ui/dist, e.g. "app.js"
  std::string_view content_type;
  std::string_view etag;          // quoted: the first 16 hex digits of the file's SHA-256
  std::string_view body;
};

std::span<const Asset> assets();
// True when ui/dist was missing at configure time: the one asset is a page saying so.
bool placeholder();

// The asset served for a path under /ui ("/ui" and "/ui/" are index.html); nullptr if none.
const Asset* find(std::string_view path);

}  // namespace sluice::ui
