#include <array>

#include "core/error.hpp"

namespace sluice {

namespace {

struct KindCode {
  ErrorKind kind;
  std::string_view code;
};

constexpr std::array<KindCode, 31> kCodes = {{
    {ErrorKind::kMissingVariable, "missing_variable"},
    {ErrorKind::kOverloaded, "overloaded"},
    {ErrorKind::kRateLimited, "rate_limit_exceeded"},
    {ErrorKind::kQuotaExceeded, "insufficient_quota"},
    {ErrorKind::kConnectFailed, "connect_failed"},
    {ErrorKind::kDnsFailed, "dns_failed"},
    {ErrorKind::kTlsFailed, "tls_failed"},
    {ErrorKind::kConnectTimeout, "connect_timeout"},
    {ErrorKind::kFirstByteTimeout, "first_byte_timeout"},
    {ErrorKind::kFirstTokenTimeout, "first_token_timeout"},
    {ErrorKind::kReset, "reset"},
    {ErrorKind::kBadResponse, "bad_response"},
    {ErrorKind::kResponseTooLarge, "response_too_large"},
    {ErrorKind::kStatus4xx, "status_4xx"},
    {ErrorKind::kStatus429, "status_429"},
    {ErrorKind::kStatus5xx, "status_5xx"},
    {ErrorKind::kUpstreamsUnavailable, "upstreams_unavailable"},
    {ErrorKind::kRetryBudgetExhausted, "retry_budget_exhausted"},
    {ErrorKind::kUpstreamFailed, "upstream_failed"},
    {ErrorKind::kContextLengthExceeded, "context_length_exceeded"},
    {ErrorKind::kUpstreamStatus, "upstream_status"},
    {ErrorKind::kUpstreamErrorEvent, "upstream_error_event"},
    {ErrorKind::kIdleTimeout, "idle_timeout"},
    {ErrorKind::kTotalTimeout, "total_timeout"},
    {ErrorKind::kStreamCut, "stream_cut"},
    {ErrorKind::kBadStream, "bad_stream"},
    {ErrorKind::kClientAbort, "client_abort"},
    {ErrorKind::kClientWriteTimeout, "client_write_timeout"},
    {ErrorKind::kShuttingDown, "shutting_down"},
    {ErrorKind::kNone, ""},
    {ErrorKind::kRequest, ""},
}};

}  // namespace

std::string_view code_of(ErrorKind k) {
  for (const auto& kc : kCodes)
    if (kc.kind == k) return kc.code;
  return "";
}

ErrorKind kind_of(std::string_view code) {
  if (code.empty()) return ErrorKind::kNone;
  for (const auto& kc : kCodes)
    if (kc.code == code) return kc.kind;
  return ErrorKind::kRequest;
}

bool is_timeout(ErrorKind k) {
  switch (k) {
    case ErrorKind::kConnectTimeout:
    case ErrorKind::kFirstByteTimeout:
    case ErrorKind::kFirstTokenTimeout:
    case ErrorKind::kIdleTimeout:
    case ErrorKind::kTotalTimeout: return true;
    default: return false;
  }
}

FailureClass failure_class(ErrorKind k) {
  switch (k) {
    case ErrorKind::kConnectFailed:
    case ErrorKind::kDnsFailed:
    case ErrorKind::kTlsFailed: return FailureClass::kConnect;
    case ErrorKind::kConnectTimeout:
    case ErrorKind::kFirstByteTimeout:
    case ErrorKind::kFirstTokenTimeout: return FailureClass::kTimeout;
    case ErrorKind::kStatus5xx:
    case ErrorKind::kReset:
    case ErrorKind::kBadResponse:
    case ErrorKind::kUpstreamFailed: return FailureClass::k5xx;
    case ErrorKind::kStatus429: return FailureClass::k429;
    case ErrorKind::kUpstreamsUnavailable: return FailureClass::kUnavailable;
    case ErrorKind::kContextLengthExceeded: return FailureClass::kContextLength;
    default: return FailureClass::kNone;
  }
}

FailureClass failure_class_named(std::string_view n) {
  if (n == "connect") return FailureClass::kConnect;
  if (n == "timeout") return FailureClass::kTimeout;
  if (n == "5xx") return FailureClass::k5xx;
  if (n == "429") return FailureClass::k429;
  if (n == "unavailable") return FailureClass::kUnavailable;
  if (n == "context_length") return FailureClass::kContextLength;
  return FailureClass::kNone;
}

ApiError error_of(ErrorKind k, std::string message) {
  ApiError e;
  e.kind = k;
  e.code = std::string(code_of(k));
  e.message = std::move(message);
  if (is_timeout(k)) {
    e.status = 504;
    e.type = "upstream_error";
  } else if (k == ErrorKind::kUpstreamsUnavailable || k == ErrorKind::kShuttingDown || k == ErrorKind::kOverloaded ||
             k == ErrorKind::kRetryBudgetExhausted) {
    e.status = 503;
    e.type = "server_error";
  } else if (k == ErrorKind::kRateLimited) {
    e.status = 429;
    e.type = "requests";
  } else if (k == ErrorKind::kQuotaExceeded) {
    e.status = 429;
    e.type = "insufficient_quota";
  } else if (k == ErrorKind::kContextLengthExceeded || k == ErrorKind::kMissingVariable) {
    e.status = 400;
    e.type = "invalid_request_error";
  } else {
    e.status = 502;
    e.type = "upstream_error";
  }
  return e;
}

}  // namespace sluice
