// fuzz/bridge_fuzz.cpp: the translators that see client bodies (Responses, Anthropic
// Messages) and upstream answers (Anthropic's messages and event streams). Invariants: no
// crash; whatever a translator writes for the gateway is JSON; an Anthropic stream translates
// the same however its bytes were split.
#include <simdjson.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "bridge/anthropic_upstream.hpp"
#include "bridge/front.hpp"
#include "cache/response_cache.hpp"

namespace {

void must_be_json(simdjson::dom::parser& p, const std::string& s) {
  simdjson::dom::element e;
  if (p.parse(s).get(e)) std::abort();
}

// Feeds `rest` to an opened front as a chat stream (one chunk per line), then as a whole answer.
void answer(simdjson::dom::parser& p, sluice::bridge::Opened& o, std::string_view rest) {
  std::string out;
  size_t start = 0;
  while (start <= rest.size()) {
    size_t nl = rest.find('\n', start);
    if (nl == std::string_view::npos) nl = rest.size();
    o.front->chunk(p, rest.substr(start, nl - start), out);
    start = nl + 1;
  }
  o.front->done(out);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static simdjson::dom::parser parser;
  static sluice::cache::ResponseCache store(1 << 20);
  using namespace sluice::bridge;
  const int mode = data[0] % 4;
  const size_t piece = 1 + data[1] % 13;
  std::string_view in(reinterpret_cast<const char*>(data) + 2, size - 2);
  const size_t split = in.find('\x1e');  // body, then what the "upstream" answers
  std::string_view body = in.substr(0, split), rest = split == std::string_view::npos ? "" : in.substr(split + 1);
  OpenContext oc{"req_fuzz", "tenant", 1000, Store{&store, 60000}};
  Opened o;
  if (mode == 0 || mode == 1) {
    auto err = mode == 0 ? open_responses(parser, body, oc, o) : open_messages(parser, body, oc, o);
    if (err) {
      must_be_json(parser, error_json(mode == 0 ? Api::kResponses : Api::kMessages, *err));
      return 0;
    }
    must_be_json(parser, o.chat_body);
    Opened again;
    (void)(mode == 0 ? open_responses(parser, body, oc, again) : open_messages(parser, body, oc, again));
    std::string whole = again.front->whole(parser, rest);
    must_be_json(parser, whole);
    answer(parser, o, rest);
  } else if (mode == 2) {
    std::string out;
    if (!anthropic_request(parser, body, out)) must_be_json(parser, out);
  } else {
    AnthropicAnswer a(512), b(512);
    std::string once(a.stream(parser, in));
    std::string pieces;
    for (size_t i = 0; i < in.size(); i += piece) pieces += b.stream(parser, in.substr(i, piece));
    if (!a.failed() && !b.failed() && once != pieces) std::abort();
    AnthropicAnswer c(512);
    std::string whole = c.whole(parser, in, 200);
    (void)whole;
    must_be_json(parser, c.whole(parser, in, 500));
  }
  return 0;
}
