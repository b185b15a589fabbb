// bridge/anthropic_upstream.hpp: Anthropic's Messages API as an upstream. The gateway works
// in chat completions throughout; an upstream configured with `api: anthropic` gets the
// request translated to Anthropic's shape, and its answer (a whole message, an error, or the
// event stream) is translated back before any filter sees it. So a pool or a fallback chain
// can mix OpenAI-compatible and Anthropic upstreams.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "sse/parser.hpp"

namespace simdjson::dom {
class parser;
}

namespace sluice::bridge {

// What Anthropic needs when a chat request does not say: the answer's length is required.
inline constexpr int64_t kAnthropicDefaultMaxTokens = 4096;

// A chat completions request body as an Anthropic Messages request (into `out`). Refuses
// what Anthropic cannot do (n > 1).
std::optional<ApiError> anthropic_request(simdjson::dom::parser& p, std::string_view chat, std::string& out);

// An Anthropic upstream's answer, as chat completions.
class AnthropicAnswer {
 public:
  explicit AnthropicAnswer(size_t max_event_bytes) : events_(max_event_bytes) {}

  // A whole answer: a 2xx message as a chat completion; an error body as OpenAI's error
  // shape (a prompt that is too long becomes context_length_exceeded, as OpenAI says it).
  std::string whole(simdjson::dom::parser& p, std::string_view body, int status);

  // Stream bytes from the upstream -> chat completion chunks as SSE bytes (whole events;
  // the view stays valid until the next call). Ends with the usage chunk and [DONE] once
  // Anthropic's message_stop arrives.
  std::string_view stream(simdjson::dom::parser& p, std::string_view bytes);
  bool failed() const { return failed_; }  // an event larger than the limit

 private:
  void event(simdjson::dom::parser& p, std::string_view data);
  void chunk(std::string_view delta, std::string_view finish = {});

  sse::Parser events_;
  std::string out_, scratch_;
  std::string id_, model_;
  int64_t input_tokens_ = 0, output_tokens_ = 0, cached_tokens_ = 0, cache_write_tokens_ = 0;
  std::vector<int64_t> tool_blocks_;  // the content block index of each tool call, in order
  std::vector<bool> tool_args_;       // ...and whether its arguments came (none: "{}")
  bool failed_ = false;
};

// The chat finish_reason of an Anthropic stop_reason.
std::string_view chat_finish_reason(std::string_view stop_reason);

}  // namespace sluice::bridge
