#include "sharedlimits/service.hpp"

#include <hiredis/hiredis.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <random>

#include "core/clock.hpp"

namespace sluice::sharedlimits {

namespace {

// One tenant's two buckets (requests, tokens) in a hash {r, t, at}: refilled on Redis's
// clock to the limits sent (a reload's new limits apply at once), then the leases taken
// (want > 0: up to what the bucket holds) or given back (want < 0, capped at the limit).
// Returns {granted requests, requests left, granted tokens, tokens left}.
constexpr const char* kBucketScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2])
local h = redis.call('HMGET', KEYS[1], 'r', 't', 'at')
local at = tonumber(h[3])
local lr, lt = tonumber(h[1]) or rpm, tonumber(h[2]) or tpm
if not at then at = now end
local dt = math.max(0, now - at)
local function lane(level, cap, want)
  if cap <= 0 then return 0, 0 end
  level = math.min(cap, level + dt * cap / 60000)
  if want < 0 then return math.min(cap, level - want), 0 end
  local g = math.max(0, math.min(want, math.floor(level)))
  return level - g, g
end
local gr, gt
lr, gr = lane(lr, rpm, tonumber(ARGV[3]))
lt, gt = lane(lt, tpm, tonumber(ARGV[4]))
redis.call('HSET', KEYS[1], 'r', tostring(lr), 't', tostring(lt), 'at', now)
redis.call('PEXPIRE', KEYS[1], 120000)
return {gr, math.floor(lr), gt, math.floor(lt)}
)lua";

// The replicas' heartbeat: a sorted set of replica ids scored by their last beat (Redis's
// clock); members older than ARGV[2] ms are dropped. Returns the live count.
constexpr const char* kBeatScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return redis.call('ZCARD', KEYS[1])
)lua";

timeval tv_of(int64_t ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

struct ReplyPtr {
  redisReply* r = nullptr;
  ~ReplyPtr() {
    if (r) freeReplyObject(r);
  }
};

int64_t int_at(const redisReply* r, size_t i) {
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements <= i || r->element[i]->type != REDIS_REPLY_INTEGER) return 0;
  return r->element[i]->integer;
}

}  // namespace

struct Service::Conn {
  redisContext* ctx = nullptr;
  std::string bucket_sha, beat_sha;
  ~Conn() { drop(); }
  void drop() {
    if (ctx) redisFree(ctx);
    ctx = nullptr;
  }
  // A command run alone; nullptr (and the connection dropped) on any failure.
  redisReply* run(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(redisCommandArgv(ctx, static_cast<int>(args.size()), argv.data(), lens.data()));
    if (!r) drop();
    return r;
  }
  bool load(const char* script, std::string& sha) {
    ReplyPtr r{run({"SCRIPT", "LOAD", script})};
    if (!r.r || r.r->type != REDIS_REPLY_STRING) return false;
    sha.assign(r.r->str, r.r->len);
    return true;
  }
  bool load_scripts() { return load(kBucketScript, bucket_sha) && load(kBeatScript, beat_sha); }
};

Service::Service(config::SharedLimits cfg, TenantsFn tenants, Tuning tuning)
    : cfg_(std::move(cfg)), tenants_(std::move(tenants)), hub_([&] {
        tuning.slice_fraction = cfg_.slice_fraction;
        return tuning;
      }()),
      conn_(std::make_unique<Conn>()) {
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  std::random_device rd;
  id_ = std::string(host) + ":" + std::to_string(getpid()) + ":" + std::to_string(rd() % 1000000);
  set_up(false);
}

Service::~Service() { stop(); }

void Service::set_up(bool up) {
  up_.store(up);
  const Mode m = up ? Mode::kShared : (cfg_.fail_open ? Mode::kFailOpen : Mode::kFailClosed);
  hub_.mode.store(static_cast<int>(m));
}

