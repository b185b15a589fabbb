// cli/demo.cpp: starts `sluice mock-llm` (replaying real GSM8K answers) and `sluice serve`
// as child processes, their output going to log files named at the start, drives traffic with
// the official OpenAI SDK (examples/demo/client.mjs), tells the rollout story as one incident
// timeline (examples/demo/rollout-story.mjs), prints where to look, and keeps both running
// until Ctrl-C.
#include "cli/demo.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>
#include <vector>

namespace sluice::cli {

namespace {

// `log`: the child's stdout and stderr go to this file (truncated), not to the terminal.
pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    std::perror("exec");
    _exit(127);
  }
  return pid;
}

bool wait_http(int port, const std::string& path) {
  for (int i = 0; i < 100; ++i) {
    std::string cmd = "curl -sf -o /dev/null http://127.0.0.1:" + std::to_string(port) + path;
    if (std::system(cmd.c_str()) == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

volatile sig_atomic_t g_stop = 0;

}  // namespace

int run_demo(const std::string& self, const DemoOptions& opts) {
  namespace fs = std::filesystem;
  fs::path root = fs::current_path();
  if (!fs::exists(root / "examples/demo/gateway.yaml")) {
    std::cerr << "demo: run from the repository root (examples/demo/ not found)\n";
    return 2;
  }
  int mock_port = opts.port + 100, admin_port = opts.port + 1;
  std::string data = (root / "sluice-data/demo").string();
  fs::create_directories(data);
  // Each run tells the story from the start: a fresh store and request log (the admin token stays).
  for (const char* f : {"sluice.db", "sluice.db-wal", "sluice.db-shm", "requests.jsonl"}) fs::remove(fs::path(data) / f);
  const std::string mock_log = data + "/mock-llm.log", gw_log = data + "/gateway.log";
  std::cout << "== sluice demo ==\n"
            << "process logs: " << gw_log << " (the gateway), " << mock_log << " (mock-llm)\n"
            << "starting mock-llm on 127.0.0.1:" << mock_port << " (replaying real GSM8K solutions)\n";
  pid_t mock = spawn({self, "mock-llm", "--listen", "127.0.0.1:" + std::to_string(mock_port), "--config",
                      "examples/demo/mock.yaml"},
                     mock_log);
  if (!wait_http(mock_port, "/healthz")) {
    std::cerr << "demo: mock-llm did not start (see " << mock_log << ")\n";
    kill(mock, SIGTERM);
    return 1;
  }
  setenv("SLUICE_DEMO_MOCK_PORT", std::to_string(mock_port).c_str(), 1);
  std::cout << "starting the gateway on 127.0.0.1:" << opts.port << " (admin on " << admin_port << ")\n";
  pid_t gw = spawn({self, "serve", "--config", "examples/demo/gateway.yaml", "--upstream",
                    "mock=http://127.0.0.1:" + std::to_string(mock_port) + "/v1", "--listen",
                    "127.0.0.1:" + std::to_string(opts.port), "--admin-listen", "127.0.0.1:" + std::to_string(admin_port),
                    "--data-dir", data},
                   gw_log);
  if (!wait_http(opts.port, "/readyz")) {
    std::cerr << "demo: the gateway did not become ready (see " << gw_log << ")\n";
    kill(gw, SIGTERM);
    kill(mock, SIGTERM);
    return 1;
  }
  std::string base = "http://127.0.0.1:" + std::to_string(opts.port) + "/v1";
  std::cout << "\n-- traffic through the official OpenAI SDK (node examples/demo/client.mjs) --\n" << std::flush;
  int rc = std::system(("node examples/demo/client.mjs " + base).c_str());
  if (rc != 0) std::cerr << "demo: the client failed (did scripts/setup.sh install the npm packages?)\n";
  if (rc == 0) {
    setenv("SLUICE_BIN", fs::canonical("/proc/self/exe").c_str(), 1);
    setenv("SLUICE_DEMO_DATA", data.c_str(), 1);
    setenv("SLUICE_DEMO_BASE", base.c_str(), 1);
    setenv("SLUICE_DEMO_ADMIN", ("http://127.0.0.1:" + std::to_string(admin_port)).c_str(), 1);
    setenv("SLUICE_DEMO_MOCK", ("http://127.0.0.1:" + std::to_string(mock_port)).c_str(), 1);
    rc = std::system("node examples/demo/rollout-story.mjs");
    if (rc != 0) std::cerr << "demo: the rollout story failed\n";
  }
  std::cout << "\n-- where to look --\n"
            << "  metrics:      curl -s http://127.0.0.1:" << opts.port << "/metrics | grep sluice_requests_total\n"
            << "  request log:  tail " << data << "/requests.jsonl\n"
            << "  admin API:    curl -s -H \"Authorization: Bearer $(cat " << data << "/admin.token)\" http://127.0.0.1:"
            << admin_port << "/admin/v1/status\n"
            << "  rollouts:     " << self << " rollout status math-tutor --data-dir " << data << "\n"
            << "  timeline:     " << self << " incident timeline --route math-tutor --data-dir " << data << "\n"
            << "  postmortem:   " << self << " incident report --route math-tutor --data-dir " << data << "\n"
            << "  readiness:    " << self << " rollback math-tutor --check --admin http://127.0.0.1:" << admin_port
            << " --data-dir " << data << "\n"
            << "  process logs: " << gw_log << ", " << mock_log << "\n"
            << "  feedback:     curl -s localhost:" << opts.port
            << "/v1/feedback -d '{\"request_id\":\"<x-request-id>\",\"score\":1}'\n"
            << "  faults:       curl -s -XPOST localhost:" << mock_port
            << "/mock/faults -d '{\"error_rate\":0.5}'\n";
  std::cout << std::flush;
  if (!opts.exit_after) {
    std::cout << "\nboth keep running; press Ctrl-C to stop.\n" << std::flush;
    signal(SIGINT, [](int) { g_stop = 1; });
    signal(SIGTERM, [](int) { g_stop = 1; });
    while (!g_stop) pause();
  }
  kill(gw, SIGTERM);
  kill(mock, SIGTERM);
  int st;
  waitpid(gw, &st, 0);
  waitpid(mock, &st, 0);
  return rc == 0 ? 0 : 1;
}

}  // namespace sluice::cli
