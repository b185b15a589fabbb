#include "eval/client.hpp"

#include <cstdlib>

#include "net/asio.hpp"

namespace sluice::eval {

namespace {

// True once `body` holds a content delta/message with at least one character.
bool has_content(const std::string& body, size_t& scan_from) {
  static const std::string_view key = "\"content\":\"";
  size_t start = scan_from > key.size() ? scan_from - key.size() : 0;
  for (size_t p = body.find(key, start); p != std::string::npos; p = body.find(key, p + 1)) {
    size_t v = p + key.size();
    if (v < body.size() && body[v] != '"') return true;
  }
  scan_from = body.size();
  return false;
}

}  // namespace

struct HttpClient::Impl {
  std::string host;
  uint16_t port;
  asio::io_context ioc;
  beast::tcp_stream stream{ioc};
  bool connected = false;

  void close() {
    error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.socket().close(ec);
    connected = false;
  }

  bool connect(std::string& error, std::chrono::milliseconds timeout) {
    error_code ec;
    tcp::resolver resolver(ioc);
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec) {
      error = "cannot resolve " + host + ": " + ec.message();
      return false;
    }
    stream.expires_after(timeout);
    stream.connect(results, ec);
    if (ec) {
      error = "cannot connect to " + host + ":" + std::to_string(port) + ": " + ec.message();
      return false;
    }
    stream.socket().set_option(tcp::no_delay(true), ec);
    connected = true;
    return true;
  }

  // One attempt on the current connection. `stale` is set when a reused connection failed
  // before any response byte (the server closed it while idle): safe to retry once.
  HttpReply exchange(const std::string& target, const std::string& body, const std::string& bearer,
                     std::chrono::milliseconds timeout, bool& stale) {
    HttpReply out;
    auto t0 = std::chrono::steady_clock::now();
    auto ms_since = [&] {
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    };
    http::request<http::string_body> req{http::verb::post, target, 11};
    req.set(http::field::host, host);
    req.set(http::field::user_agent, "sluice-eval");
    req.set(http::field::content_type, "application/json");
    // Internal traffic is the lowest tier: a gateway sheds eval calls before users' requests.
    req.set("x-sluice-priority", "sheddable");
    req.keep_alive(true);
    if (!bearer.empty()) req.set(http::field::authorization, "Bearer " + bearer);
    req.body() = body;
    req.prepare_payload();
    error_code ec;
    stream.expires_after(timeout);
    http::write(stream, req, ec);
    if (ec) {
      stale = true;
      out.error = "write: " + ec.message();
      return out;
    }
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxReplyBytes);
    std::string chunked;  // chunked bodies arrive here (the callback sees them first)
    bool is_chunked = false;
    auto on_chunk = [&](std::uint64_t, std::string_view data, error_code& cec) -> std::size_t {
      if (chunked.size() + data.size() > kMaxReplyBytes) {
        cec = http::error::body_limit;
        return 0;
      }
      chunked.append(data.data(), data.size());
      return data.size();
    };
    parser.on_chunk_body(on_chunk);
    http::read_header(stream, buf, parser, ec);
    if (ec) {
      stale = (ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
               ec == asio::error::eof || ec == asio::error::broken_pipe);
      out.error = "read: " + ec.message();
      return out;
    }
    is_chunked = parser.chunked();
    size_t scan = 0;
    while (!parser.is_done()) {
      http::read_some(stream, buf, parser, ec);
      if (ec) break;
      if (out.ttft_ms < 0) {
        const std::string& b = is_chunked ? chunked : parser.get().body();
        if (has_content(b, scan)) out.ttft_ms = ms_since();
      }
    }
    out.total_ms = ms_since();
    if (ec) {
      out.error = "read body: " + ec.message();
      close();
      return out;
    }
    auto& res = parser.get();
    out.status = static_cast<int>(res.result_int());
    out.body = is_chunked ? std::move(chunked) : std::move(res.body());
    out.release = std::string(res["x-sluice-release"]);
    out.request_id = std::string(res["x-request-id"]);
    auto ra = res[http::field::retry_after];
    if (!ra.empty()) out.retry_after_s = std::atoi(std::string(ra).c_str());
    if (!res.keep_alive()) close();
    return out;
  }
};

HttpClient::HttpClient(std::string host, uint16_t port) : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
}

HttpClient::~HttpClient() { impl_->close(); }

HttpReply HttpClient::post(const std::string& target, const std::string& body, const std::string& bearer,
                           std::chrono::milliseconds timeout) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool reused = impl_->connected;
    if (!impl_->connected) {
      HttpReply r;
      if (!impl_->connect(r.error, timeout)) return r;
    }
    bool stale = false;
    HttpReply r = impl_->exchange(target, body, bearer, timeout, stale);
    if (r.status != 0) return r;
    impl_->close();
    if (!(stale && reused)) return r;  // a fresh connection failing is a real error
  }
  HttpReply r;
  r.error = "connection closed";
  return r;
}

}  // namespace sluice::eval
