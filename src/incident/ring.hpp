// incident/ring.hpp: what the data plane tells the incident timeline, without touching
// storage. Workers (through upstream::Registry's observer) and the control thread push an
// event only when something CHANGES (a breaker opens, half-opens or closes; a config reload),
// never per request; a push is one short lock and a copy. The control thread drains the
// ring about once a second into the store (`flush`). A full ring drops the newest events and
// counts them: a flapping upstream must not grow memory without bound.
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "store/store.hpp"
#include "upstream/health.hpp"

namespace sluice::incident {

using Event = store::EventRecord;

class EventRing {
 public:
  explicit EventRing(size_t capacity = 4096) : capacity_(capacity) {}
  void push(Event e);
  std::vector<Event> drain();
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  std::mutex mu_;
  std::vector<Event> events_;
  size_t capacity_;
  std::atomic<uint64_t> dropped_{0};
};

// Turns breaker changes into events: "breaker.open" (the upstream is ejected, passively by
// its failures or actively by its health check), "breaker.half_open", "breaker.closed"
// (readmitted). The subject is the upstream's name (its identity up to the first '|').
class BreakerFeed final : public upstream::HealthObserver {
 public:
  explicit BreakerFeed(EventRing& ring) : ring_(ring) {}
  void breaker_changed(const std::string& identity, upstream::BreakerState from, upstream::BreakerState to,
                       std::string_view reason, int64_t now_ms) override;

 private:
  EventRing& ring_;
};

// The event of one breaker change (pure; BreakerFeed pushes it).
Event breaker_event(const std::string& identity, upstream::BreakerState from, upstream::BreakerState to,
                    std::string_view reason, int64_t now_ms);
// The event of a config reload: `error` empty when it was applied as `version`.
Event reload_event(const std::string& source, uint64_t version, const std::string& error, int64_t now_ms);

// What the running gateway shares for the timeline: the ring, its breaker feed, and the
// rollback readiness gauges the control thread renders for /metrics.
struct Hub {
  EventRing events;
  BreakerFeed breakers{events};
  std::mutex metrics_mu;
  std::string readiness_metrics;  // Prometheus text, replaced whole by the control thread
  std::string metrics() {
    std::lock_guard<std::mutex> lock(metrics_mu);
    return readiness_metrics;
  }
};

// Moves the ring's events into the store (control thread); returns how many. A store error
// is reported in `error` and the batch is lost (the ring must not grow while storage fails).
size_t flush(EventRing& ring, store::Store& s, std::string& error);

}  // namespace sluice::incident
