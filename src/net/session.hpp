// net/session.hpp: the HTTP/1.1 server connection loop shared by the gateway, the admin
// listener and mock-llm. It owns the limits every listener needs (header and body size,
// slowloris and keep-alive timeouts) and hands each whole request to a Handler:
//
//   struct Handler {
//     // Serves one request; returns false to close the connection afterwards.
//     awaitable<bool> handle(beast::tcp_stream&, beast::flat_buffer&, http::request<http::string_body>&);
//     std::string next_request_id();
//     bool draining() const;               // stop keep-alive, finish the current request
//     void idle(IdleLink&, bool);          // connection waits for a request (closable on drain)
//     SessionLimits limits();              // read per request, so reloads apply at once
//     void rejected(int status, std::string_view code, std::string_view request_id);
//   };
#pragma once
#include <array>
#include <atomic>
#include <span>
#include <chrono>
#include <string>

#include "core/error.hpp"
#include "net/asio.hpp"
#include "net/io.hpp"
#include "net/wire.hpp"

namespace sluice::net {

// A connection's place in its handler's list of idle connections: kept in the session's
// frame, linked and unlinked around every keep-alive wait without allocating.
// (A session is destroyed while linked only when its event loop is torn down, after the
// handler and its list are gone: the link must not touch them then.)
struct IdleLink {
  explicit IdleLink(beast::tcp_stream* s) : stream(s) {}
  IdleLink(const IdleLink&) = delete;
  IdleLink& operator=(const IdleLink&) = delete;
  beast::tcp_stream* stream;
  bool linked = false;
  IdleLink* prev = nullptr;
  IdleLink* next = nullptr;
};

struct SessionLimits {
  uint64_t max_body_bytes = 8 << 20;
  uint32_t max_header_bytes = 16 << 10;
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds keepalive_timeout{75000};
  std::chrono::milliseconds write_timeout{30000};
};

// Writes a complete response with a string body. Errors are returned, never thrown.
template <class Stream>
awaitable<error_code> write_response(Stream& stream, http::status status, std::string body,
                                     std::string_view content_type, std::string_view request_id, bool keep_alive,
                                     unsigned version = 11, std::span<const Header> extra = {}) {
  std::string head = response_head(static_cast<unsigned>(status), version, content_type, request_id, keep_alive,
                                   body.size(), extra);
  std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(body)};
  co_return co_await write_all(stream, bufs);
}

inline awaitable<error_code> write_error(beast::tcp_stream& stream, const ApiError& e, std::string_view request_id,
                                         bool keep_alive) {
  return write_response(stream, static_cast<http::status>(e.status), e.to_json(), "application/json", request_id,
                        keep_alive);
}

// After refusing a request whose body we will not read (413), read and discard what the
// client is still sending for a bounded time so that closing does not reset the connection
// before the client has read the response.
inline awaitable<void> linger_close(beast::tcp_stream& stream) {
  error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  static thread_local char sink[16384];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  size_t total = 0;
  while (!ec && std::chrono::steady_clock::now() < deadline && total < (size_t(256) << 20)) {
    stream.expires_at(deadline);
    total += co_await stream.async_read_some(asio::buffer(sink), ec_await(ec));
  }
  stream.socket().close(ec);
}

