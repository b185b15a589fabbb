// net/http_client.hpp: one blocking HTTP/1.1 request, for the CLI talking to a gateway's
// admin API. Plain HTTP (the admin listener binds to loopback by default); every step
// has a deadline.
#pragma once
#include <chrono>
#include <string>

namespace sluice::net {

struct HttpResult {
  int status = 0;      // 0 when the request could not be made
  std::string body;
  std::string error;   // transport error, empty otherwise
};

HttpResult http_request(const std::string& method, const std::string& url, const std::string& bearer_token,
                        const std::string& body, std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace sluice::net
