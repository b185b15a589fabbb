// net/asio.hpp: the one prelude for Boost.Asio/Beast. Include this, never the Boost headers
// directly: Boost 1.74's awaitable.hpp uses std::exchange without including <utility>.
#pragma once
#include <utility>  // must precede Asio (see toolchain notes)

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace sluice {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using boost::asio::awaitable;
using boost::system::error_code;

// `co_await op(..., ec_await(ec))`: completion errors land in ec instead of throwing.
inline auto ec_await(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }
}  // namespace sluice
