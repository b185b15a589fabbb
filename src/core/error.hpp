// core/error.hpp: errors as values on the hot path, rendered in OpenAI's error JSON shape.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice {

// What went wrong with a request, as sluice decides on it: breaker outcomes, retries,
// fallback rules, rollout evidence. Decisions compare kinds, never strings. Each kind sluice
// produces has one wire code (code_of), which clients, the request log and metrics see;
// errors found in the request itself are kRequest and keep their own code ("invalid_json").
enum class ErrorKind : uint8_t {
  kNone,
  kRequest,          // the request's own fault, decided by sluice (4xx)
  kMissingVariable,  // a release's prompt needs a variable the client did not send
  kOverloaded,
  kRateLimited,      // the tenant's own limits (429): says nothing about an upstream or a release
  kQuotaExceeded,    // the tenant's money budget is spent (429 insufficient_quota)
  // reaching an upstream (before a byte reached the client)
  kConnectFailed,
  kDnsFailed,
  kTlsFailed,
  kConnectTimeout,
  kFirstByteTimeout,
  kFirstTokenTimeout,
  kReset,
  kBadResponse,
  kResponseTooLarge,
  kStatus4xx,
  kStatus429,
  kStatus5xx,
  kUpstreamsUnavailable,  // every target's breaker open (or held off by Retry-After)
  kRetryBudgetExhausted,
  kUpstreamFailed,        // none could serve (the last reason was not kept)
  kContextLengthExceeded,  // a 400 context_length_exceeded: only a larger model helps
  // while answering
  kUpstreamStatus,      // a whole answer with an error status, relayed as it came
  kUpstreamErrorEvent,  // a stream that carried an error event
  kIdleTimeout,
  kTotalTimeout,
  kStreamCut,
  kBadStream,
  // the client or the gateway
  kClientAbort,
  kClientWriteTimeout,
  kShuttingDown,
};

// The wire code of a kind ("first_byte_timeout"); "" for kNone and kRequest.
std::string_view code_of(ErrorKind k);
// The kind of a wire code sluice produces; kRequest for any other code. For codes that come
// from outside a decision (a config file, a test): decisions use the kind they were given.
ErrorKind kind_of(std::string_view code);
bool is_timeout(ErrorKind k);

// The classes of failure a route's fallback chain may name (`fallbacks[].on`).
enum class FailureClass : uint8_t { kNone, kConnect, kTimeout, k5xx, k429, kUnavailable, kContextLength };
FailureClass failure_class(ErrorKind k);
// "connect" | "timeout" | "5xx" | "429" | "unavailable" | "context_length"; kNone otherwise.
FailureClass failure_class_named(std::string_view name);

// One API error as the client sees it: HTTP status plus OpenAI's {"error":{message,type,code}}.
struct ApiError {
  int status = 500;
  std::string type;     // OpenAI error type, e.g. "invalid_request_error"
  std::string code;     // machine-readable code, e.g. "model_not_found"
  std::string message;  // human-readable, never contains secrets
  std::string param;    // the request field at fault, if any ("" renders as null)
  ErrorKind kind = ErrorKind::kRequest;

  // {"error":{"message":...,"type":...,"param":null,"code":...}}
  std::string to_json() const;
};

// Shorthands for the errors sluice itself produces.
ApiError bad_request(std::string message, std::string code = "invalid_request");
ApiError unauthorized(std::string message);
ApiError not_found(std::string message, std::string code = "not_found");
ApiError payload_too_large(std::string message);
ApiError bad_gateway(std::string message, std::string code);
ApiError gateway_timeout(std::string message, std::string code);
ApiError unavailable(std::string message, std::string code);
ApiError rate_limited(std::string message, std::string code);
// An error sluice decided on: the status and code follow from the kind (timeouts 504,
// unavailable and shutting down 503, context length 400, overloaded 503, else 502).
ApiError error_of(ErrorKind k, std::string message);

// Appends `s` to `out` as a JSON string literal (with quotes), escaping per RFC 8259.
void append_json_string(std::string& out, std::string_view s);

}  // namespace sluice
