#include "upstream/health.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace sluice::upstream {

const char* state_name(BreakerState s) {
  switch (s) {
    case BreakerState::kClosed: return "closed";
    case BreakerState::kOpen: return "open";
    case BreakerState::kHalfOpen: return "half_open";
  }
  return "?";
}

void Health::set_settings(const BreakerSettings& s) {
  std::lock_guard<std::mutex> lock(mu_);
  s_ = s;
  ramp_ms_.store(s.slow_start_ms, std::memory_order_relaxed);
  if (!s_.enabled) state_ = BreakerState::kClosed;
}

void Health::roll_window_locked(int64_t now) {
  const int64_t half = std::max<int64_t>(s_.window_ms / 2, 1);
  if (win_start_ms_ == 0) win_start_ms_ = now;
  if (now - win_start_ms_ >= 2 * half) {  // both halves are stale
    prev_req_ = prev_fail_ = win_req_ = win_fail_ = 0;
    win_start_ms_ = now;
  } else if (now - win_start_ms_ >= half) {
    prev_req_ = win_req_;
    prev_fail_ = win_fail_;
    win_req_ = win_fail_ = 0;
    win_start_ms_ += half;
  }
}

void Health::observe(const std::string& identity, HealthObserver* o) {
  std::lock_guard<std::mutex> lock(mu_);
  identity_ = identity;
  observer_ = o;
}

void Health::changed_locked(BreakerState from, int64_t now) {
  if (observer_ && from != state_) observer_->breaker_changed(identity_, from, state_, reason_, now);
}

void Health::open_locked(int64_t now, std::string_view why) {
  const BreakerState from = state_;
  cooldown_ms_ = cooldown_ms_ == 0 ? s_.open_ms : std::min(cooldown_ms_ * 2, s_.max_open_ms);
  state_ = BreakerState::kOpen;
  since_ms_ = now;
  open_until_ms_ = now + cooldown_ms_;
  probes_inflight_ = 0;
  ++opens_;
  reason_.assign(why.empty() ? std::string_view("failures") : why);
  changed_locked(from, now);
}

void Health::readmit_locked(int64_t now) {
  const BreakerState from = state_;
  state_ = BreakerState::kClosed;
  since_ms_ = now;
  cooldown_ms_ = 0;
  reason_.clear();
  consecutive_ = 0;
  prev_req_ = prev_fail_ = win_req_ = win_fail_ = 0;
  if (s_.slow_start_ms > 0) ramp_from_ms_.store(now, std::memory_order_relaxed);
  changed_locked(from, now);
}

void Health::report_load(const LoadReport& in, int64_t now, int64_t max_age_ms) {
  LoadReport r = in;  // a server's numbers, bounded before they become integers
  r.waiting = std::clamp(r.waiting, 0.0, 1e9);
  r.running = std::clamp(r.running, 0.0, 1e9);
  r.kv_usage = std::clamp(r.kv_usage, -1.0, 1e3);
  reported_waiting_milli_.store(static_cast<int64_t>(r.waiting * 1000), std::memory_order_relaxed);
  reported_running_milli_.store(static_cast<int64_t>(r.running * 1000), std::memory_order_relaxed);
  reported_kv_milli_.store(static_cast<int64_t>(r.kv_usage * 1000), std::memory_order_relaxed);
  reported_requests_.store(static_cast<int64_t>(std::llround(r.waiting + r.running)), std::memory_order_relaxed);
  report_max_age_ms_.store(max_age_ms, std::memory_order_relaxed);
  reported_at_ms_.store(now, std::memory_order_release);
}

int64_t Health::load(int64_t now) const {
  const int64_t mine = outstanding.load(std::memory_order_relaxed);
  const int64_t at = reported_at_ms_.load(std::memory_order_acquire);
  if (at == 0 || now - at > report_max_age_ms_.load(std::memory_order_relaxed)) return mine;
  return std::max(mine, reported_requests_.load(std::memory_order_relaxed));
}

