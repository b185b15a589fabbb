#include "eval/runner.hpp"

#include <simdjson.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <tuple>
#include <functional>
#include <thread>
#include <unordered_map>

#include "config/loader.hpp"
#include "control/releases.hpp"
#include "core/crypto.hpp"
#include "core/error.hpp"
#include "core/strings.hpp"
#include "eval/assertions.hpp"
#include "eval/cache.hpp"
#include "eval/client.hpp"
#include "eval/gate.hpp"
#include "eval/report.hpp"
#include "eval/suite.hpp"
#include "gateway/gateway.hpp"
#include "store/store.hpp"

namespace sluice::eval {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kCandidateModel = "__eval_candidate";
constexpr const char* kBaselineModel = "__eval_baseline";

// ---------------------------------------------------------------- answers <-> JSON

std::string output_json(const Output& o) {
  std::string j = "{\"text\":";
  append_json_string(j, o.text);
  j += ",\"finish_reason\":";
  append_json_string(j, o.finish_reason);
  char buf[160];
  std::snprintf(buf, sizeof buf, ",\"latency_ms\":%.3f,\"ttft_ms\":%.3f,\"tokens_in\":%lld,\"tokens_out\":%lld,\"status\":%d",
                o.latency_ms, o.ttft_ms, static_cast<long long>(o.tokens_in), static_cast<long long>(o.tokens_out),
                o.status);
  j += buf;
  j += ",\"release\":";
  append_json_string(j, o.release);
  j += ",\"request_id\":";
  append_json_string(j, o.request_id);
  j += "}";
  return j;
}

std::optional<Output> output_from_json(simdjson::dom::parser& p, const std::string& s) {
  simdjson::dom::element d;
  if (p.parse(s).get(d)) return std::nullopt;
  Output o;
  std::string_view sv;
  double x;
  int64_t i;
  if (!d["text"].get_string().get(sv)) o.text = std::string(sv);
  if (!d["finish_reason"].get_string().get(sv)) o.finish_reason = std::string(sv);
  if (!d["latency_ms"].get_double().get(x)) o.latency_ms = x;
  if (!d["ttft_ms"].get_double().get(x)) o.ttft_ms = x;
  if (!d["tokens_in"].get_int64().get(i)) o.tokens_in = i;
  if (!d["tokens_out"].get_int64().get(i)) o.tokens_out = i;
  if (!d["status"].get_int64().get(i)) o.status = static_cast<int>(i);
  if (!d["release"].get_string().get(sv)) o.release = std::string(sv);
  if (!d["request_id"].get_string().get(sv)) o.request_id = std::string(sv);
  return o;
}

std::string verdict_json(const JudgeVerdict& v) {
  std::string j = v.pass ? "{\"pass\":true" : "{\"pass\":false";
  char buf[48];
  std::snprintf(buf, sizeof buf, ",\"score\":%.6f,\"reason\":", v.score);
  j += buf;
  append_json_string(j, v.reason);
  return j + "}";
}

// The answer's text, finish reason and usage from a chat completion body or an SSE stream.
// Returns "" or why the body is not a complete answer (a retryable failure).
std::string parse_answer(simdjson::dom::parser& p, const std::string& body, bool stream, Output& o) {
  auto usage = [&](simdjson::dom::element u) {
    int64_t v;
    if (!u["prompt_tokens"].get_int64().get(v)) o.tokens_in = v;
    if (!u["completion_tokens"].get_int64().get(v)) o.tokens_out = v;
  };
  std::string tool_calls;
  if (!stream) {
    simdjson::dom::element d;
    if (p.parse(body).get(d)) return "the answer is not JSON";
    simdjson::dom::element choice;
    if (d["choices"].at(0).get(choice)) return "the answer has no choices";
    std::string_view sv;
    if (!choice["message"]["content"].get_string().get(sv)) o.text = std::string(sv);
    if (!choice["finish_reason"].get_string().get(sv)) o.finish_reason = std::string(sv);
    simdjson::dom::array tc;
    if (o.text.empty() && !choice["message"]["tool_calls"].get_array().get(tc)) o.text = simdjson::minify(tc);
    simdjson::dom::element u;
    if (!d["usage"].get(u) && u.is_object()) usage(u);
    return "";
  }
  bool done = false;
  std::string name, args;
  for (auto line : split(body, '\n')) {
    line = trim(line);
    if (!starts_with(line, "data:")) continue;
    auto payload = trim(line.substr(5));
    if (payload == "[DONE]") {
      done = true;
      break;
    }
    simdjson::dom::element d;
    if (p.parse(payload.data(), payload.size()).get(d)) return "a stream event is not JSON";
    simdjson::dom::element e;
    if (!d["error"].get(e)) {
      std::string_view m;
      return std::string("the stream ended with an error: ") +
             (e["message"].get_string().get(m) ? std::string("?") : std::string(m));
    }
    simdjson::dom::element choice;
    if (!d["choices"].at(0).get(choice)) {
      std::string_view sv;
      if (!choice["delta"]["content"].get_string().get(sv)) o.text.append(sv);
      if (!choice["finish_reason"].get_string().get(sv)) o.finish_reason = std::string(sv);
      simdjson::dom::element call;
      if (!choice["delta"]["tool_calls"].at(0).get(call)) {
        if (!call["function"]["name"].get_string().get(sv)) name.append(sv);
        if (!call["function"]["arguments"].get_string().get(sv)) args.append(sv);
      }
    }
    simdjson::dom::element u;
    if (!d["usage"].get(u) && u.is_object()) usage(u);
  }
  if (!done) return "the stream ended without [DONE]";
  if (o.text.empty() && !name.empty()) {
    o.text = "[{\"type\":\"function\",\"function\":{\"name\":";
    append_json_string(o.text, name);
    o.text += ",\"arguments\":";
    append_json_string(o.text, args);
    o.text += "}}]";
  }
  return "";
}

std::string error_message(simdjson::dom::parser& p, const std::string& body) {
  simdjson::dom::element d;
  std::string_view m;
  if (!p.parse(body).get(d) && !d["error"]["message"].get_string().get(m)) return std::string(m);
  return std::string(body.substr(0, 200));
}

// ---------------------------------------------------------------- concurrency with backoff

// Bounded concurrency that halves on a 429 and creeps back up on successes (AIMD), with a
// shared pause honouring Retry-After.
class Limiter {
 public:
  explicit Limiter(int max) : max_(max), allowed_(max) {}
  void acquire() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      auto now = Clock::now();
      if (now < pause_until_) {
        cv_.wait_until(lock, pause_until_);
        continue;
      }
      if (in_use_ < allowed_) break;
      cv_.wait(lock);
    }
    ++in_use_;
  }
  void release(bool ok) {
    std::lock_guard<std::mutex> lock(mu_);
    --in_use_;
    if (ok && allowed_ < max_ && ++successes_ >= allowed_) {
      ++allowed_;
      successes_ = 0;
    }
    cv_.notify_all();
  }
  void throttle(std::chrono::milliseconds pause) {
    std::lock_guard<std::mutex> lock(mu_);
    allowed_ = std::max(1, allowed_ / 2);
    successes_ = 0;
    auto until = Clock::now() + pause;
    if (until > pause_until_) pause_until_ = until;
    ++throttles_;
    cv_.notify_all();
  }
  int throttles() {
    std::lock_guard<std::mutex> lock(mu_);
    return throttles_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int max_, allowed_, in_use_ = 0, successes_ = 0, throttles_ = 0;
  Clock::time_point pause_until_{};
};

