// net/upstream.hpp: connections to one upstream (HTTP or HTTPS with verification), kept
// alive in a per-worker pool. Every operation takes a deadline and reports errors as values.
#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "net/asio.hpp"

namespace sluice::net {

struct UpstreamEndpoint {
  std::string host;
  uint16_t port = 0;
  bool tls = false;
  bool tls_verify = true;
  std::string ca_file;
  size_t max_idle = 128;
};

// One keep-alive connection. Owned by one request at a time.
class UpstreamConn {
 public:
  UpstreamConn(asio::io_context& ioc, asio::ssl::context* tls);
  UpstreamConn(const UpstreamConn&) = delete;
  UpstreamConn& operator=(const UpstreamConn&) = delete;

  awaitable<error_code> connect(const std::vector<tcp::endpoint>& eps, const std::string& sni_host, bool verify);
  // Writes a serialized head and a body in one gather write.
  awaitable<error_code> write(std::string_view head, std::string_view body);
  awaitable<error_code> read_header(http::response_parser<http::buffer_body>& p);
  // Reads some body bytes into [data, data+cap). Returns bytes stored; 0 with no error
  // means "nothing yet" (e.g. only chunk framing was parsed); check p.is_done().
  awaitable<size_t> read_some(http::response_parser<http::buffer_body>& p, char* data, size_t cap,
                              error_code& ec);

  void expires_after(std::chrono::milliseconds d);
  void expires_at(std::chrono::steady_clock::time_point t);
  void cancel();  // aborts pending I/O (client went away)
  void close();
  beast::tcp_stream& tcp();

  bool reused = false;  // came from the pool (may be stale)
  bool healthy = true;  // can go back to the pool
  std::chrono::steady_clock::time_point idle_since{};

 private:
  std::unique_ptr<beast::tcp_stream> plain_;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls_;
  beast::flat_buffer buf_;
};

// Idle connections to one upstream, owned by one worker (no locking).
class UpstreamPool {
 public:
  UpstreamPool(asio::io_context& ioc, UpstreamEndpoint ep);
  const UpstreamEndpoint& endpoint() const { return ep_; }

  // An idle connection, or a new one connected within `timeout`. On failure, `error_kind`
  // is kConnectTimeout, kConnectFailed, kDnsFailed or kTlsFailed.
  awaitable<std::unique_ptr<UpstreamConn>> acquire(std::chrono::milliseconds timeout, ErrorKind& error_kind,
                                                   bool fresh = false);
  void release(std::unique_ptr<UpstreamConn> c);
  size_t idle() const { return idle_.size(); }
  std::string tls_error;  // last TLS setup error (no secrets)

 private:
  asio::io_context& ioc_;
  UpstreamEndpoint ep_;
  std::unique_ptr<asio::ssl::context> ssl_;
  std::vector<std::unique_ptr<UpstreamConn>> idle_;
  std::vector<tcp::endpoint> resolved_;
  std::chrono::steady_clock::time_point resolved_at_{};
};

}  // namespace sluice::net