bool Service::connect() {
  conn_->drop();
  const timeval ct = tv_of(cfg_.connect_timeout_ms);
  redisContext* c = cfg_.unix_path.empty() ? redisConnectWithTimeout(cfg_.host.c_str(), cfg_.port, ct)
                                            : redisConnectUnixWithTimeout(cfg_.unix_path.c_str(), ct);
  if (!c) return false;
  if (c->err) {
    redisFree(c);
    return false;
  }
  redisSetTimeout(c, tv_of(cfg_.command_timeout_ms));
  conn_->ctx = c;
  return conn_->load_scripts();
}

void Service::start() {
  if (thread_.joinable()) return;
  const int64_t now = unix_millis();
  if (connect() && round(now, true)) {
    set_up(true);
  } else {
    conn_->drop();
    set_up(false);
  }
  thread_ = std::thread([this] { run(); });
}

void Service::stop() {
  if (!thread_.joinable()) return;
  hub_.stop();
  thread_.join();
  if (conn_->ctx) {  // leave the replica set at once: the others' shares grow without waiting
    ReplyPtr r{conn_->run({"ZREM", cfg_.key_prefix + "replicas", id_})};
  }
  conn_->drop();
}

void Service::run() {
  int64_t backoff = 50, last_beat = up_.load() ? unix_millis() : 0, last_tenants = 0;
  bool have_tenants = false;
  while (!hub_.stopping()) {
    const int64_t now = unix_millis();
    // Lease for the configured tenants before their first request: every second, and every
    // 100 ms until the first snapshot (published after start()) names some.
    if (tenants_ && now - last_tenants >= (have_tenants ? 1000 : 100)) {
      last_tenants = now;
      auto list = tenants_();
      have_tenants = !list.empty();
      for (auto& [name, limits] : list) {
        if (limits.rpm <= 0 && limits.tpm <= 0) continue;
        auto st = hub_.add(name);
        std::lock_guard<std::mutex> lock(st->mu);
        st->limits = limits;
        st->has_limits = true;
      }
    }
    if (!conn_->ctx) {
      if (!connect()) {
        conn_->drop();
        set_up(false);
        hub_.wait(backoff);
        backoff = std::min<int64_t>(backoff * 2, 1000);
        continue;
      }
      reconnects_.fetch_add(1);
      last_beat = 0;
    }
    const bool beat = now - last_beat >= cfg_.heartbeat_ms;
    if (!round(now, beat)) {
      failures_.fetch_add(1);
      conn_->drop();
      set_up(false);
      continue;  // reconnect at once, then back off
    }
    backoff = 50;
    if (beat) last_beat = now;
    set_up(true);
    hub_.wait(cfg_.sync_interval_ms);
  }
}