std::optional<LoadReport> parse_vllm_metrics(std::string_view text) {
  LoadReport r;
  bool waiting = false, running = false, kv = false;
  double kv_sum = 0;
  int kv_n = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty() || line[0] == '#') continue;
    size_t name_end = line.find_first_of("{ ");
    if (name_end == std::string_view::npos) continue;
    std::string_view name = line.substr(0, name_end);
    std::string_view rest = line.substr(name_end);
    if (rest.front() == '{') {
      size_t close = rest.rfind('}');
      if (close == std::string_view::npos) continue;
      rest.remove_prefix(close + 1);
    }
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    rest = rest.substr(0, rest.find(' '));  // a timestamp may follow the value
    double v = 0;
    auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), v);
    if (ec != std::errc() || !std::isfinite(v)) continue;
    if (name == "vllm:num_requests_waiting") {
      r.waiting += v;
      waiting = true;
    } else if (name == "vllm:num_requests_running") {
      r.running += v;
      running = true;
    } else if (name == "vllm:gpu_cache_usage_perc" || name == "vllm:kv_cache_usage_perc") {
      kv_sum += v;
      ++kv_n;
      kv = true;
    }
  }
  if (!waiting && !running) return std::nullopt;
  if (kv) r.kv_usage = kv_sum / kv_n;  // several engines: their mean
  return r;
}

double Health::weight(int64_t now) const {
  const int64_t from = ramp_from_ms_.load(std::memory_order_relaxed), over = ramp_ms_.load(std::memory_order_relaxed);
  if (from == 0 || over <= 0 || now - from >= over) return 1.0;
  return std::clamp(static_cast<double>(now - from) / static_cast<double>(over), 0.1, 1.0);
}

void Health::record_check(bool ok, int64_t now, std::string_view why, int unhealthy_after) {
  std::lock_guard<std::mutex> lock(mu_);
  last_check_ms_ = now;
  last_check_ok_ = ok ? 1 : 0;
  last_check_error_.assign(ok ? std::string_view() : why);
  if (ok) {
    check_failures_ = 0;
    if (state_ != BreakerState::kClosed) readmit_locked(now);
    return;
  }
  ++check_failures_;
  if (check_failures_ >= std::max(1, unhealthy_after) && state_ != BreakerState::kOpen)
    open_locked(now, "health check failed " + std::to_string(check_failures_) + " time(s) in a row (last: " +
                         std::string(why) + ")");
}

Health::Admit Health::admit(int64_t now, bool force) {
  std::lock_guard<std::mutex> lock(mu_);
  if (force) return {true, false};
  if (!s_.enabled) return {true, false};
  if (state_ == BreakerState::kOpen && now >= open_until_ms_) {
    state_ = BreakerState::kHalfOpen;
    since_ms_ = now;
    probes_inflight_ = 0;
    changed_locked(BreakerState::kOpen, now);
  }
  switch (state_) {
    case BreakerState::kClosed: return {true, false};
    case BreakerState::kOpen: return {false, false};
    case BreakerState::kHalfOpen:
      if (probes_inflight_ >= s_.half_open_probes) return {false, false};
      ++probes_inflight_;
      return {true, true};
  }
  return {false, false};
}

void Health::record(Outcome o, int64_t now, bool probe, std::string_view why) {
  std::lock_guard<std::mutex> lock(mu_);
  if (probe && probes_inflight_ > 0) --probes_inflight_;
  if (o == Outcome::kIgnored || !s_.enabled) return;
  if (o == Outcome::kRateLimited) {  // the upstream is alive: it answered
    if (probe && state_ == BreakerState::kHalfOpen) readmit_locked(now);
    return;
  }
  roll_window_locked(now);
  ++win_req_;
  if (o == Outcome::kSuccess) {
    consecutive_ = 0;
    if (state_ == BreakerState::kHalfOpen && probe) readmit_locked(now);
    return;
  }
  ++win_fail_;
  ++consecutive_;
  if (state_ == BreakerState::kHalfOpen) {
    if (probe) open_locked(now, std::string("half-open probe failed: ") + std::string(why));
    return;
  }
  if (state_ == BreakerState::kOpen) return;
  const int64_t req = win_req_ + prev_req_, fail = win_fail_ + prev_fail_;
  if (consecutive_ >= s_.consecutive_failures) {
    open_locked(now, std::to_string(consecutive_) + " consecutive failures (last: " + std::string(why) + ")");
  } else if (req >= s_.min_requests && static_cast<double>(fail) >= s_.failure_ratio * static_cast<double>(req)) {
    open_locked(now, std::to_string(fail) + " of " + std::to_string(req) + " requests failed (last: " +
                         std::string(why) + ")");
  }
}