struct Job {
  std::string body;
  bool stream = true;
  // results
  Output out;
  std::string error;  // non-empty: no usable answer after retries
};

struct PoolStats {
  std::atomic<int64_t> sent{0}, retries{0}, done{0};
};

// Sends every job through the gateway with `n` worker threads. Fills job.out / job.error.
void run_jobs(std::vector<Job>& jobs, uint16_t port, const RunOptions& o, PoolStats& st, std::ostream& err,
              const std::function<void(size_t)>& on_done) {
  if (jobs.empty()) return;
  int n = std::max(1, std::min<int>(o.concurrency, static_cast<int>(jobs.size())));
  Limiter limiter(n);
  std::atomic<size_t> next{0};
  // Fail fast when nothing works (unreachable upstream, wrong API key): after 3 requests that
  // failed for good and no answer at all, the rest is not attempted.
  std::atomic<int> final_failures{0}, answers{0};
  std::atomic<bool> abort{false};
  std::string abort_reason;
  std::mutex abort_mu;
  auto deadline_per_job = std::chrono::seconds(o.timeout_s);
  auto worker = [&](int wid) {
    HttpClient client("127.0.0.1", port);
    simdjson::dom::parser parser;
    std::mt19937_64 rng(0x5eed + wid);
    for (;;) {
      size_t i = next.fetch_add(1);
      if (i >= jobs.size()) return;
      Job& job = jobs[i];
      if (abort.load()) {
        std::lock_guard<std::mutex> lock(abort_mu);
        job.error = "not attempted: " + abort_reason;
        st.done.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      auto t_end = Clock::now() + deadline_per_job;
      for (int attempt = 0;; ++attempt) {
        limiter.acquire();
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(t_end - Clock::now());
        if (left.count() <= 0) {
          limiter.release(false);
          if (job.error.empty()) job.error = "timed out";
          break;
        }
        st.sent.fetch_add(1, std::memory_order_relaxed);
        HttpReply rep = client.post("/v1/chat/completions", job.body, o.api_key, left);
        std::string why;
        bool retry = false;
        std::chrono::milliseconds pause{0};
        if (rep.status == 0) {
          why = rep.error;
          retry = true;
        } else if (rep.status == 200) {
          Output out;
          why = parse_answer(parser, rep.body, job.stream, out);
          if (why.empty()) {
            out.status = 200;
            out.latency_ms = rep.total_ms;
            out.ttft_ms = job.stream && rep.ttft_ms >= 0 ? rep.ttft_ms : rep.total_ms;
            out.release = rep.release;
            out.request_id = rep.request_id;
            job.out = std::move(out);
            job.error.clear();
            limiter.release(true);
            break;
          }
          retry = true;
        } else if (rep.status == 400 || rep.status == 422) {
          // The release cannot serve this case (e.g. a prompt variable it needs is missing):
          // an answer that fails the case, not a failure to run.
          job.out = Output{};
          job.out.status = rep.status;
          job.out.text = "[sluice: HTTP " + std::to_string(rep.status) + "] " + error_message(parser, rep.body);
          job.out.finish_reason = "error";
          job.out.latency_ms = job.out.ttft_ms = rep.total_ms;
          job.out.release = rep.release;
          job.out.request_id = rep.request_id;
          job.error.clear();
          limiter.release(true);
          break;
        } else {
          why = "HTTP " + std::to_string(rep.status) + ": " + error_message(parser, rep.body);
          retry = rep.status == 429 || rep.status >= 500;
          if (rep.status == 429) {
            pause = std::chrono::milliseconds(1000LL * std::clamp(rep.retry_after_s < 0 ? 1 : rep.retry_after_s, 0, 60));
            limiter.throttle(pause);
          }
        }
        limiter.release(false);
        job.error = why;
        // 429s are paced by Retry-After and retried longer than other failures.
        if (!retry || attempt >= (rep.status == 429 ? 7 : 4) || abort.load()) break;
        st.retries.fetch_add(1, std::memory_order_relaxed);
        if (pause.count() == 0) {
          // Exponential backoff with full jitter: 0.2 s, 0.4 s, ... capped at 10 s.
          int64_t cap = std::min<int64_t>(10000, 200LL << std::min(attempt, 6));
          pause = std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(cap / 2, cap)(rng));
        }
        if (Clock::now() + pause >= t_end) break;
        std::this_thread::sleep_for(pause);
      }
      if (job.error.empty()) {
        answers.fetch_add(1);
      } else if (final_failures.fetch_add(1) + 1 >= 3 && answers.load() == 0) {
        std::lock_guard<std::mutex> lock(abort_mu);
        if (!abort.load()) {
          abort_reason = "the first requests all failed (" + job.error + ")";
          abort.store(true);
        }
      }
      st.done.fetch_add(1, std::memory_order_relaxed);
      if (on_done) on_done(i);
    }
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < n; ++w) threads.emplace_back(worker, w);
  // Progress every 5 s on stderr.
  std::atomic<bool> finished{false};
  std::thread progress([&] {
    auto last = Clock::now();
    while (!finished.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (!o.quiet && Clock::now() - last >= std::chrono::seconds(5)) {
        last = Clock::now();
        err << "eval: " << st.done.load() << "/" << jobs.size() << " requests done\n" << std::flush;
      }
    }
  });
  for (auto& t : threads) t.join();
  finished = true;
  progress.join();
  (void)limiter.throttles();
}

