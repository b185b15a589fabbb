// The forwarder and the relay of one gateway worker, in process, over real sockets: a
// scripted upstream (plain POSIX sockets, one thread per connection) answers as a test
// needs — an error status, silence, a stream that is cut or never sends [DONE], garbage —
// and a blocking client reads exactly what sluice sent.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "config/loader.hpp"
#include "gateway/worker.hpp"
#include "reqlog/request_log.hpp"
#include "metrics/metrics.hpp"

namespace sluice::gateway {

namespace {

bool send_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    s.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads one HTTP request (head and Content-Length body); "" when the peer closed.
std::string read_request(int fd) {
  std::string in;
  char buf[4096];
  size_t head_end = std::string::npos;
  size_t want = 0;
  for (;;) {
    if (head_end == std::string::npos) {
      head_end = in.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        size_t cl = in.find("Content-Length: ");
        if (cl == std::string::npos) cl = in.find("content-length: ");
        want = head_end + 4 + (cl != std::string::npos && cl < head_end ? std::stoul(in.substr(cl + 16)) : 0);
      }
    }
    if (head_end != std::string::npos && in.size() >= want) return in;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return {};
    in.append(buf, static_cast<size_t>(n));
  }
}

int listen_loopback(int& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(fd, 64);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

// A scripted upstream. `serve(fd, request, n)` answers the n-th request (0-based, over all
// connections) and returns whether the connection stays open.
class Upstream {
 public:
  using Serve = std::function<bool(int fd, const std::string& request, int n)>;
  explicit Upstream(Serve serve) : serve_(std::move(serve)) {
    fd_ = listen_loopback(port_);
    accept_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) continue;
        std::lock_guard<std::mutex> lock(mu_);
        open_.insert(c);
        conns_.emplace_back([this, c] {
          for (;;) {
            std::string req = read_request(c);
            if (req.empty()) break;
            int n;
            {
              std::lock_guard<std::mutex> l(mu_);
              n = static_cast<int>(seen_.size());
              seen_.push_back(req);
            }
            if (!serve_(c, req, n)) break;
          }
          std::lock_guard<std::mutex> l(mu_);
          open_.erase(c);
          ::close(c);
        });
      }
    });
  }
  ~Upstream() {
    stop_ = true;
    accept_.join();
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    std::vector<std::thread> cs;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cs.swap(conns_);
      for (int c : open_) ::shutdown(c, SHUT_RDWR);  // wakes a script waiting on its socket
    }
    for (auto& t : cs) t.join();
  }
  int port() const { return port_; }
  size_t requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_.size();
  }
  std::string request(size_t i) {
    std::lock_guard<std::mutex> lock(mu_);
    return i < seen_.size() ? seen_[i] : std::string();
  }

 private:
  Serve serve_;
  int fd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread accept_;
  std::mutex mu_;
  std::vector<std::thread> conns_;
  std::set<int> open_;
  std::vector<std::string> seen_;
};

bool answer_json(int fd, int status, std::string_view body, std::string_view extra = "") {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\nContent-Length: " +
                  std::to_string(body.size()) + "\r\n" + std::string(extra) + "\r\n" + std::string(body);
  return send_all(fd, r);
}

const std::string kChat =
    R"({"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}})";

std::string chunk(std::string_view delta, std::string_view finish = "null") {
  return "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":" +
         std::string(delta) + ",\"finish_reason\":" + std::string(finish) + "}]}\n\n";
}
const std::string kUsageChunk =
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n";