void Health::hold_off_until(int64_t until_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  retry_after_until_ms_ = std::max(retry_after_until_ms_, until_ms);
}

Health::Availability Health::availability(int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  return {s_.enabled && state_ == BreakerState::kOpen ? std::max(now, open_until_ms_) : now, retry_after_until_ms_ > now};
}

int64_t Health::available_at(int64_t now) { return availability(now).at; }

bool Health::held_off(int64_t now) { return availability(now).held; }

HealthView Health::view(int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  roll_window_locked(now);
  HealthView v;
  v.state = state_;
  if (state_ == BreakerState::kOpen && now >= open_until_ms_) v.state = BreakerState::kHalfOpen;  // at the next request
  v.since_ms = since_ms_;
  v.reason = reason_;
  v.next_probe_ms = state_ == BreakerState::kOpen ? open_until_ms_ : 0;
  v.retry_after_ms = retry_after_until_ms_ > now ? retry_after_until_ms_ : 0;
  v.opens = opens_;
  v.requests = win_req_ + prev_req_;
  v.failures = win_fail_ + prev_fail_;
  v.outstanding = outstanding.load(std::memory_order_relaxed);
  v.outstanding_tokens = outstanding_tokens.load(std::memory_order_relaxed);
  v.last_check_ms = last_check_ms_;
  v.last_check_ok = last_check_ok_;
  v.last_check_error = last_check_error_;
  v.check_failures = check_failures_;
  v.weight = weight(now);
  const int64_t at = reported_at_ms_.load(std::memory_order_acquire);
  if (at > 0 && now - at <= report_max_age_ms_.load(std::memory_order_relaxed)) {
    v.reported_at_ms = at;
    v.reported_waiting = static_cast<double>(reported_waiting_milli_.load(std::memory_order_relaxed)) / 1000;
    v.reported_running = static_cast<double>(reported_running_milli_.load(std::memory_order_relaxed)) / 1000;
    v.reported_kv_usage = static_cast<double>(reported_kv_milli_.load(std::memory_order_relaxed)) / 1000;
  }
  return v;
}

std::shared_ptr<admission::Gate> Registry::gate(const std::string& pool, const admission::GateSettings& s) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& g = gates_[pool];
  if (!g) g = std::make_shared<admission::Gate>(s);  // an existing gate's settings change once its snapshot is published
  return g;
}

std::unordered_map<std::string, std::shared_ptr<admission::Gate>> Registry::gates() {
  std::lock_guard<std::mutex> lock(mu_);
  return gates_;
}

std::shared_ptr<Health> Registry::get(const std::string& identity, const BreakerSettings& s) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& h = by_identity_[identity];
  if (!h) {
    h = std::make_shared<Health>(s);
    if (observer_) h->observe(identity, observer_);
  } else {
    h->set_settings(s);  // a reload may change the thresholds; what was learned stays
  }
  return h;
}

void Registry::set_observer(HealthObserver* o) {
  std::lock_guard<std::mutex> lock(mu_);
  observer_ = o;
  for (auto& [identity, h] : by_identity_) h->observe(identity, o);
}

std::unordered_map<std::string, std::shared_ptr<Health>> Registry::all() {
  std::lock_guard<std::mutex> lock(mu_);
  return by_identity_;
}

}  // namespace sluice::upstream
