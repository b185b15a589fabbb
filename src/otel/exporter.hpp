// otel/exporter.hpp: hands finished spans from the data plane to a collector. Workers push
// into one bounded queue (a short critical section, no allocation: the queue's storage is
// reserved up front); a full queue drops the spans and counts them, it never blocks. One
// thread batches (batch_size, or every flush_interval_ms) and posts OTLP/HTTP JSON with a
// timeout; while the collector fails it backs off (doubling up to 30 s) and the batches
// that could not be sent are counted as failed, not retried (traces are not worth memory).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "otel/span.hpp"

namespace sluice::otel {

struct ExporterSettings {
  std::string host = "127.0.0.1";
  int port = 4318;
  std::string path = "/v1/traces";  // the endpoint's base path + /v1/traces
  std::vector<std::pair<std::string, std::string>> headers;  // values already resolved
  size_t batch_size = 256;
  int64_t flush_interval_ms = 1000;
  size_t queue_size = 4096;
  int64_t timeout_ms = 2000;  // connect + send + response
  std::string service_name = "sluice", service_version;
};

// The result of one POST: an HTTP status, 0 when the collector could not be reached.
int post_http(const ExporterSettings& s, const std::string& body, int64_t timeout_ms);

class Exporter {
 public:
  explicit Exporter(ExporterSettings s);
  ~Exporter();  // stops: what is queued gets one last flush
  Exporter(const Exporter&) = delete;
  Exporter& operator=(const Exporter&) = delete;

  // From any worker; false (and counted) when the queue has no room for all of them.
  bool push(std::vector<Span>&& spans);
  void stop();

  uint64_t exported() const { return exported_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  uint64_t failed() const { return failed_.load(std::memory_order_relaxed); }
  // The sluice_otel_spans_total series for /metrics.
  std::string prometheus() const;

 private:
  void run();

  ExporterSettings s_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Span> queue_;
  bool stopping_ = false;
  std::atomic<uint64_t> exported_{0}, dropped_{0}, failed_{0};
  std::thread thread_;
};

}  // namespace sluice::otel