// An SSE response head, then the given events written one by one, close-delimited.
bool answer_stream(int fd, const std::vector<std::string>& events) {
  if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")) return false;
  for (const auto& e : events) {
    if (!send_all(fd, e)) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;  // close: the end of the body
}

// One gateway worker on its own thread, listening on a loopback port.
class Gateway {
 public:
  explicit Gateway(const std::string& yaml) {
    auto r = config::load_string(yaml, "t.yaml");
    config::validate(r);
    EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0]);
    shared_.metrics = std::make_unique<metrics::Registry>(1);
    std::string err;
    auto snap = config::Snapshot::build(r.config, 1, err, {}, &shared_.upstream_health);
    EXPECT_TRUE(snap) << err;
    shared_.snapshots.publish(snap);
    worker_ = std::make_unique<Worker>(shared_, 0);
    acceptor_.emplace(worker_->ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port_ = acceptor_->local_endpoint().port();
    asio::co_spawn(worker_->ioc, accept_loop(), asio::detached);
    thread_ = std::thread([this] { worker_->ioc.run(); });
  }
  ~Gateway() {
    worker_->ioc.stop();
    thread_.join();
  }
  Worker& worker() { return *worker_; }
  Shared& shared() { return shared_; }

  // Sends one request with Connection: close and returns everything the gateway sent.
  std::string post(std::string_view body, std::string_view path = "/v1/chat/completions") {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return "connect failed";
    std::string req = "POST " + std::string(path) + " HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n" +
                      "Connection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
    send_all(fd, req);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
    ::close(fd);
    return out;
  }

 private:
  awaitable<void> accept_loop() {
    for (;;) {
      error_code ec;
      tcp::socket s = co_await acceptor_->async_accept(ec_await(ec));
      if (ec) co_return;
      asio::co_spawn(worker_->ioc, net::run_session(std::move(s), worker_.get()), asio::detached);
    }
  }
  Shared shared_;
  std::unique_ptr<Worker> worker_;
  std::optional<tcp::acceptor> acceptor_;
  int port_ = 0;
  std::thread thread_;
};

std::string config_for(const std::vector<int>& ports, std::string_view upstream_extra = "",
                       std::string_view rest = "") {
  std::string y = "upstreams:\n";
  std::string names;
  for (size_t i = 0; i < ports.size(); ++i) {
    std::string n = std::string(1, static_cast<char>('a' + i));
    y += "  - {name: " + n + ", url: 'http://127.0.0.1:" + std::to_string(ports[i]) + "/v1'" +
         std::string(upstream_extra) + "}\n";
    names += (i ? ", " : "") + n;
  }
  y += "routes:\n  - {name: bot, upstreams: [" + names + "], model: pinned}\n";
  y += "limits: {retry_budget: {ratio: 1.0, min_per_second: 100}}\n";
  y += rest;
  return y;
}

const char* kAsk = R"({"model":"bot","messages":[{"role":"user","content":"hi"}]})";
const char* kAskStream = R"({"model":"bot","stream":true,"messages":[{"role":"user","content":"hi"}]})";

std::string body_of(const std::string& response) {
  size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? std::string() : response.substr(at + 4);
}

}  // namespace

TEST(Forwarder, A5xxMovesToTheNextTargetBeforeAnyByteReachesTheClient) {
  Upstream bad([](int fd, const std::string&, int) { return answer_json(fd, 503, R"({"error":{"message":"busy"}})"); });
  Upstream good([](int fd, const std::string&, int) { return answer_json(fd, 200, kChat); });
  Gateway gw(config_for({bad.port(), good.port()}));
  std::string res = gw.post(kAsk);
  EXPECT_EQ(res.substr(0, 12), "HTTP/1.1 200") << res;
  EXPECT_NE(res.find("x-sluice-upstream: b"), std::string::npos) << res;
  EXPECT_EQ(bad.requests(), 1u);
  ASSERT_EQ(good.requests(), 1u);
  // The route's pinned model went upstream, on the upstream's own path.
  EXPECT_EQ(good.request(0).rfind("POST /v1/chat/completions ", 0), 0u) << good.request(0);
  EXPECT_NE(good.request(0).find("\"model\":\"pinned\""), std::string::npos);
}

