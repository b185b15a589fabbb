// fuzz/sse_fuzz.cpp: SSE framing of upstream bytes. Invariants: no crash; events are
// independent of how the bytes were split across reads; the buffer stays bounded.
#include <simdjson.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "json/chat.hpp"
#include "sse/parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static simdjson::dom::parser parser;
  size_t piece = 1 + data[0] % 17;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t limit = 256;
  std::vector<std::string> whole, split;
  std::string scratch;
  sluice::sse::Parser a(limit), b(limit);
  bool ok_a = a.feed(in, [&](std::string_view raw) {
    whole.emplace_back(raw);
    std::string_view d = sluice::sse::Parser::data_of(raw, scratch);
    (void)sluice::json::inspect_chunk(parser, d);
  });
  bool ok_b = true;
  for (size_t i = 0; i < in.size() && ok_b; i += piece) {
    ok_b = b.feed(in.substr(i, piece), [&](std::string_view raw) { split.emplace_back(raw); });
    if (b.buffered() > limit) std::abort();
  }
  // Identical framing unless one of them hit the size limit.
  if (ok_a && ok_b && whole != split) std::abort();
  return 0;
}
