#include "reqlog/request_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace sluice::reqlog {

RequestLog::RequestLog(std::string path, size_t workers, size_t capacity, metrics::Registry& metrics)
    : path_(std::move(path)), per_worker_cap_(std::max<size_t>(16, capacity / std::max<size_t>(1, workers))),
      metrics_(metrics) {
  for (size_t i = 0; i < workers; ++i) queues_.push_back(std::make_unique<Queue>());
}

RequestLog::~RequestLog() { stop(); }

std::string RequestLog::start() {
  int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return "cannot open request log " + path_ + ": " + std::strerror(errno);
  file_ = ::fdopen(fd, "a");
  if (!file_) {
    ::close(fd);
    return "cannot open request log " + path_;
  }
  writer_ = std::thread([this] { run(); });
  return "";
}

void RequestLog::stop() {
  if (!writer_.joinable()) return;
  stopping_.store(true);
  wake_.notify_all();
  writer_.join();
  drain_once();
  if (file_) {
    std::fclose(file_);
    file_ = nullptr;
  }
}

void RequestLog::push(size_t worker, std::string line) {
  Queue& q = *queues_[worker % queues_.size()];
  {
    std::lock_guard<std::mutex> lock(q.mu);
    if (q.lines.size() < per_worker_cap_) {
      q.lines.push_back(std::move(line));
      return;
    }
  }
  metrics_.reqlog_dropped.fetch_add(1, std::memory_order_relaxed);
}

size_t RequestLog::drain_once() {
  size_t n = 0;
  std::vector<std::string> batch;
  for (auto& q : queues_) {
    {
      std::lock_guard<std::mutex> lock(q->mu);
      batch.swap(q->lines);
    }
    for (const auto& line : batch) {
      if (file_) {
        std::fwrite(line.data(), 1, line.size(), file_);
        std::fputc('\n', file_);
      }
    }
    n += batch.size();
    batch.clear();
  }
  if (file_ && n) std::fflush(file_);
  metrics_.reqlog_written.fetch_add(n, std::memory_order_relaxed);
  return n;
}

void RequestLog::run() {
  while (!stopping_.load()) {
    drain_once();
    std::unique_lock<std::mutex> lock(wake_mu_);
    wake_.wait_for(lock, std::chrono::milliseconds(50), [this] { return stopping_.load(); });
  }
}

}  // namespace sluice::reqlog
