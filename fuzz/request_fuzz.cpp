// fuzz/request_fuzz.cpp: request body validation and top-level member splicing.
// Invariants: no crash; whatever the validator accepts as an object, the splicer can split,
// and splicing then re-validating yields the same model.
#include <simdjson.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "json/chat.hpp"
#include "json/splice.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static simdjson::dom::parser parser;
  std::string body(reinterpret_cast<const char*>(data), size);
  body.reserve(size + simdjson::SIMDJSON_PADDING);
  sluice::json::RequestInfo info;
  auto err = sluice::json::inspect_request(parser, body, body.capacity(), info);
  auto members = sluice::json::top_level_members(body);
  if (!err) {
    if (!members) std::abort();  // valid object the splicer cannot split
    auto spliced = sluice::json::splice_members(body, {{"model", "\"fuzz-model\""}, {"stream_options", ""}});
    if (!spliced) std::abort();
    spliced->reserve(spliced->size() + simdjson::SIMDJSON_PADDING);
    sluice::json::RequestInfo again;
    if (sluice::json::inspect_request(parser, *spliced, spliced->capacity(), again)) std::abort();
    if (again.model != "fuzz-model" || again.has_stream_options) std::abort();
  }
  return 0;
}
