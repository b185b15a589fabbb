// json/chat.hpp: what the gateway needs to know about an OpenAI request or response body,
// read with one validating simdjson pass. Nothing here allocates per field except copies
// of the few strings that outlive the parser.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace simdjson::dom {
class parser;
}

namespace sluice::json {

// Fields of a /v1/chat/completions or /v1/embeddings request the pipeline uses.
struct RequestInfo {
  std::string model;
  std::string user;
  bool stream = false;
  bool has_stream_options = false;
  bool include_usage = false;  // stream_options.include_usage as sent by the client
  bool has_tools = false;
  int64_t n = 1;
  int64_t max_tokens = -1;  // max_completion_tokens, else max_tokens, when given
  int64_t messages = 0;
  // response_format.type ("" when absent): "json_object" or "json_schema" ask for JSON.
  std::string response_format;
  std::string json_schema;  // raw response_format.json_schema.schema when given
};

// Why a body was refused: the message, OpenAI-style code and the field at fault.
struct RequestProblem {
  std::string message;
  std::string code;   // "invalid_json" (syntax) or "invalid_type" / "invalid_value"
  std::string param;  // e.g. "stream"; empty for syntax errors
};

// Validates `body` as a JSON object and fills `out`. On failure returns what to answer (400).
// `body` must have SIMDJSON_PADDING bytes of spare capacity or it is copied once.
std::optional<RequestProblem> inspect_request(simdjson::dom::parser& parser, std::string_view body,
                                           size_t capacity, RequestInfo& out);

// Token usage as reported by an upstream.
struct Usage {
  int64_t prompt_tokens = -1;
  int64_t completion_tokens = -1;
  int64_t cached_tokens = -1;  // prompt tokens the upstream's prompt cache served (priced apart)
  bool present() const { return prompt_tokens >= 0 || completion_tokens >= 0; }
};

// What the relay learns from one streamed chunk (`data:` payload of an SSE event).
struct ChunkInfo {
  bool valid_json = false;
  bool is_error = false;        // {"error":...}
  bool usage_only = false;      // "choices":[] with a usage object (the include_usage chunk)
  bool has_content = false;     // carries a content or tool-call delta
  std::string_view finish_reason;  // valid until the next parse with the same parser
  std::string_view content;        // the first choice's content delta (same lifetime)
  Usage usage;
};
ChunkInfo inspect_chunk(simdjson::dom::parser& parser, std::string_view data);

// Usage from a whole (non-streamed) response body; nullopt when the body is not a JSON
// object (usage fields stay -1 when the object has none).
std::optional<Usage> response_usage(simdjson::dom::parser& parser, std::string_view body);

// Usage (nullopt when the body is not a JSON object) and, when `text` is given, the first
// choice's answer: message content (at most `limit` bytes are copied) and finish_reason.
// One parse.
std::optional<Usage> response_usage_and_answer(simdjson::dom::parser& parser, std::string_view body, size_t limit,
                                               std::string* text, std::string* finish_reason);

}  // namespace sluice::json
