// net/listener.hpp: binding one acceptor per worker on the same address (SO_REUSEPORT),
// refusing an address another process already listens on,
// so the kernel spreads connections and workers share nothing.
#pragma once
#include <string>
#include <vector>

#include "net/asio.hpp"

namespace sluice::net {

// Binds acceptors for each io_context on host:port. Port 0 picks a free port (shared by
// all). On failure returns an empty vector and sets `error`.
std::vector<tcp::acceptor> bind_acceptors(const std::vector<asio::io_context*>& contexts, const std::string& host,
                                          uint16_t port, std::string& error, uint16_t& bound_port);

}  // namespace sluice::net
