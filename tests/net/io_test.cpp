// net/io.hpp over real loopback sockets: parse steps that take what is buffered first and
// read only when the parser needs more, and writes that fall back to an asynchronous write
// when the socket will not take everything at once.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "net/io.hpp"

namespace sluice::net {
namespace {

// A connected pair of loopback sockets on one event loop: `server` is read by the code
// under test, `peer` is what the test writes to (synchronously).
struct Pair {
  asio::io_context ioc;
  beast::tcp_stream server{ioc};
  tcp::socket peer{ioc};
  Pair() {
    tcp::acceptor acc(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    peer.connect(acc.local_endpoint());
    server.socket() = acc.accept();
  }
  void send(std::string_view s) { asio::write(peer, asio::buffer(s)); }
  // Runs `co` to completion on the loop.
  template <class F>
  void run(F co) {
    bool done = false;
    asio::co_spawn(ioc, [&]() -> awaitable<void> {
      co_await co();
      done = true;
    }, asio::detached);
    ioc.run();
    ioc.restart();
    ASSERT_TRUE(done);
  }
};

TEST(ParseMessage, ReadsPipelinedRequestsOneAtATimeFromOneWrite) {
  Pair p;
  p.send(
      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
      "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nbye");
  beast::flat_buffer buf;
  std::string first, second, first_body, second_body;
  error_code ec1, ec2;
  p.run([&]() -> awaitable<void> {
    http::request_parser<http::string_body> a;
    co_await parse_message(p.server, buf, a, ec1);
    first = std::string(a.get().target());
    first_body = a.get().body();
    http::request_parser<http::string_body> b;
    co_await parse_message(p.server, buf, b, ec2);
    second = std::string(b.get().target());
    second_body = b.get().body();
  });
  EXPECT_FALSE(ec1) << ec1.message();
  EXPECT_FALSE(ec2) << ec2.message();
  EXPECT_EQ(first, "/a");
  EXPECT_EQ(first_body, "hello");
  EXPECT_EQ(second, "/b");
  EXPECT_EQ(second_body, "bye");
  EXPECT_EQ(buf.size(), 0u);
}

TEST(ParseMessage, WaitsForABodyThatArrivesLater) {
  Pair p;
  p.send("POST /late HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234");
  beast::flat_buffer buf;
  std::string body;
  bool header_done = false;
  error_code ec;
  p.run([&]() -> awaitable<void> {
    http::request_parser<http::string_body> r;
    co_await parse_header(p.server, buf, r, ec);
    header_done = r.is_header_done() && !r.is_done();
    p.send("56789");  // the rest only now: the next step must read the socket
    co_await parse_message(p.server, buf, r, ec);
    body = r.get().body();
  });
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(header_done);
  EXPECT_EQ(body, "0123456789");
}

TEST(ParseMessage, EndOfFileBeforeAnythingIsEndOfStream) {
  Pair p;
  p.peer.close();
  beast::flat_buffer buf;
  error_code ec;
  p.run([&]() -> awaitable<void> {
    http::request_parser<http::string_body> r;
    co_await parse_message(p.server, buf, r, ec);
  });
  EXPECT_EQ(ec, http::error::end_of_stream);
}

TEST(ParseMessage, EndOfFileMidHeaderIsAPartialMessage) {
  Pair p;
  p.send("POST /cut HTTP/1.1\r\nHost: x\r\nContent-Le");
  p.peer.shutdown(tcp::socket::shutdown_send);
  beast::flat_buffer buf;
  error_code ec;
  p.run([&]() -> awaitable<void> {
    http::request_parser<http::string_body> r;
    co_await parse_message(p.server, buf, r, ec);
  });
  EXPECT_EQ(ec, http::error::partial_message);
}

TEST(ParseMessage, HeaderAndBodyLimitsStillApply) {
  {
    Pair p;
    p.send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(500, 'a') + "\r\n\r\n");
    beast::flat_buffer buf;
    error_code ec;
    p.run([&]() -> awaitable<void> {
      http::request_parser<http::string_body> r;
      r.header_limit(128);
      co_await parse_header(p.server, buf, r, ec);
    });
    EXPECT_EQ(ec, http::error::header_limit);
  }
  {
    Pair p;
    p.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n");
    beast::flat_buffer buf;
    error_code ec;
    p.run([&]() -> awaitable<void> {
      http::request_parser<http::string_body> r;
      r.body_limit(10);
      co_await parse_message(p.server, buf, r, ec);
    });
    EXPECT_EQ(ec, http::error::body_limit);
  }
}

TEST(ParseSome, FillsABufferBodyFromWhatIsBufferedThenFromTheSocket) {
  Pair p;
  p.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n");
  beast::flat_buffer buf;
  std::string got;
  error_code ec;
  bool done = false;
  p.run([&]() -> awaitable<void> {
    http::response_parser<http::buffer_body> r;
    co_await parse_header(p.server, buf, r, ec);
    char tmp[3];
    int sent_rest = 0;
    while (!ec && !r.is_done()) {
      r.get().body().data = tmp;
      r.get().body().size = sizeof tmp;
      co_await parse_some(p.server, buf, r, ec);
      if (ec == http::error::need_buffer) ec = {};
      got.append(tmp, sizeof tmp - r.get().body().size);
      if (got == "abcde" && !sent_rest++) p.send("3\r\nfgh\r\n0\r\n\r\n");
    }
    done = r.is_done();
  });
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(done);
  EXPECT_EQ(got, "abcdefgh");
}

TEST(WriteAll, DeliversMoreThanTheSocketTakesAtOnceInOrder) {
  Pair p;
  // Several MiB: far beyond the loopback socket's buffers, so part of it is written by the
  // asynchronous fallback while the peer reads.
  std::string big(6 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  std::string received;
  std::optional<error_code> wec;
  asio::co_spawn(p.ioc, [&]() -> awaitable<void> { wec = co_await write_all(p.server, asio::buffer(big)); },
                 asio::detached);
  std::array<char, 65536> chunk;
  auto read_more = [&](auto& self) -> void {
    p.peer.async_read_some(asio::buffer(chunk), [&](error_code ec, size_t n) {
      received.append(chunk.data(), n);
      if (!ec && received.size() < big.size()) self(self);
    });
  };
  read_more(read_more);
  p.ioc.run();
  ASSERT_TRUE(wec.has_value());
  EXPECT_FALSE(*wec) << wec->message();
  EXPECT_EQ(received.size(), big.size());
  EXPECT_TRUE(received == big);
}

TEST(WriteAll, ReportsAPeerThatIsGone) {
  Pair p;
  p.peer.close();
  std::string chunk(1 << 20, 'x');
  std::optional<error_code> wec;
  p.run([&]() -> awaitable<void> {
    error_code ec;
    for (int i = 0; i < 16 && !ec; ++i) ec = co_await write_all(p.server, asio::buffer(chunk));
    wec = ec;
  });
  ASSERT_TRUE(wec.has_value());
  EXPECT_TRUE(*wec);  // broken pipe or reset, never a hang or a crash
}

}  // namespace
}  // namespace sluice::net