template <class Handler>
awaitable<void> run_session(tcp::socket socket, Handler* h) {
  beast::tcp_stream stream(std::move(socket));
  error_code ec;
  stream.socket().set_option(tcp::no_delay(true), ec);
  beast::flat_buffer buf;
  IdleLink idle_link{&stream};
  bool first = true;
  for (;;) {
    if (h->draining()) break;
    SessionLimits lim = h->limits();
    // Wait for the first byte of the next request with the keep-alive timeout, then give
    // the whole header and body the (short) header timeout: a slowloris client cannot
    // hold a connection longer than that.
    if (buf.size() == 0) {
      h->idle(idle_link, true);
      stream.expires_after(first ? lim.header_timeout : lim.keepalive_timeout);
      size_t n = co_await stream.async_read_some(buf.prepare(4096), ec_await(ec));
      h->idle(idle_link, false);
      if (ec) break;
      buf.commit(n);
      lim = h->limits();  // a reload while this connection idled applies to its next request
    }
    first = false;
    http::request_parser<http::string_body> parser;
    parser.header_limit(lim.max_header_bytes);
    parser.body_limit(lim.max_body_bytes);
    stream.expires_after(lim.header_timeout);
    co_await parse_header(stream, buf, parser, ec);
    if (!ec && !parser.is_done() && beast::iequals(parser.get()[http::field::expect], "100-continue")) {
      http::response<http::empty_body> cont{http::status::continue_, 11};
      stream.expires_after(lim.write_timeout);
      co_await http::async_write(stream, cont, ec_await(ec));
      stream.expires_after(lim.header_timeout);
    }
    if (!ec) {
      if (auto len = parser.content_length(); len && *len <= lim.max_body_bytes)
        parser.get().body().reserve(static_cast<size_t>(*len) + 64);  // simdjson padding
      if (!parser.is_done()) co_await parse_message(stream, buf, parser, ec);
    }
    if (ec) {
      if (ec == http::error::body_limit) {
        ApiError e = payload_too_large("request body exceeds the limit of " + std::to_string(lim.max_body_bytes) +
                                       " bytes");
        std::string id = h->next_request_id();
        h->rejected(e.status, e.code, id);
        stream.expires_after(lim.write_timeout);
        co_await write_error(stream, e, id, false);
        co_await linger_close(stream);
        co_return;
      }
      if (ec == http::error::header_limit) {
        ApiError e{431, "invalid_request_error", "headers_too_large", "request headers exceed the limit"};
        std::string id = h->next_request_id();
        h->rejected(e.status, e.code, id);
        stream.expires_after(lim.write_timeout);
        co_await write_error(stream, e, id, false);
        break;
      }
      if (ec == beast::error::timeout || ec == http::error::end_of_stream || ec == asio::error::eof ||
          ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
        break;
      }
      // Anything else is a malformed request line or header.
      ApiError e = bad_request("malformed HTTP request: " + ec.message(), "bad_http_request");
      std::string id = h->next_request_id();
      h->rejected(e.status, e.code, id);
      stream.expires_after(lim.write_timeout);
      co_await write_error(stream, e, id, false);
      break;
    }
    stream.expires_never();
    // Nothing pipelined behind this request: free the read buffer while it is served (a
    // stream may hold the connection for minutes); the next request allocates it again.
    if (buf.size() == 0) buf.shrink_to_fit();
    auto& req = parser.get();
    bool keep = req.keep_alive() && !h->draining();
    bool again = co_await h->handle(stream, buf, req);
    if (!again || !keep) break;
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.socket().close(ec);
}

}  // namespace sluice::net

namespace sluice::net {

// Connections waiting for their next request, closable all at once on drain. Handlers
// derive from it to provide idle(); single-threaded (one per event loop).
class IdleConnections {
 public:
  void idle(IdleLink& l, bool on) {
    if (on == l.linked) return;
    l.linked = on;
    if (on) {
      l.prev = nullptr;
      l.next = head_;
      if (head_) head_->prev = &l;
      head_ = &l;
    } else {
      if (l.prev) l.prev->next = l.next; else head_ = l.next;
      if (l.next) l.next->prev = l.prev;
      l.prev = l.next = nullptr;
    }
  }
  void close_idle() {
    // Closing completes each session's wait with an error; its session unlinks itself then.
    for (IdleLink* l = head_; l; l = l->next) {
      error_code ec;
      l->stream->socket().close(ec);
    }
  }

 private:
  IdleLink* head_ = nullptr;
};

// For listeners whose limits never change and whose rejections need no accounting.
class FixedLimits {
 public:
  explicit FixedLimits(SessionLimits l = {}) : limits_(l) {}
  SessionLimits limits() const { return limits_; }
  void rejected(int, std::string_view, std::string_view) {}

 private:
  SessionLimits limits_;
};

// Accepts until the acceptor is closed, one detached session coroutine per connection.
template <class Handler>
awaitable<void> accept_loop(tcp::acceptor& acceptor, Handler* h, std::atomic<uint64_t>* accepted) {
  for (;;) {
    error_code ec;
    tcp::socket sock = co_await acceptor.async_accept(ec_await(ec));
    if (ec) {
      if (!acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
      // EMFILE and friends: back off briefly instead of spinning.
      asio::steady_timer t(acceptor.get_executor(), std::chrono::milliseconds(20));
      co_await t.async_wait(ec_await(ec));
      continue;
    }
    if (accepted) accepted->fetch_add(1, std::memory_order_relaxed);
    asio::co_spawn(acceptor.get_executor(), run_session(std::move(sock), h), asio::detached);
  }
}

}  // namespace sluice::net
