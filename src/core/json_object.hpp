// core/json_object.hpp: builds one JSON object field by field (control-plane responses).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <ctime>
#include <vector>

#include "core/error.hpp"

namespace sluice {

class JsonObject {
 public:
  JsonObject& str(std::string_view key, std::string_view value) {
    key_(key);
    append_json_string(out_, value);
    return *this;
  }
  JsonObject& raw(std::string_view key, std::string_view json) {
    key_(key);
    out_.append(json);
    return *this;
  }
  JsonObject& num(std::string_view key, int64_t v) { return raw(key, std::to_string(v)); }
  std::string done() {
    out_.push_back('}');
    return std::move(out_);
  }

 private:
  void key_(std::string_view k) {
    if (!first_) out_.push_back(',');
    first_ = false;
    append_json_string(out_, k);
    out_.push_back(':');
  }
  std::string out_ = "{";
  bool first_ = true;
};

// A JSON array of items, each rendered by `one`.
template <class T, class F>
std::string json_array(const std::vector<T>& items, F&& one) {
  std::string o = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) o += ",";
    o += one(items[i]);
  }
  return o + "]";
}

// "2026-11-30T19:05:00Z" (UTC, whole seconds) of a time in unix milliseconds.
inline std::string iso_time(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace sluice
