#include "net/http_client.hpp"

#include "core/strings.hpp"
#include "net/asio.hpp"

namespace sluice::net {

HttpResult http_request(const std::string& method, const std::string& url, const std::string& bearer_token,
                        const std::string& body, std::chrono::milliseconds timeout) {
  HttpResult out;
  auto u = parse_url(url);
  if (!u || u->tls) {
    out.error = "admin URL must look like http://host:port";
    return out;
  }
  std::string target = u->base_path;
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  error_code ec;
  tcp::resolver resolver(ioc);
  auto results = resolver.resolve(u->host, std::to_string(u->port), ec);
  if (ec) {
    out.error = "cannot resolve " + u->host + ": " + ec.message();
    return out;
  }
  stream.expires_after(timeout);
  stream.connect(results, ec);
  if (ec) {
    out.error = "cannot connect to " + url + ": " + ec.message();
    return out;
  }
  http::request<http::string_body> req{http::string_to_verb(method), target.empty() ? "/" : target, 11};
  req.set(http::field::host, u->host);
  req.set(http::field::user_agent, "sluice-cli");
  if (!bearer_token.empty()) req.set(http::field::authorization, "Bearer " + bearer_token);
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  http::write(stream, req, ec);
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  if (!ec) http::read(stream, buf, parser, ec);
  if (ec) {
    out.error = "request to " + url + " failed: " + ec.message();
    return out;
  }
  out.status = static_cast<int>(parser.get().result_int());
  out.body = std::move(parser.get().body());
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  return out;
}

}  // namespace sluice::net
