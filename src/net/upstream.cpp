#include "net/upstream.hpp"

#include "net/io.hpp"

#include <array>

namespace sluice::net {

UpstreamConn::UpstreamConn(asio::io_context& ioc, asio::ssl::context* tls) {
  // Each read is sized by the buffer's free capacity (512 bytes when empty): 2 KiB takes an
  // answer's head or a burst of stream events in one read, and the buffer grows for more.
  // It lives as long as the connection (every open stream holds one).
  buf_.reserve(2048);
  if (tls) {
    tls_ = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc, *tls);
  } else {
    plain_ = std::make_unique<beast::tcp_stream>(ioc);
  }
}

beast::tcp_stream& UpstreamConn::tcp() { return tls_ ? beast::get_lowest_layer(*tls_) : *plain_; }

void UpstreamConn::expires_after(std::chrono::milliseconds d) { tcp().expires_after(d); }
void UpstreamConn::expires_at(std::chrono::steady_clock::time_point t) { tcp().expires_at(t); }
void UpstreamConn::cancel() {
  healthy = false;
  error_code ec;
  tcp().socket().cancel(ec);
  tcp().socket().close(ec);
}
void UpstreamConn::close() {
  healthy = false;
  error_code ec;
  tcp().socket().shutdown(tcp::socket::shutdown_both, ec);
  tcp().socket().close(ec);
}

awaitable<error_code> UpstreamConn::connect(const std::vector<tcp::endpoint>& eps, const std::string& sni_host,
                                            bool verify) {
  error_code ec;
  co_await tcp().async_connect(eps, ec_await(ec));
  if (ec) co_return ec;
  tcp().socket().set_option(tcp::no_delay(true), ec);
  ec = {};
  if (tls_) {
    if (!SSL_set_tlsext_host_name(tls_->native_handle(), sni_host.c_str())) {
      co_return error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
    }
    if (verify) tls_->set_verify_callback(asio::ssl::host_name_verification(sni_host));
    co_await tls_->async_handshake(asio::ssl::stream_base::client, ec_await(ec));
  }
  co_return ec;
}

awaitable<error_code> UpstreamConn::write(std::string_view head, std::string_view body) {
  error_code ec;
  std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(body)};
  if (tls_) {
    ec = co_await write_all(*tls_, bufs);
  } else {
    ec = co_await write_all(*plain_, bufs);
  }
  co_return ec;
}

awaitable<error_code> UpstreamConn::read_header(http::response_parser<http::buffer_body>& p) {
  error_code ec;
  if (tls_) {
    co_await parse_header(*tls_, buf_, p, ec);
  } else {
    co_await parse_header(*plain_, buf_, p, ec);
  }
  co_return ec;
}

awaitable<size_t> UpstreamConn::read_some(http::response_parser<http::buffer_body>& p, char* data, size_t cap,
                                          error_code& ec) {
  p.get().body().data = data;
  p.get().body().size = cap;
  ec = {};
  if (tls_) {
    co_await parse_some(*tls_, buf_, p, ec);
  } else {
    co_await parse_some(*plain_, buf_, p, ec);
  }
  if (ec == http::error::need_buffer) ec = {};
  co_return cap - p.get().body().size;
}

UpstreamPool::UpstreamPool(asio::io_context& ioc, UpstreamEndpoint ep) : ioc_(ioc), ep_(std::move(ep)) {
  if (ep_.tls) {
    ssl_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    error_code ec;
    if (!ep_.ca_file.empty()) {
      ssl_->load_verify_file(ep_.ca_file, ec);
    } else {
      ssl_->set_default_verify_paths(ec);
    }
    if (ec) tls_error = "cannot load CA certificates: " + ec.message();
    ssl_->set_verify_mode(ep_.tls_verify ? asio::ssl::verify_peer : asio::ssl::verify_none);
  }
}

awaitable<std::unique_ptr<UpstreamConn>> UpstreamPool::acquire(std::chrono::milliseconds timeout,
                                                              ErrorKind& error_kind, bool fresh) {
  if (!fresh) {
    while (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      // A pooled connection the upstream has closed shows as readable (EOF): drop it. Only
      // connections idle for a while are probed (a syscall); for the rest a stale one is
      // caught by the caller's one retry on a fresh connection.
      if (std::chrono::steady_clock::now() - c->idle_since > std::chrono::seconds(1)) {
        char probe;
        ssize_t r = ::recv(c->tcp().socket().native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) continue;
      }
      c->reused = true;
      co_return c;
    }
  }
  auto now = std::chrono::steady_clock::now();
  if (resolved_.empty() || now - resolved_at_ > std::chrono::seconds(30)) {
    error_code ec;
    auto addr = asio::ip::make_address(ep_.host, ec);
    if (!ec) {
      resolved_ = {tcp::endpoint(addr, ep_.port)};
    } else {
      tcp::resolver resolver(ioc_);
      auto results = co_await resolver.async_resolve(ep_.host, std::to_string(ep_.port), ec_await(ec));
      if (ec || results.empty()) {
        error_kind = ErrorKind::kDnsFailed;
        co_return nullptr;
      }
      resolved_.clear();
      for (const auto& r : results) resolved_.push_back(r.endpoint());
    }
    resolved_at_ = now;
  }
  auto c = std::make_unique<UpstreamConn>(ioc_, ssl_.get());
  c->expires_after(timeout);
  error_code ec = co_await c->connect(resolved_, ep_.host, ep_.tls_verify);
  if (ec) {
    if (ec == beast::error::timeout) {
      error_kind = ErrorKind::kConnectTimeout;
    } else if (ec.category() == asio::error::get_ssl_category() || ec.category() == asio::ssl::error::get_stream_category()) {
      error_kind = ErrorKind::kTlsFailed;
    } else {
      error_kind = ErrorKind::kConnectFailed;
    }
    resolved_at_ = {};  // re-resolve next time
    co_return nullptr;
  }
  co_return c;
}

void UpstreamPool::release(std::unique_ptr<UpstreamConn> c) {
  if (!c || !c->healthy || idle_.size() >= ep_.max_idle) {
    if (c) c->close();
    return;
  }
  c->tcp().expires_never();
  c->idle_since = std::chrono::steady_clock::now();
  idle_.push_back(std::move(c));
}

}  // namespace sluice::net