// ---------------------------------------------------------------- embedded gateway

class EmbeddedGateway {
 public:
  ~EmbeddedGateway() { stop(); }

  bool start(gateway::Options opts, std::string& error) {
    char tmpl[] = "/tmp/sluice-eval-XXXXXX";
    if (!mkdtemp(tmpl)) {
      error = "cannot create a temporary directory";
      return false;
    }
    dir_ = tmpl;
    opts.data_dir = dir_;
    opts.listen = "127.0.0.1:0";
    opts.admin_listen = "127.0.0.1:0";
    opts.handle_signals = false;
    opts.announce = false;
    opts.request_log = false;  // eval traffic never mixes with production request logs
    opts.on_ready = [this](uint16_t port, uint16_t) {
      std::lock_guard<std::mutex> lock(mu_);
      port_ = port;
      cv_.notify_all();
    };
    gw_ = std::make_unique<gateway::Gateway>(std::move(opts));
    thread_ = std::thread([this] {
      int rc = gw_->run();
      std::lock_guard<std::mutex> lock(mu_);
      exited_ = true;
      rc_ = rc;
      cv_.notify_all();
    });
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(60), [&] { return port_ != 0 || exited_; })) {
      error = "the embedded gateway did not become ready within 60 s";
      return false;
    }
    if (port_ == 0) {
      error = "the embedded gateway did not start (exit code " + std::to_string(rc_) + "; see the messages above)";
      return false;
    }
    return true;
  }

  uint16_t port() const { return port_; }

  void stop() {
    if (gw_) {
      gw_->stop();
      if (thread_.joinable()) thread_.join();
      gw_.reset();
    }
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
      dir_.clear();
    }
  }

 private:
  std::unique_ptr<gateway::Gateway> gw_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint16_t port_ = 0;
  bool exited_ = false;
  int rc_ = 0;
  std::string dir_;
};

