#include "incident/ring.hpp"

#include "core/error.hpp"

namespace sluice::incident {

void EventRing::push(Event e) {
  std::lock_guard<std::mutex> lock(mu_);
  if (events_.size() >= capacity_) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  events_.push_back(std::move(e));
}

std::vector<Event> EventRing::drain() {
  std::vector<Event> out;
  std::lock_guard<std::mutex> lock(mu_);
  out.swap(events_);
  return out;
}

Event breaker_event(const std::string& identity, upstream::BreakerState from, upstream::BreakerState to,
                    std::string_view reason, int64_t now_ms) {
  using upstream::BreakerState;
  Event e;
  e.at = now_ms;
  e.kind = std::string("breaker.") + upstream::state_name(to);
  e.subject = identity.substr(0, identity.find('|'));
  if (to == BreakerState::kOpen) {
    const bool by_check = reason.starts_with("health check");
    e.summary = "upstream " + e.subject + " ejected (breaker open" + (by_check ? ", by its health check" : "") +
                "): " + std::string(reason);
  } else if (to == BreakerState::kHalfOpen) {
    e.summary = "upstream " + e.subject + " half-open: the next request probes it";
  } else {
    e.summary = "upstream " + e.subject + " readmitted (breaker closed)";
  }
  e.detail = "{\"upstream\":";
  append_json_string(e.detail, e.subject);
  e.detail += ",\"from\":\"" + std::string(upstream::state_name(from)) + "\",\"to\":\"" + upstream::state_name(to) + "\"";
  e.detail += ",\"ejected\":" + std::string(to == BreakerState::kOpen ? "true" : "false");
  if (to == BreakerState::kOpen) {
    e.detail += ",\"reason\":";
    append_json_string(e.detail, reason);
  }
  e.detail += "}";
  return e;
}

void BreakerFeed::breaker_changed(const std::string& identity, upstream::BreakerState from, upstream::BreakerState to,
                                  std::string_view reason, int64_t now_ms) {
  ring_.push(breaker_event(identity, from, to, reason, now_ms));
}

Event reload_event(const std::string& source, uint64_t version, const std::string& error, int64_t now_ms) {
  Event e;
  e.at = now_ms;
  e.kind = "config.reload";
  e.subject = source;
  e.summary = error.empty() ? "configuration reloaded from " + source + " (version " + std::to_string(version) + ")"
                            : "configuration reload rejected, the running one kept: " +
                                  error.substr(0, error.find('\n'));
  e.detail = "{\"ok\":" + std::string(error.empty() ? "true" : "false");
  if (error.empty()) e.detail += ",\"version\":" + std::to_string(version);
  else {
    e.detail += ",\"error\":";
    append_json_string(e.detail, error);
  }
  e.detail += "}";
  return e;
}

size_t flush(EventRing& ring, store::Store& s, std::string& error) {
  std::vector<Event> batch = ring.drain();
  if (batch.empty()) return 0;
  try {
    s.append_events(batch);
  } catch (const std::exception& e) {
    error = e.what();
    return 0;
  }
  return batch.size();
}

}  // namespace sluice::incident