TEST(Forwarder, ASilentUpstreamIsLeftAfterItsFirstByteDeadline) {
  Upstream silent([](int fd, const std::string&, int) {
    pollfd p{fd, POLLIN, 0};
    ::poll(&p, 1, 3000);  // silent until the gateway gives up on it (or 3 s)
    return false;
  });
  Upstream good([](int fd, const std::string&, int) { return answer_json(fd, 200, kChat); });
  Gateway gw(config_for({silent.port(), good.port()}, ", timeouts: {first_byte_ms: 200}"));
  std::string res = gw.post(kAsk);
  EXPECT_EQ(res.substr(0, 12), "HTTP/1.1 200") << res;
  EXPECT_EQ(silent.requests(), 1u);  // not sent twice to the upstream that held it
  EXPECT_EQ(good.requests(), 1u);
  // It left on the deadline, not when the silent upstream finally hung up.
  std::string m = gw.shared().metrics->render_prometheus();
  EXPECT_NE(m.find("upstream=\"a\",kind=\"first_byte_timeout\""), std::string::npos) << m;
}

// The first-byte deadline of a client's request is enforced by the worker's sweep. A
// request that first waits (here half a second for the upstream's open breaker, so the
// sweep finds it without a deadline many times) must still be cut at its deadline once it
// is finally sent, not when the silent upstream hangs up.
TEST(Forwarder, AFirstByteDeadlineSetAfterAWaitIsStillEnforced) {
  Upstream up([](int fd, const std::string&, int n) {
    if (n == 0) return answer_json(fd, 503, R"({"error":{"message":"busy"}})");
    pollfd p{fd, POLLIN, 0};
    ::poll(&p, 1, 4000);  // silent until the gateway gives up on it (or 4 s)
    return false;
  });
  std::string cfg =
      config_for({up.port()}, ", timeouts: {first_byte_ms: 300}, breaker: {consecutive_failures: 1, open_ms: 500}");
  cfg.replace(cfg.find("limits: {"), 9, "limits: {max_attempts: 1, unavailable_wait_ms: 3000, ");
  Gateway gw(cfg);
  std::string first = gw.post(kAsk);  // opens the breaker for 500 ms
  EXPECT_EQ(first.substr(0, 12), "HTTP/1.1 503") << first;
  std::string res = gw.post(kAsk);  // waits for the breaker, then meets the silent upstream
  EXPECT_EQ(res.substr(0, 12), "HTTP/1.1 504") << res;
  EXPECT_NE(body_of(res).find("first_byte_timeout"), std::string::npos) << res;
  EXPECT_EQ(up.requests(), 2u);
}

TEST(Forwarder, TheWarmUpProbeGoesThroughTheSameForwarder) {
  Upstream bad([](int fd, const std::string&, int) { return answer_json(fd, 500, "{}"); });
  Upstream good([](int fd, const std::string&, int) { return answer_json(fd, 200, kChat); });
  Gateway gw(config_for({bad.port(), good.port()}, "", "pools:\n  - {name: p, upstreams: [a, b]}\n"));
  EXPECT_EQ(gw.worker().call_blocking("p", "POST", "/chat/completions", kAsk, std::chrono::seconds(10)), "");
  EXPECT_EQ(bad.requests(), 1u);
  EXPECT_EQ(good.requests(), 1u);
  std::string err = gw.worker().call_blocking("a", "POST", "/chat/completions", kAsk, std::chrono::seconds(10));
  EXPECT_NE(err.find("status 500"), std::string::npos) << err;
  EXPECT_NE(gw.worker().call_blocking("nope", "POST", "/chat/completions", kAsk, std::chrono::seconds(10))
                .find("not configured"),
            std::string::npos);
}

TEST(Forwarder, EveryTargetFailingIsOneClearErrorInOpenAIsShape) {
  Upstream a([](int fd, const std::string&, int) { return answer_json(fd, 502, "{}"); });
  Gateway gw(config_for({a.port()}));
  std::string res = gw.post(kAsk);
  EXPECT_EQ(res.substr(0, 12), "HTTP/1.1 502") << res;  // the upstream's own last answer
  EXPECT_GE(a.requests(), 1u);
  EXPECT_LE(a.requests(), 2u);  // max_attempts bounds the retries
}