// ---------------------------------------------------------------- helpers

std::string vars_json(const std::vector<std::pair<std::string, std::string>>& vars) {
  std::string j = "{";
  bool first = true;
  for (const auto& [k, v] : vars) {
    if (!first) j += ',';
    first = false;
    append_json_string(j, k);
    j += ':';
    append_json_string(j, v);
  }
  return j + "}";
}

// The body after "model": shared by both arms, hashed for the cache.
std::string body_tail(const Suite& s, const Case& c) {
  std::string t;
  std::string msgs = case_messages(s, c);
  if (!msgs.empty()) t += ",\"messages\":" + msgs;
  if (!c.vars.empty()) t += ",\"vars\":" + vars_json(c.vars);
  t += s.stream ? ",\"stream\":true,\"stream_options\":{\"include_usage\":true}" : ",\"stream\":false";
  return t + "}";
}

std::string with_model(const std::string& model, const std::string& tail) {
  std::string b = "{\"model\":";
  append_json_string(b, model);
  return b + tail;
}

struct Prices {
  double in = 0, out = 0;
};

double cost_of(const Output& o, const Prices& p) {
  return (static_cast<double>(o.tokens_in) * p.in + static_cast<double>(o.tokens_out) * p.out) / 1e6;
}

std::string now_actor() {
  const char* u = std::getenv("USER");
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return std::string("cli:") + (u ? u : "unknown") + "@" + host;
}

bool write_file(const std::string& path, const std::string& content, std::ostream& err) {
  std::error_code ec;
  fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path(), ec);
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << content;
    if (!f.good()) {
      err << "error: cannot write " << path << "\n";
      return false;
    }
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    err << "error: cannot write " << path << ": " << ec.message() << "\n";
    return false;
  }
  return true;
}

}  // namespace

