// bridge/front.hpp: front doors for clients that speak another API than chat completions.
// A request to POST /v1/responses (OpenAI's Responses API) or POST /v1/messages (Anthropic's
// Messages API) is translated once into a chat completions body, so every filter (routes,
// releases, limits, admission, caches, rollouts, metrics) and every upstream works on it
// unchanged; its answer, whole or streamed, is translated back on the way out.
//
// A Front is the per-request translator: it remembers what the answer needs from the request
// (ids, the model, the tools offered) and, for streams, where in the client's event sequence
// it is. No I/O: the relay calls it with what the upstream sent and writes what it returns.
#pragma once
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace simdjson::dom {
class parser;
}
namespace sluice::cache {
class ResponseCache;
}

namespace sluice::bridge {

// The API a client spoke at the front door.
enum class Api : uint8_t { kChat, kResponses, kMessages };

// An error in the shape of the client's API: OpenAI's {"error":{...}} for chat and responses,
// Anthropic's {"type":"error","error":{"type":...,"message":...}} for messages.
std::string error_json(Api api, const ApiError& e);
// A Responses API `error` event (a passed-through stream the gateway has to end).
std::string responses_error_event(const ApiError& e);
// Anthropic's error type for an HTTP status ("invalid_request_error", "overloaded_error"...).
std::string_view anthropic_error_type(int status);

// Stored responses on their way to the store: the data plane records them here and the
// control thread writes them (write-behind, once a second), so a restart keeps the
// conversations. Bounded: past kMaxPending the oldest pending saves are dropped and counted.
class Journal {
 public:
  struct Saved {
    std::string tenant, id, body;
    int64_t expires_at = 0;  // unix ms
  };
  struct Batch {
    std::deque<Saved> saved;
    std::vector<std::pair<std::string, std::string>> deleted;  // (tenant, id)
  };
  // A second of a busy gateway's stored answers (the control thread writes once a second),
  // and at most this many bytes of them.
  static constexpr size_t kMaxPending = 1 << 16;
  static constexpr size_t kMaxPendingBytes = 64 << 20;

  void saved(Saved s);
  void deleted(std::string tenant, std::string id);
  Batch take();
  int64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  std::mutex mu_;
  Batch pending_;
  size_t pending_bytes_ = 0;
  std::atomic<int64_t> dropped_{0};
};

// Where stored responses live (previous_response_id, GET /v1/responses/{id}): a bytes-bounded
// LRU with a time to live, shared by every worker, kept beside the snapshot; and the journal
// that carries them to the store.
struct Store {
  cache::ResponseCache* cache = nullptr;
  int64_t ttl_ms = 0;
  Journal* journal = nullptr;
};
// The key of a tenant's stored response: a tenant never reads another's.
std::string store_key(std::string_view tenant, std::string_view response_id);
// The key under which a passed-through response's owner (its tenant) is kept.
std::string owner_key(std::string_view response_id);
// The response object kept under `key` (GET /v1/responses/{id}); nullopt when unknown.
std::optional<std::string> stored_response(simdjson::dom::parser& p, const Store& store, const std::string& key,
                                           int64_t now_ms);

// What an answer says, read from a chat completion or accumulated from its stream.
struct ToolCall {
  std::string id, name, arguments;
};
struct Answer {
  std::string model;
  std::string text;
  std::string refusal;
  std::string finish;  // chat's finish_reason: stop, length, tool_calls, content_filter
  std::vector<ToolCall> calls;
  int64_t input_tokens = -1, output_tokens = -1, cached_tokens = 0, reasoning_tokens = 0;
};

class Front {
 public:
  virtual ~Front() = default;
  Api api() const { return api_; }

  // A whole 2xx chat completion as the client's answer.
  std::string whole(simdjson::dom::parser& p, std::string_view chat);
  // A whole error answer in the client's shape (an upstream's OpenAI error body is re-shaped).
  std::string upstream_error(simdjson::dom::parser& p, std::string_view body, int status) const;

  // Streams: each chat chunk's `data` (JSON; "[DONE]" is done()), appending the client's SSE
  // bytes to `out`; done() once the chat stream completed; stream_error() when it broke
  // after the head was sent. After done() or stream_error() nothing more is written.
  void chunk(simdjson::dom::parser& p, std::string_view data, std::string& out);
  void done(std::string& out);
  void stream_error(const ApiError& e, std::string& out);
  // A chat SSE body written by the gateway itself (a cached or static answer) as the client's.
  std::string translate_stream(simdjson::dom::parser& p, std::string_view sse);

  const Answer& answer() const { return answer_; }

 protected:
  explicit Front(Api api) : api_(api) {}
  // The rendering of one API. Streams: begin() once before anything else.
  virtual std::string render_whole() = 0;
  virtual void begin(std::string& out) = 0;
  virtual void text_delta(std::string_view text, std::string& out) = 0;
  virtual void call_start(size_t k, std::string& out) = 0;           // answer_.calls[k] began
  virtual void call_delta(size_t k, std::string_view args, std::string& out) = 0;
  virtual void finish(std::string& out) = 0;
  virtual void fail(const ApiError& e, std::string& out) = 0;
  // Called once the answer is complete (whole or streamed): keeps it when the API stores.
  virtual void completed() {}

  Answer answer_;
  bool finished_ = false;

 private:
  void read_whole(simdjson::dom::parser& p, std::string_view chat);
  Api api_;
  bool begun_ = false;
  std::vector<int64_t> call_index_;  // the chat stream's tool call index of each of answer_.calls
};

// What opening a front door needs besides the body.
struct OpenContext {
  std::string_view request_id;
  std::string_view tenant;
  int64_t now_ms = 0;
  Store store;  // responses only
};

// The client's body translated to chat completions, and the Front that answers it.
struct Opened {
  std::unique_ptr<Front> front;
  std::string chat_body;
};

// POST /v1/responses -> chat completions (bridge/responses.cpp).
std::optional<ApiError> open_responses(simdjson::dom::parser& p, std::string_view body, const OpenContext& oc,
                                       Opened& out);
// POST /v1/messages -> chat completions (bridge/messages.cpp).
std::optional<ApiError> open_messages(simdjson::dom::parser& p, std::string_view body, const OpenContext& oc,
                                      Opened& out);

}  // namespace sluice::bridge
