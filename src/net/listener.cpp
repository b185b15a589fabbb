#include "net/listener.hpp"

namespace sluice::net {

std::vector<tcp::acceptor> bind_acceptors(const std::vector<asio::io_context*>& contexts, const std::string& host,
                                          uint16_t port, std::string& error, uint16_t& bound_port) {
  std::vector<tcp::acceptor> out;
  error_code ec;
  std::string h = host == "localhost" ? "127.0.0.1" : host;
  auto addr = asio::ip::make_address(h, ec);
  if (ec) {
    error = "invalid listen address '" + host + "' (use an IP address)";
    return {};
  }
  tcp::endpoint ep(addr, port);
  for (asio::io_context* ioc : contexts) {
    tcp::acceptor a(*ioc);
    a.open(ep.protocol(), ec);
    if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) {
      int one = 1;
      if (::setsockopt(a.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        ec = error_code(errno, boost::system::system_category());
    }
    if (!ec) a.bind(ep, ec);
    if (!ec) a.listen(4096, ec);
    if (ec) {
      error = "cannot listen on " + host + ":" + std::to_string(ep.port()) + ": " + ec.message();
      return {};
    }
    ep.port(a.local_endpoint().port());  // port 0: the rest bind to the chosen port
    out.push_back(std::move(a));
  }
  bound_port = ep.port();
  return out;
}

}  // namespace sluice::net
