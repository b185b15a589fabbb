// core/json_object.hpp: builds one JSON object field by field (control-plane responses).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

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

}  // namespace sluice
