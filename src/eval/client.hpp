// eval/client.hpp: a blocking HTTP/1.1 client with one keep-alive connection, for the eval
// runner's worker threads talking to the embedded gateway. The only eval file that sees
// Boost.Beast. Measures time to the first streamed content token.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace sluice::eval {

struct HttpReply {
  int status = 0;       // 0: transport error (see error)
  std::string body;
  std::string error;
  std::string release;     // x-sluice-release
  std::string request_id;  // x-request-id
  int retry_after_s = -1;  // Retry-After (seconds) when present
  double ttft_ms = -1;     // first `"content":"<non-empty>` seen in the body (streams)
  double total_ms = 0;
};

inline constexpr size_t kMaxReplyBytes = 16 << 20;

class HttpClient {
 public:
  HttpClient(std::string host, uint16_t port);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;
  HttpReply post(const std::string& target, const std::string& body, const std::string& bearer,
                 std::chrono::milliseconds timeout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::eval
