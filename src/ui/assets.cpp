#include "ui/assets.hpp"

namespace sluice::ui {

const Asset* find(std::string_view path) {
  if (path == "/ui" || path == "/ui/") path = "/ui/index.html";
  if (!path.starts_with("/ui/")) return nullptr;
  path.remove_prefix(4);
  for (const Asset& a : assets())
    if (a.name == path) return &a;
  return nullptr;
}

}  // namespace sluice::ui
