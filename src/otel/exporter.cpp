#include "otel/exporter.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace sluice::otel {

namespace {

using Clock = std::chrono::steady_clock;

int64_t left_ms(Clock::time_point deadline) {
  return std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
}

bool wait_fd(int fd, short events, Clock::time_point deadline) {
  pollfd p{fd, events, 0};
  for (;;) {
    int r = ::poll(&p, 1, static_cast<int>(left_ms(deadline)));
    if (r > 0) return true;
    if (r == 0 || errno != EINTR) return false;
  }
}

}  // namespace

int post_http(const ExporterSettings& s, const std::string& body, int64_t timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(s.host.c_str(), std::to_string(s.port).c_str(), &hints, &res) != 0 || !res) return 0;
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ::freeaddrinfo(res);
    return 0;
  }
  int rc = ::connect(fd, res->ai_addr, res->ai_addrlen);
  ::freeaddrinfo(res);
  int status = 0;
  do {
    if (rc != 0) {
      if (errno != EINPROGRESS || !wait_fd(fd, POLLOUT, deadline)) break;
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) break;
    }
    std::string req = "POST " + s.path + " HTTP/1.1\r\nHost: " + s.host + ":" + std::to_string(s.port) +
                      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\nConnection: close\r\n";
    for (const auto& [k, v] : s.headers) req += k + ": " + v + "\r\n";
    req += "\r\n";
    req += body;
    size_t off = 0;
    bool ok = true;
    while (off < req.size()) {
      ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
      if (n > 0) {
        off += static_cast<size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (!wait_fd(fd, POLLOUT, deadline)) {
          ok = false;
          break;
        }
      } else {
        ok = false;
        break;
      }
    }
    if (!ok) break;
    // Only the status line matters; read at most 4 KiB of the answer.
    char buf[4096];
    size_t got = 0;
    while (got < sizeof buf) {
      if (std::memchr(buf, '\n', got)) break;
      if (!wait_fd(fd, POLLIN, deadline)) break;
      ssize_t n = ::recv(fd, buf + got, sizeof buf - got, 0);
      if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        break;
      }
      got += static_cast<size_t>(n);
    }
    std::string_view line(buf, got);
    if (line.substr(0, 5) == "HTTP/" && line.size() >= 12) status = std::atoi(std::string(line.substr(9, 3)).c_str());
  } while (false);
  ::close(fd);
  return status;
}

Exporter::Exporter(ExporterSettings s) : s_(std::move(s)) {
  queue_.reserve(s_.queue_size);
  thread_ = std::thread([this] { run(); });
}

Exporter::~Exporter() { stop(); }

void Exporter::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

bool Exporter::push(std::vector<Span>&& spans) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || queue_.size() + spans.size() > s_.queue_size) {
      dropped_.fetch_add(spans.size(), std::memory_order_relaxed);
      return false;
    }
    for (Span& sp : spans) queue_.push_back(std::move(sp));  // capacity reserved: no allocation
    wake = queue_.size() >= s_.batch_size;
  }
  if (wake) cv_.notify_one();
  return true;
}

void Exporter::run() {
  std::vector<Span> batch;
  batch.reserve(s_.queue_size);
  int64_t backoff_ms = 0;
  auto next_try = Clock::now();
  for (;;) {
    bool last = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (backoff_ms > 0 && Clock::now() < next_try) {
        // Backing off: keep queueing (the queue bounds it, then drops) until the next try.
        cv_.wait_until(lock, next_try, [&] { return stopping_; });
      } else {
        cv_.wait_for(lock, std::chrono::milliseconds(s_.flush_interval_ms),
                     [&] { return stopping_ || queue_.size() >= s_.batch_size; });
      }
      last = stopping_;
      if (queue_.empty()) {
        if (last) return;
        continue;
      }
      if (!last && Clock::now() < next_try) continue;
      batch.swap(queue_);  // both keep their reserved capacity
    }
    for (size_t off = 0; off < batch.size(); off += s_.batch_size) {
      const size_t n = std::min(s_.batch_size, batch.size() - off);
      if (backoff_ms > 0 && Clock::now() < next_try) {  // the collector is down: count, do not try
        failed_.fetch_add(n, std::memory_order_relaxed);
        continue;
      }
      std::vector<Span> part(std::make_move_iterator(batch.begin() + static_cast<std::ptrdiff_t>(off)),
                             std::make_move_iterator(batch.begin() + static_cast<std::ptrdiff_t>(off + n)));
      const std::string body = encode(part, s_.service_name, s_.service_version);
      const int status = post_http(s_, body, s_.timeout_ms);
      if (status >= 200 && status < 300) {
        exported_.fetch_add(n, std::memory_order_relaxed);
        backoff_ms = 0;
      } else {
        failed_.fetch_add(n, std::memory_order_relaxed);
        backoff_ms = backoff_ms == 0 ? 500 : std::min<int64_t>(backoff_ms * 2, 30000);
        next_try = Clock::now() + std::chrono::milliseconds(backoff_ms);
      }
    }
    batch.clear();
    if (last) {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty()) return;
    }
  }
}

std::string Exporter::prometheus() const {
  std::string out =
      "# HELP sluice_otel_spans_total OpenTelemetry spans by outcome: exported to the collector, dropped (queue full) "
      "or failed (the collector refused or was unreachable).\n"
      "# TYPE sluice_otel_spans_total counter\n";
  out += "sluice_otel_spans_total{outcome=\"exported\"} " + std::to_string(exported()) + "\n";
  out += "sluice_otel_spans_total{outcome=\"dropped\"} " + std::to_string(dropped()) + "\n";
  out += "sluice_otel_spans_total{outcome=\"failed\"} " + std::to_string(failed()) + "\n";
  return out;
}

}  // namespace sluice::otel
