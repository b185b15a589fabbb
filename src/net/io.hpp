// net/io.hpp: reads and writes that touch the event loop only when the socket makes them wait.
//
// Beast's and Asio's composed operations never complete inside the call that starts them:
// a read served from bytes already buffered, or a write the kernel took at once, is posted
// to the event loop, and every post costs Asio's loop a non-blocking epoll_wait before the
// coroutine resumes (about five per proxied request, measured with strace). These helpers
// do the work in place when they can: the parser takes what is buffered, the socket takes
// what it will without blocking, and only the rest goes through an asynchronous operation
// (with the stream's timeout, as before).
#pragma once
#include "net/asio.hpp"

namespace sluice::net {

// One parse step, as http::async_read_some: what is buffered goes to the parser first; the
// socket is read only when the parser needs more. On end of file, `http::error::end_of_stream`
// when nothing of a message was received, else what put_eof says.
template <class Stream, bool isRequest>
awaitable<void> parse_some(Stream& stream, beast::flat_buffer& buf, http::basic_parser<isRequest>& p,
                           error_code& ec) {
  ec = {};
  if (buf.size() > 0) {
    buf.consume(p.put(buf.data(), ec));
    if (ec != http::error::need_more) co_return;
    ec = {};
  }
  for (;;) {
    const size_t size = beast::read_size(buf, 65536);
    if (size == 0) {
      ec = http::error::buffer_overflow;
      co_return;
    }
    const size_t n = co_await stream.async_read_some(buf.prepare(size), ec_await(ec));
    if (ec == asio::error::eof) {
      ec = {};
      if (p.got_some()) {
        p.put_eof(ec);
      } else {
        ec = http::error::end_of_stream;
      }
      co_return;
    }
    if (ec) co_return;
    buf.commit(n);
    buf.consume(p.put(buf.data(), ec));
    if (ec != http::error::need_more) co_return;
    ec = {};
  }
}

// As http::async_read_header: parse steps until the header is complete.
template <class Stream, bool isRequest>
awaitable<void> parse_header(Stream& stream, beast::flat_buffer& buf, http::basic_parser<isRequest>& p,
                             error_code& ec) {
  ec = {};
  p.eager(false);  // stop at the end of the header (as http::async_read_header)
  while (!ec && !p.is_header_done()) co_await parse_some(stream, buf, p, ec);
}

// As http::async_read: parse steps until the message is complete.
template <class Stream, bool isRequest>
awaitable<void> parse_message(Stream& stream, beast::flat_buffer& buf, http::basic_parser<isRequest>& p,
                              error_code& ec) {
  ec = {};
  p.eager(true);  // a whole chunked body per step, not one chunk (as http::async_read)
  while (!ec && !p.is_done()) co_await parse_some(stream, buf, p, ec);
}

// Writes all of `buffers`: what the socket takes at once in place, the rest with an
// asynchronous write under the stream's timeout.
template <class Buffers>
awaitable<error_code> write_all(beast::tcp_stream& stream, const Buffers& buffers) {
  error_code ec;
  tcp::socket& sock = stream.socket();
  if (!sock.non_blocking()) sock.non_blocking(true, ec);  // a write that would block returns instead
  size_t n = ec ? 0 : asio::write(sock, buffers, ec);
  if (!ec) co_return ec;
  if (ec != asio::error::would_block && ec != asio::error::try_again) co_return ec;
  beast::buffers_suffix<Buffers> rest(buffers);
  rest.consume(n);
  ec = {};
  co_await asio::async_write(stream, rest, ec_await(ec));
  co_return ec;
}

// TLS streams keep the plain asynchronous write.
template <class Buffers>
awaitable<error_code> write_all(beast::ssl_stream<beast::tcp_stream>& stream, const Buffers& buffers) {
  error_code ec;
  co_await asio::async_write(stream, buffers, ec_await(ec));
  co_return ec;
}

}  // namespace sluice::net