TEST(Relay, AStreamThatFinishedWithoutDoneIsCompletedForTheClient) {
  Upstream up([](int fd, const std::string&, int) {
    return answer_stream(fd, {chunk(R"({"role":"assistant","content":""})"), chunk(R"({"content":"Hi"})"),
                              chunk("{}", "\"stop\""), kUsageChunk});
  });
  Gateway gw(config_for({up.port()}));
  std::string res = gw.post(kAskStream);
  std::string body = body_of(res);
  EXPECT_EQ(res.substr(0, 12), "HTTP/1.1 200") << res;
  EXPECT_NE(body.find("\"content\":\"Hi\""), std::string::npos);
  EXPECT_NE(body.find("data: [DONE]"), std::string::npos) << body;
  // sluice asked for usage the client did not want: it went upstream and was not relayed.
  EXPECT_NE(up.request(0).find("\"include_usage\":true"), std::string::npos);
  EXPECT_EQ(body.find("\"usage\""), std::string::npos) << body;
  EXPECT_EQ(body.find("\"error\""), std::string::npos);
}

TEST(Relay, AStreamCutMidwayEndsWithAnErrorEventNeverLooksComplete) {
  Upstream up([](int fd, const std::string&, int) {
    return answer_stream(fd, {chunk(R"({"role":"assistant","content":""})"), chunk(R"({"content":"Hal"})")});
  });
  Gateway gw(config_for({up.port()}));
  std::string body = body_of(gw.post(kAskStream));
  EXPECT_NE(body.find("\"content\":\"Hal\""), std::string::npos) << body;
  EXPECT_NE(body.find("\"code\":\"stream_cut\""), std::string::npos) << body;
  EXPECT_EQ(body.find("data: [DONE]"), std::string::npos) << body;
  EXPECT_EQ(up.requests(), 1u);  // bytes had reached the client: never resent
}

TEST(Relay, GarbageIsABadResponseAndAWholeAnswerIsPassedThrough) {
  Upstream up([](int fd, const std::string&, int n) {
    if (n == 0) return answer_json(fd, 200, "<html>proxy error</html>");
    return answer_json(fd, 200, kChat);
  });
  Gateway gw(config_for({up.port()}));
  std::string res = gw.post(kAsk);
  EXPECT_EQ(res.substr(0, 12), "HTTP/1.1 502") << res;
  EXPECT_NE(res.find("\"code\":\"bad_response\""), std::string::npos) << res;
  res = gw.post(kAsk);
  EXPECT_EQ(res.substr(0, 12), "HTTP/1.1 200") << res;
  EXPECT_EQ(body_of(res), kChat);
  // The metrics filter saw both, the answer filter the tokens.
  std::string m = gw.shared().metrics->render_prometheus();
  EXPECT_NE(m.find("bad_response"), std::string::npos);
  EXPECT_NE(m.find("status_class=\"2xx\"} 1"), std::string::npos) << m;
}

TEST(Relay, AnUpstreamErrorStatusIsRelayedWithItsBodyAndRetryAfter) {
  Upstream up([](int fd, const std::string&, int) {
    return answer_json(fd, 400, R"({"error":{"message":"bad param","code":"invalid_value"}})");
  });
  Gateway gw(config_for({up.port()}));
  std::string res = gw.post(kAsk);
  EXPECT_EQ(res.substr(0, 12), "HTTP/1.1 400") << res;
  EXPECT_NE(res.find("invalid_value"), std::string::npos);
  EXPECT_EQ(up.requests(), 1u);  // a 4xx the request caused is never retried
}