// One pipelined round trip: every tenant's lease or give-back, and the heartbeat.
bool Service::round(int64_t now_ms, bool beat) {
  redisContext* c = conn_->ctx;
  if (!c) return false;
  struct Sent {
    TenantState* st;
    Plan p;
    bool done = false;
  };
  auto tenants = hub_.all();  // keeps the states alive for the round
  std::vector<Sent> sent;
  for (auto& st : tenants) {
    Plan p = plan(*st, hub_.tuning, now_ms);
    if (p.send) sent.push_back({st.get(), p});
  }
  if (sent.empty() && !beat) return true;
  auto append = [&](const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    redisAppendCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data());
  };
  for (const Sent& s : sent)
    append({"EVALSHA", conn_->bucket_sha, "1", cfg_.key_prefix + "tb:{" + s.st->name + "}", std::to_string(s.p.rpm),
            std::to_string(s.p.tpm), std::to_string(s.p.want_r), std::to_string(s.p.want_t)});
  if (beat)
    append({"EVALSHA", conn_->beat_sha, "1", cfg_.key_prefix + "replicas", id_, std::to_string(cfg_.heartbeat_ms * 3)});
  round_trips_.fetch_add(1, std::memory_order_relaxed);
  bool ok = true, noscript = false;
  for (Sent& s : sent) {
    ReplyPtr r;
    if (redisGetReply(c, reinterpret_cast<void**>(&r.r)) != REDIS_OK || !r.r) {
      ok = false;
      break;
    }
    s.done = true;
    if (r.r->type == REDIS_REPLY_ARRAY && r.r->elements == 4) {
      Reply rep{int_at(r.r, 0), int_at(r.r, 1), int_at(r.r, 2), int_at(r.r, 3)};
      apply(*s.st, s.p, &rep, now_ms, hub_.tuning);
    } else {
      if (r.r->type == REDIS_REPLY_ERROR && std::string_view(r.r->str, r.r->len).starts_with("NOSCRIPT")) noscript = true;
      apply(*s.st, s.p, nullptr, now_ms, hub_.tuning);
    }
  }
  if (ok && beat) {
    ReplyPtr r;
    if (redisGetReply(c, reinterpret_cast<void**>(&r.r)) != REDIS_OK || !r.r) {
      ok = false;
    } else if (r.r->type == REDIS_REPLY_INTEGER) {
      hub_.replicas.store(std::max<int64_t>(1, r.r->integer));
    } else if (r.r->type == REDIS_REPLY_ERROR && std::string_view(r.r->str, r.r->len).starts_with("NOSCRIPT")) {
      noscript = true;
    }
  }
  for (Sent& s : sent)
    if (!s.done) apply(*s.st, s.p, nullptr, now_ms, hub_.tuning);  // the store never answered: give-backs stay here
  if (ok && noscript) ok = conn_->load_scripts();  // SCRIPT FLUSH: load again, next round uses them
  return ok;
}

std::string Service::prometheus() const {
  std::string s;
  s += "# HELP sluice_shared_limits_up Whether this replica reaches the shared limits' Redis.\n";
  s += "# TYPE sluice_shared_limits_up gauge\n";
  s += "sluice_shared_limits_up " + std::string(up_.load() ? "1" : "0") + "\n";
  s += "# HELP sluice_shared_limits_replicas Live replicas the heartbeat counted (the fail_open share divides by it).\n";
  s += "# TYPE sluice_shared_limits_replicas gauge\n";
  s += "sluice_shared_limits_replicas " + std::to_string(hub_.replicas.load()) + "\n";
  s += "# HELP sluice_shared_limits_round_trips_total Pipelined round trips to Redis (leases, give-backs, heartbeats).\n";
  s += "# TYPE sluice_shared_limits_round_trips_total counter\n";
  s += "sluice_shared_limits_round_trips_total " + std::to_string(round_trips_.load()) + "\n";
  s += "# HELP sluice_shared_limits_failures_total Round trips that failed (the connection is dropped and reopened).\n";
  s += "# TYPE sluice_shared_limits_failures_total counter\n";
  s += "sluice_shared_limits_failures_total " + std::to_string(failures_.load()) + "\n";
  s += "# HELP sluice_shared_limits_reconnects_total Connections to Redis opened again after a failure.\n";
  s += "# TYPE sluice_shared_limits_reconnects_total counter\n";
  s += "sluice_shared_limits_reconnects_total " + std::to_string(reconnects_.load()) + "\n";
  s += "# HELP sluice_shared_limits_fallback_total Admissions decided without Redis, by on_unavailable mode.\n";
  s += "# TYPE sluice_shared_limits_fallback_total counter\n";
  s += "sluice_shared_limits_fallback_total{mode=\"fail_open\"} " + std::to_string(hub_.fallback_open.load()) + "\n";
  s += "sluice_shared_limits_fallback_total{mode=\"fail_closed\"} " + std::to_string(hub_.fallback_closed.load()) + "\n";
  return s;
}

std::string Service::status_json() const {
  return std::string("{\"redis\":\"") + (up_.load() ? "up" : "down") + "\",\"replicas\":" +
         std::to_string(hub_.replicas.load()) + ",\"on_unavailable\":\"" + (cfg_.fail_open ? "fail_open" : "fail_closed") +
         "\"}";
}

}  // namespace sluice::sharedlimits
