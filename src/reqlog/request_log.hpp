// reqlog/request_log.hpp: one JSON line per request, off the hot path.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "metrics/metrics.hpp"

namespace sluice::reqlog {

class RequestLog {
 public:
  // Appends to `path` (created 0640). Total queued lines are bounded by `capacity`.
  RequestLog(std::string path, size_t workers, size_t capacity, metrics::Registry& metrics);
  ~RequestLog();
  RequestLog(const RequestLog&) = delete;
  RequestLog& operator=(const RequestLog&) = delete;

  // Opens the file and starts the writer thread. Returns an error message or "".
  std::string start();
  // Flushes everything queued and joins the writer.
  void stop();

  // Never blocks on I/O: queues the line or drops it (counted) when the worker's queue is full.
  void push(size_t worker, std::string line);

 private:
  struct Queue {
    std::mutex mu;
    std::vector<std::string> lines;
  };
  void run();
  size_t drain_once();

  std::string path_;
  size_t per_worker_cap_;
  metrics::Registry& metrics_;
  std::vector<std::unique_ptr<Queue>> queues_;
  std::FILE* file_ = nullptr;
  std::thread writer_;
  std::mutex wake_mu_;
  std::condition_variable wake_;
  std::atomic<bool> stopping_{false};
};

}  // namespace sluice::reqlog