int run_eval(const RunOptions& o, std::ostream& out, std::ostream& err) {
  auto t_start = Clock::now();
  if (o.repeat < 1 || o.repeat > 100) {
    err << "error: --repeat must be between 1 and 100\n";
    return 2;
  }
  if (o.concurrency < 1 || o.concurrency > 1024) {
    err << "error: --concurrency must be between 1 and 1024\n";
    return 2;
  }
  if (!o.baseline.empty() && !o.baseline_route.empty()) {
    err << "error: give --baseline or --baseline-route, not both\n";
    return 2;
  }

  // ---- the suite
  std::string serr;
  auto suite_opt = load_suite(o.suite_path, serr);
  if (!suite_opt) {
    err << "error: " << serr << "\n";
    return 2;
  }
  Suite suite = std::move(*suite_opt);
  if (o.inconclusive_fails) suite.gate.inconclusive_fails = *o.inconclusive_fails;
  if (!o.quiet)
    for (const auto& w : suite.warnings) err << "warning: " << w << "\n";

  // ---- releases
  std::error_code fec;
  fs::create_directories(o.data_dir, fec);
  std::string store_err;
  auto store = store::open_store(store::store_location("", o.data_dir), store_err);
  if (!store) {
    err << "error: " << store_err << "\n";
    return 2;
  }
  auto cand_rec = store->get_release(o.release);
  if (!cand_rec) {
    err << "error: no release '" << o.release << "' in " << o.data_dir << " (sluice release create ...)\n";
    return 2;
  }
  std::optional<store::ReleaseRecord> base_rec;
  if (!o.baseline_route.empty()) {
    auto route = store->get_route(o.baseline_route);
    if (!route || route->stable_release.empty()) {
      err << "error: route '" << o.baseline_route << "' has no stable release in " << o.data_dir << "\n";
      return 2;
    }
    base_rec = store->get_release(route->stable_release);
  } else if (!o.baseline.empty()) {
    base_rec = store->get_release(o.baseline);
    if (!base_rec) {
      err << "error: no release '" << o.baseline << "' in " << o.data_dir << "\n";
      return 2;
    }
  }
  std::string cerr;
  auto cand_c = control::compile_release(*store, cand_rec->id, cerr);
  if (!cand_c) {
    err << "error: release " << cand_rec->id << ": " << cerr << "\n";
    return 2;
  }
  std::shared_ptr<const release::Compiled> base_c;
  if (base_rec) {
    base_c = control::compile_release(*store, base_rec->id, cerr);
    if (!base_c) {
      err << "error: release " << base_rec->id << ": " << cerr << "\n";
      return 2;
    }
  }

  // ---- judges (llm-rubric): a release id is bound as its own model name, a route name is sent as is
  std::vector<config::RouteBinding> bindings = {{kCandidateModel, cand_c}};
  if (base_c) bindings.push_back({kBaselineModel, base_c});
  std::map<std::string, std::string> judge_model;  // judge name -> model to send
  for (auto& c : suite.cases) {
    for (auto& a : c.asserts) {
      if (a.type != "llm-rubric") continue;
      if (a.judge.empty()) a.judge = !o.judge.empty() ? o.judge : suite.judge;
      if (a.judge.empty()) {
        err << "error: " << a.origin
            << ": llm-rubric needs a judge: give --judge ROUTE|RELEASE or 'judge:' in the suite\n";
        return 2;
      }
      if (judge_model.count(a.judge)) continue;
      if (starts_with(a.judge, "rel_")) {
        auto jr = store->get_release(a.judge);
        if (!jr) {
          err << "error: judge release '" << a.judge << "' not found\n";
          return 2;
        }
        auto jc = control::compile_release(*store, jr->id, cerr);
        if (!jc) {
          err << "error: judge release " << jr->id << ": " << cerr << "\n";
          return 2;
        }
        std::string name = "__eval_judge_" + jr->id;
        bindings.push_back({name, jc});
        judge_model[a.judge] = name;
      } else {
        judge_model[a.judge] = a.judge;
      }
    }
  }

  // ---- prices from the gateway config
  std::map<std::string, Prices> prices;
  if (!o.config_path.empty()) {
    auto lr = config::load_file(o.config_path);
    if (!lr.ok()) {
      for (const auto& e : lr.errors) err << "error: " << e << "\n";
      return 2;
    }
    for (const auto& u : lr.config.upstreams) prices[u.name] = {u.price_input_per_1m, u.price_output_per_1m};
    if (!lr.config.api_keys.empty() && o.api_key.empty()) {
      err << "error: " << o.config_path
          << " requires API keys: give one with --api-key or SLUICE_API_KEY (eval traffic is authenticated like any)\n";
      return 2;
    }
  }
  Prices cand_price = prices[cand_c->upstream];
  Prices base_price = base_c ? prices[base_c->upstream] : Prices{};

  // ---- the answers needed: (release, case hash, repeat), deduplicated across arms and cases
  const size_t ncases = suite.cases.size();
  const int R = o.repeat;
  std::vector<std::string> tails(ncases), hashes(ncases);
  for (size_t i = 0; i < ncases; ++i) {
    tails[i] = body_tail(suite, suite.cases[i]);
    hashes[i] = sha256_hex("sluice-eval-v1" + tails[i]);
  }
  std::unique_ptr<Cache> cache;  // --no-cache: fresh answers are still stored, none is reused
  {
    std::string cache_err;
    cache = Cache::open(o.data_dir + "/eval-cache.db", cache_err);
    if (!cache && !o.quiet) err << "warning: answer cache disabled: " << cache_err << "\n";
  }
  struct Slot {
    int job = -1;  // index into jobs, or -1 when cached
    Output cached;
  };
  struct ArmPlan {
    std::string release, model;
    const Prices* price;
    std::vector<std::vector<Slot>> slots;  // [case][rep]
  };
  std::vector<ArmPlan> arms;
  arms.push_back({cand_c->id, kCandidateModel, &cand_price, {}});
  if (base_c) arms.push_back({base_c->id, kBaselineModel, &base_price, {}});
  std::vector<Job> jobs;
  std::vector<std::tuple<std::string, std::string, int>> job_keys;  // release, hash, rep (for the cache)
  std::map<std::tuple<std::string, std::string, int>, int> job_of;
  int64_t cache_hits = 0;
  simdjson::dom::parser parser;
  for (auto& arm : arms) arm.slots.assign(ncases, std::vector<Slot>(static_cast<size_t>(R)));
  // Interleave the arms case by case so both see the same load (latency limits compare them).
  for (size_t i = 0; i < ncases; ++i) {
    for (int r = 0; r < R; ++r) {
      for (auto& arm : arms) {
        Slot& slot = arm.slots[i][static_cast<size_t>(r)];
        auto key = std::make_tuple(arm.release, hashes[i], r);
        if (auto it = job_of.find(key); it != job_of.end()) {
          slot.job = it->second;
          continue;
        }
        if (cache && o.cache) {
          if (auto v = cache->get(arm.release, hashes[i], r)) {
            if (auto out = output_from_json(parser, *v)) {
              slot.cached = std::move(*out);
              ++cache_hits;
              continue;
            }
          }
        }
        Job j;
        j.body = with_model(arm.model, tails[i]);
        j.stream = suite.stream;
        slot.job = static_cast<int>(jobs.size());
        job_of[key] = slot.job;
        jobs.push_back(std::move(j));
        job_keys.push_back(key);
      }
    }
  }

  // ---- the gateway, if anything has to be asked
  const bool needs_judge = !judge_model.empty();
  EmbeddedGateway gw;
  PoolStats pool;
  std::mutex cache_mu;
  std::vector<Cache::Entry> pending;
  auto flush = [&](bool force) {
    std::vector<Cache::Entry> batch;
    {
      std::lock_guard<std::mutex> lock(cache_mu);
      if (!force && pending.size() < 200) return;
      batch.swap(pending);
    }
    if (cache) {
      std::string e = cache->put(batch);
      if (!e.empty() && !o.quiet) err << "warning: answer cache: " << e << "\n";
    }
  };
  if (!jobs.empty() || needs_judge) {
    gateway::Options gopts;
    gopts.config_path = o.config_path;
    gopts.upstreams = o.upstreams;
    gopts.threads = o.gateway_threads;
    gopts.extra_bindings = bindings;
    std::string gerr;
    if (!gw.start(std::move(gopts), gerr)) {
      err << "error: " << gerr << "\n";
      return 2;
    }
    if (!o.quiet && !jobs.empty())
      err << "eval: " << jobs.size() << " requests (" << cache_hits << " answers from the cache), concurrency "
          << o.concurrency << "\n";
    run_jobs(jobs, gw.port(), o, pool, err, [&](size_t i) {
      if (!cache || !jobs[i].error.empty() || jobs[i].out.status != 200) return;
      auto& [rel, hash, rep] = job_keys[i];
      {
        std::lock_guard<std::mutex> lock(cache_mu);
        pending.push_back({rel, hash, rep, output_json(jobs[i].out)});
      }
      flush(false);
    });
    flush(true);
  }
  auto answer = [&](const ArmPlan& arm, size_t i, int r) -> std::pair<const Output*, const std::string*> {
    const Slot& s = arm.slots[i][static_cast<size_t>(r)];
    if (s.job < 0) return {&s.cached, nullptr};
    const Job& j = jobs[static_cast<size_t>(s.job)];
    return {&j.out, j.error.empty() ? nullptr : &j.error};
  };

  // ---- llm-rubric verdicts: asked once per (judge, rubric, output), cached
  std::map<std::string, JudgeVerdict> verdicts;  // key -> verdict
  std::map<std::string, std::string> verdict_errors;
  if (needs_judge) {
    std::vector<Job> jjobs;
    std::vector<std::pair<std::string, std::string>> jkeys;  // (judge, key)
    std::set<std::string> seen;
    for (const auto& arm : arms) {
      for (size_t i = 0; i < ncases; ++i) {
        for (int r = 0; r < R; ++r) {
          auto [outp, e] = answer(arm, i, r);
          if (e) continue;
          for (const auto& a : suite.cases[i].asserts) {
            if (a.type != "llm-rubric") continue;
            std::string key = sha256_hex(a.judge + '\0' + a.value + '\0' + outp->text);
            if (!seen.insert(key).second) continue;
            if (cache && o.cache) {
              if (auto v = cache->get("judge:" + a.judge, key, 0)) {
                if (auto jv = parse_judge_reply(*v)) {
                  verdicts[key] = *jv;
                  ++cache_hits;
                  continue;
                }
              }
            }
            Job j;
            std::string b = "{\"model\":";
            append_json_string(b, judge_model[a.judge]);
            b += ",\"messages\":" + judge_messages(a.value, outp->text) + ",\"temperature\":0,\"stream\":false}";
            j.body = std::move(b);
            j.stream = false;
            jjobs.push_back(std::move(j));
            jkeys.emplace_back(a.judge, key);
          }
        }
      }
    }
    if (!jjobs.empty()) {
      if (!o.quiet) err << "eval: " << jjobs.size() << " llm-rubric gradings\n";
      run_jobs(jjobs, gw.port(), o, pool, err, nullptr);
      std::vector<Cache::Entry> entries;
      for (size_t k = 0; k < jjobs.size(); ++k) {
        const auto& [judge, key] = jkeys[k];
        if (!jjobs[k].error.empty() || jjobs[k].out.status != 200) {
          verdict_errors[key] = "judge '" + judge + "': " +
                                (jjobs[k].error.empty() ? jjobs[k].out.text : jjobs[k].error);
          continue;
        }
        auto v = parse_judge_reply(jjobs[k].out.text);
        if (!v) {
          verdict_errors[key] = "judge '" + judge + "' did not answer with {\"pass\", \"score\", \"reason\"}: " +
                                jjobs[k].out.text.substr(0, 120);
          continue;
        }
        verdicts[key] = *v;
        entries.push_back({"judge:" + judge, key, 0, verdict_json(*v)});
      }
      if (cache) cache->put(entries);
    }
  }
  gw.stop();

  // ---- verdicts per case
  JudgeLookup lookup = [&](const std::string& judge, const std::string& rubric,
                           const std::string& text) -> std::optional<JudgeVerdict> {
    auto it = verdicts.find(sha256_hex(judge + '\0' + rubric + '\0' + text));
    if (it == verdicts.end()) return std::nullopt;
    return it->second;
  };
  std::vector<ArmRun> runs(arms.size());
  std::vector<bool> included(ncases, true);
  std::vector<std::string> case_errors(ncases);
  for (size_t a = 0; a < arms.size(); ++a) {
    ArmRun& run = runs[a];
    run.release = arms[a].release;
    run.model = a == 0 ? cand_c->model_id : base_c->model_id;
    run.outputs.assign(ncases, {});
    run.verdicts.assign(ncases, {});
    for (size_t i = 0; i < ncases; ++i) {
      for (int r = 0; r < R; ++r) {
        auto [outp, e] = answer(arms[a], i, r);
        Output out = *outp;
        out.cost = cost_of(out, *arms[a].price);
        CaseVerdict v;
        if (e) {
          v.error = *e;
        } else if (!out.release.empty() && out.release != arms[a].release) {
          v.error = "answered by release " + out.release + ", expected " + arms[a].release;  // lineage check
        } else {
          v = evaluate_case(suite.cases[i], out, lookup);
          if (!v.error.empty()) {
            for (const auto& as : suite.cases[i].asserts) {
              if (as.type != "llm-rubric") continue;
              auto it = verdict_errors.find(sha256_hex(as.judge + '\0' + as.value + '\0' + out.text));
              if (it != verdict_errors.end()) v.error = it->second;
            }
          }
        }
        if (!v.error.empty() && included[i]) {
          included[i] = false;
          case_errors[i] = (a == 0 ? "candidate: " : "baseline: ") + v.error;
        }
        run.outputs[i].push_back(std::move(out));
        run.verdicts[i].push_back(std::move(v));
      }
    }
  }
  int64_t errors = std::count(included.begin(), included.end(), false);
  if (errors > o.max_errors) {
    err << "error: " << errors << " of " << ncases << " cases have no usable answer (--max-errors " << o.max_errors
        << "); the gate cannot be decided. First ones:\n";
    int shown = 0;
    for (size_t i = 0; i < ncases && shown < 5; ++i) {
      if (included[i]) continue;
      err << "  " << suite.cases[i].id << ": " << case_errors[i] << "\n";
      ++shown;
    }
    return 2;
  }

  // ---- the gate
  auto arm_data = [&](const ArmRun& run) {
    ArmData d;
    for (size_t i = 0; i < ncases; ++i) {
      int passes = 0;
      double cost = 0, ttft = 0, lat = 0;
      for (int r = 0; r < R; ++r) {
        const auto& out = run.outputs[i][static_cast<size_t>(r)];
        passes += run.verdicts[i][static_cast<size_t>(r)].pass;
        cost += out.cost, ttft += out.ttft_ms, lat += out.latency_ms;
      }
      d.passes.push_back(passes);
      d.pass.push_back(static_cast<double>(passes) / R);
      d.cost.push_back(cost / R);
      d.ttft.push_back(ttft / R);
      d.latency.push_back(lat / R);
      d.flaky.push_back(passes > 0 && passes < R);
    }
    return d;
  };
  ArmData cand_d = arm_data(runs[0]);
  ArmData base_d;
  if (base_c) base_d = arm_data(runs[1]);
  GateResult gate = decide_gate(suite, included, cand_d, base_c ? &base_d : nullptr, R);
  if (gate.decided == 0) {
    err << "error: every gate limit was skipped (regression limits need --baseline or --baseline-route): nothing "
           "to decide\n";
    return 2;
  }

  // ---- reports and the eval run
  RunReport rep;
  rep.run_id = random_token("ev_", 6);
  rep.created_by = o.actor.empty() ? now_actor() : o.actor;
  rep.created_at = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  rep.suite = &suite;
  rep.route = cand_c->route;
  rep.cand = &runs[0];
  rep.base = base_c ? &runs[1] : nullptr;
  rep.repeat = R;
  rep.requests_sent = pool.sent.load();
  rep.retries = pool.retries.load();
  rep.cache_hits = cache_hits;
  rep.included = included;
  rep.case_errors = case_errors;
  rep.gate = gate;
  rep.warnings = suite.warnings;
  rep.junit_all_failures = o.junit_all_failures;
  rep.wall_s = std::chrono::duration<double>(Clock::now() - t_start).count();

  bool ok = true;
  if (!o.json_path.empty()) ok = write_file(o.json_path, report_json(rep, true), err) && ok;
  if (!o.junit_path.empty()) ok = write_file(o.junit_path, report_junit(rep), err) && ok;
  if (!o.markdown_path.empty()) ok = write_file(o.markdown_path, report_markdown(rep), err) && ok;
  if (!ok) return 2;

  if (o.record) {
    store::EvalRunRecord rec;
    rec.id = rep.run_id;
    rec.route = rep.route;
    rec.release = cand_c->id;
    rec.baseline = base_c ? base_c->id : "";
    rec.suite_name = suite.name;
    rec.suite_hash = suite.hash;
    rec.summary = report_json(rep, false);
    rec.created_by = rep.created_by;
    rec.passed = gate.passed;
    rec.created_at = rep.created_at;
    auto outcome = store->record_eval_run(rec);
    if (!outcome.ok()) {
      err << "error: recording the eval run: " << outcome.error << "\n";
      return 2;
    }
  }
  out << report_text(rep) << std::flush;
  return gate.passed ? 0 : 1;
}

}  // namespace sluice::eval
