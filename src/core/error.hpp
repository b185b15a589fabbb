// core/error.hpp: errors as values on the hot path, rendered in OpenAI's error JSON shape.
#pragma once
#include <string>
#include <string_view>

namespace sluice {

// One API error as the client sees it: HTTP status plus OpenAI's {"error":{message,type,code}}.
struct ApiError {
  int status = 500;
  std::string type;     // OpenAI error type, e.g. "invalid_request_error"
  std::string code;     // machine-readable code, e.g. "model_not_found"
  std::string message;  // human-readable, never contains secrets
  std::string param;    // the request field at fault, if any ("" renders as null)

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

// Appends `s` to `out` as a JSON string literal (with quotes), escaping per RFC 8259.
void append_json_string(std::string& out, std::string_view s);

}  // namespace sluice