TEST(Relay, MidStreamContinueSplicesTheRestFromAPrefillTarget) {
  Upstream cut([](int fd, const std::string&, int) {
    return answer_stream(fd, {chunk(R"({"role":"assistant","content":""})"), chunk(R"({"content":"The capital "})"),
                              chunk(R"({"content":"of France "})")});  // then the connection drops
  });
  Upstream cont([](int fd, const std::string&, int) {
    return answer_stream(fd, {chunk(R"({"role":"assistant","content":""})"), chunk(R"({"content":"is Paris."})"),
                              chunk("{}", "\"stop\""), "data: [DONE]\n\n"});
  });
  Gateway gw(config_for({cut.port(), cont.port()}, ", prefill: true",
                        "fallbacks:\n  - {route: bot, mid_stream: continue}\n"));
  std::string res = gw.post(kAskStream);
  std::string body = body_of(res);
  EXPECT_EQ(res.substr(0, 12), "HTTP/1.1 200") << res;
  EXPECT_EQ(body.find("\"error\""), std::string::npos) << body;
  EXPECT_NE(body.find("data: [DONE]"), std::string::npos) << body;
  size_t a = body.find("The capital "), b = body.find("of France "), c = body.find("is Paris.");
  ASSERT_NE(c, std::string::npos) << body;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);  // one answer, in order, in one stream
  ASSERT_EQ(cont.requests(), 1u);
  const std::string resent = cont.request(0);
  // The continuation carries the answer so far as the assistant's message.
  EXPECT_NE(resent.find(R"({"role":"assistant","content":"The capital of France "})"), std::string::npos) << resent;
  EXPECT_NE(resent.find("\"continue_final_message\":true"), std::string::npos);
}

TEST(Relay, AnAnswerThatFinishedIsNeverContinued) {
  // The choice finished; only the usage sluice asked for and [DONE] are missing.
  Upstream done([](int fd, const std::string&, int) {
    return answer_stream(fd, {chunk(R"({"content":"Complete."})"), chunk("{}", "\"stop\"")});
  });
  Upstream cont([](int fd, const std::string&, int) {
    return answer_stream(fd, {chunk(R"({"content":" And more."})"), chunk("{}", "\"stop\""), "data: [DONE]\n\n"});
  });
  Gateway gw(config_for({done.port(), cont.port()}, ", prefill: true",
                        "fallbacks:\n  - {route: bot, mid_stream: continue}\n"));
  std::string body = body_of(gw.post(kAskStream));
  EXPECT_NE(body.find("Complete."), std::string::npos) << body;
  EXPECT_EQ(body.find("And more."), std::string::npos) << body;
  EXPECT_EQ(cont.requests(), 0u);
}

TEST(Relay, MidStreamRestartOnlyBeforeContentAndNeverToATargetWithoutPrefill) {
  // a cuts before any content: restart resends the request as it was.
  Upstream early([](int fd, const std::string&, int) {
    return answer_stream(fd, {chunk(R"({"role":"assistant","content":""})")});
  });
  Upstream good([](int fd, const std::string&, int) {
    return answer_stream(fd, {chunk(R"({"content":"Hi"})"), chunk("{}", "\"stop\""), "data: [DONE]\n\n"});
  });
  Gateway gw(config_for({early.port(), good.port()}, "", "fallbacks:\n  - {route: bot, mid_stream: restart}\n"));
  std::string body = body_of(gw.post(kAskStream));
  EXPECT_NE(body.find("\"content\":\"Hi\""), std::string::npos) << body;
  EXPECT_NE(body.find("data: [DONE]"), std::string::npos);
  ASSERT_EQ(good.requests(), 1u);
  EXPECT_EQ(good.request(0).find("continue_final_message"), std::string::npos);  // the request as it was

  // After content, restart would repeat text the client already has: the stream ends with
  // an error event instead (and continue needs a target that accepts a prefill).
  Upstream late([](int fd, const std::string&, int) {
    return answer_stream(fd, {chunk(R"({"content":"Hal"})")});
  });
  Upstream other([](int fd, const std::string&, int) { return answer_json(fd, 200, kChat); });
  Gateway gw2(config_for({late.port(), other.port()}, "", "fallbacks:\n  - {route: bot, mid_stream: continue}\n"));
  body = body_of(gw2.post(kAskStream));
  EXPECT_NE(body.find("\"code\":\"stream_cut\""), std::string::npos) << body;
  EXPECT_EQ(other.requests(), 0u);  // no upstream with prefill: true
}

}  // namespace sluice::gateway
