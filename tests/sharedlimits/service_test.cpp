// The shared limits' Redis half against a real redis-server on a loopback port: three
// Service instances (replicas in one process) share one tenant; Redis killed -> fail_open
// gives each its share, fail_closed refuses; Redis back -> shared again, without a restart.
#include "sharedlimits/service.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "core/clock.hpp"

namespace sl = sluice::sharedlimits;
using sluice::admission::Decision;
using sluice::admission::Limits;
using namespace std::chrono_literals;

extern char** environ;

namespace {

bool have_redis() { return std::system("command -v redis-server >/dev/null 2>&1") == 0; }

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

bool connectable(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  close(fd);
  return ok;
}

// redis-server as a child process in a temporary directory, no persistence.
struct Redis {
  int port = free_port();
  std::filesystem::path dir;
  pid_t pid = -1;
  Redis() {
    dir = std::filesystem::temp_directory_path() / ("sluice-redis-" + std::to_string(getpid()) + "-" + std::to_string(port));
    std::filesystem::create_directories(dir);
  }
  ~Redis() {
    kill9();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  bool start() {
    const std::string p = std::to_string(port), d = dir.string();
    std::vector<std::string> args{"redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                  "--daemonize", "no", "--dir", d, "--loglevel", "warning"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    const int rc = posix_spawnp(&pid, "redis-server", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return false;
    for (int i = 0; i < 200; ++i) {
      if (connectable(port)) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  void kill9() {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    pid = -1;
  }
};

sluice::config::SharedLimits cfg_for(int port, bool fail_open, const std::string& prefix) {
  sluice::config::SharedLimits c;
  c.redis = "redis://127.0.0.1:" + std::to_string(port);
  c.host = "127.0.0.1";
  c.port = port;
  c.fail_open = fail_open;
  c.key_prefix = prefix;
  c.heartbeat_ms = 200;  // replicas expire after 600 ms; an outage is seen within 200 ms
  return c;
}

template <class F>
bool eventually(F f, std::chrono::milliseconds limit = 5000ms) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

constexpr int64_t kTpm = 60000;  // 1000 tokens a second
const Limits kLimits{0, kTpm, 0};

// Every replica reserves `each` tokens in turn until all have been refused `refusals` times
// in a row; returns the tokens admitted by each.
std::vector<int64_t> flood(std::vector<std::unique_ptr<sluice::admission::Limiter>>& lims, int64_t each) {
  std::vector<int64_t> got(lims.size(), 0);
  std::vector<int> refused(lims.size(), 0);
  const auto end = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < end) {
    bool all_refused = true;
    for (size_t i = 0; i < lims.size(); ++i) {
      Decision d = lims[i]->reserve(kLimits, each, sluice::unix_millis());
      if (d.admitted) {
        got[i] += each;
        lims[i]->reconcile(kLimits, each, each, sluice::unix_millis());
        refused[i] = 0;
      } else {
        ++refused[i];
      }
      all_refused = all_refused && refused[i] >= 40;  // 40 x 1 ms: several lease rounds found nothing
    }
    if (all_refused) break;
    std::this_thread::sleep_for(1ms);
  }
  return got;
}

int64_t sum(const std::vector<int64_t>& v) {
  int64_t s = 0;
  for (int64_t x : v) s += x;
  return s;
}

}  // namespace

TEST(SharedLimitsService, ThreeReplicasShareOneLimitFailOverAndRecover) {
  if (!have_redis()) GTEST_SKIP() << "redis-server is not installed";
  Redis redis;
  ASSERT_TRUE(redis.start());

  std::vector<std::unique_ptr<sl::Service>> svcs;
  std::vector<std::unique_ptr<sluice::admission::Limiter>> lims;
  for (int i = 0; i < 3; ++i) {
    svcs.push_back(std::make_unique<sl::Service>(cfg_for(redis.port, true, "t1:"),
                                                 [] { return std::vector<std::pair<std::string, Limits>>{{"acme", kLimits}}; }));
    svcs.back()->start();
    EXPECT_TRUE(svcs.back()->reachable());
    lims.push_back(svcs.back()->make_limiter("acme"));
  }
  ASSERT_TRUE(eventually([&] { return svcs[0]->replicas() == 3 && svcs[2]->replicas() == 3; }));
  EXPECT_NE(svcs[0]->status_json().find("\"redis\":\"up\""), std::string::npos);

  // 1. Twice the limit over a window, paced, spread over the replicas: the bucket (one
  // minute's worth, full) plus its refill over the window is what is admitted.
  {
    const int64_t each = 200;
    const auto t0 = std::chrono::steady_clock::now();
    const auto window = 3000ms;
    // Allowed over the window: kTpm + 1000/s * 3 s = 63000; offered twice that, evenly.
    const int64_t offered_per_ms = 2 * (kTpm + kTpm / 60000 * 3000) / 3000;  // 42 tokens/ms
    int64_t admitted = 0, offered = 0;
    size_t turn = 0;
    while (std::chrono::steady_clock::now() - t0 < window) {
      const auto el = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
      while (offered < offered_per_ms * (el + 1)) {
        auto& lim = *lims[turn++ % 3];
        offered += each;
        if (lim.reserve(kLimits, each, sluice::unix_millis()).admitted) {
          admitted += each;
          lim.reconcile(kLimits, each, each, sluice::unix_millis());
        }
      }
      std::this_thread::sleep_for(1ms);
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double allowed = static_cast<double>(kTpm) + static_cast<double>(kTpm) / 60.0 * secs;
    std::cout << "[shared] offered " << offered << " admitted " << admitted << " allowed " << allowed << " over " << secs
              << " s (ratio " << static_cast<double>(admitted) / allowed << ")\n";
    EXPECT_NEAR(static_cast<double>(admitted), allowed, 0.02 * allowed);
    uint64_t trips = 0;
    for (auto& s : svcs) trips += s->round_trips();
    EXPECT_LT(static_cast<double>(trips), static_cast<double>(offered) / each) << "fewer round trips than admissions";
  }

  // 2. Redis killed: each fail_open replica admits its share (limit / 3); a fail_closed one refuses.
  redis.kill9();
  ASSERT_TRUE(eventually([&] {
    for (auto& s : svcs)
      if (s->reachable()) return false;
    return true;
  }));
  EXPECT_EQ(svcs[0]->hub().current(), sl::Mode::kFailOpen);
  {
    std::vector<int64_t> got = flood(lims, 1000);
    for (int64_t g : got) {
      EXPECT_GE(g, sl::share(kTpm, 3));
      EXPECT_LE(g, sl::share(kTpm, 3) + 2000) << "its share and a few seconds of refill";
    }
    EXPECT_NE(svcs[1]->prometheus().find("sluice_shared_limits_up 0"), std::string::npos);
  }
  {
    sl::Service closed(cfg_for(redis.port, false, "t2:"));
    closed.start();
    EXPECT_FALSE(closed.reachable());
    auto lim = closed.make_limiter("acme");
    Decision d = lim->reserve(kLimits, 10, sluice::unix_millis());
    EXPECT_FALSE(d.admitted);
    EXPECT_EQ(d.why, Decision::Why::kUnavailable);
    EXPECT_NE(closed.status_json().find("fail_closed"), std::string::npos);
  }

  // 3. Redis back (empty: its buckets start full): shared again without a restart, and the
  // three together admit the one limit again.
  ASSERT_TRUE(redis.start());
  ASSERT_TRUE(eventually([&] {
    for (auto& s : svcs)
      if (!s->reachable()) return false;
    return true;
  }));
  EXPECT_EQ(svcs[0]->hub().current(), sl::Mode::kShared);
  {
    std::vector<int64_t> got = flood(lims, 500);
    const double total = static_cast<double>(sum(got));
    std::cout << "[recovered] admitted " << total << " of " << kTpm << "\n";
    EXPECT_NEAR(total, static_cast<double>(kTpm), 0.02 * kTpm + 3000 /* refill while flooding */);
    EXPECT_GE(total, 0.98 * kTpm);
  }
  for (auto& s : svcs) s->stop();
}
