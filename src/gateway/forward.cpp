// gateway/forward.cpp: Worker::forward, the attempt loop every upstream call goes through;
// the upstream connection pools and the deadline sweep; reading a whole answer; and the two
// callers that are not a client's request: the rollout's mirror (shadow) and the blue-green
// warm-up probe (call_blocking).
#include "gateway/forward.hpp"

#include <sys/socket.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>

#include "gateway/worker.hpp"
#include "json/chat.hpp"
#include "json/splice.hpp"
#include "pipeline/filters.hpp"
#include "quality/refusal.hpp"
#include "quality/text.hpp"
#include "release/compiled.hpp"
#include "rollout/sink.hpp"
#include "net/wire.hpp"
#include "sse/parser.hpp"
#include "upstream/retry.hpp"

namespace sluice::gateway {

namespace {

using std::chrono::milliseconds;

bool retryable_status(unsigned s) { return s == 502 || s == 503 || s == 504 || s == 429 || s == 500; }


// A reused keep-alive connection the upstream had closed fails at once; one that fails
// after a while was a live request the upstream dropped, and is not resent to it.
constexpr auto kStaleWithin = std::chrono::milliseconds(1000);

}  // namespace

void Exchange::finish(upstream::Outcome o, std::string_view why) {
  if (finished || !upstream) return;
  finished = true;
  if (trace)
    trace->end_attempt(span,
                       o == upstream::Outcome::kSuccess       ? "success"
                       : o == upstream::Outcome::kRateLimited ? "rate_limited"
                       : o == upstream::Outcome::kIgnored     ? "ignored"
                                                              : "failure",
                       why, otel::now_ns());
  if (!check) upstream->health->record(o, unix_millis(), probe, why);
  load.release();
}

net::UpstreamPool& Worker::pool_for(const config::UpstreamRuntime& u) {
  auto it = pools_.find(u.identity);
  if (it != pools_.end()) return *it->second;
  net::UpstreamEndpoint ep;
  ep.host = u.cfg->parsed.host;
  ep.port = u.cfg->parsed.port;
  ep.tls = u.cfg->parsed.tls;
  ep.tls_verify = u.cfg->tls_verify;
  ep.ca_file = u.cfg->ca_file;
  ep.max_idle = static_cast<size_t>(u.cfg->max_idle_connections);
  return *pools_.emplace(u.identity, std::make_unique<net::UpstreamPool>(ioc, std::move(ep))).first->second;
}

namespace {

// A client that hangs up cancels the upstream request at once instead of when we next write.
void arm_watch(ClientWatch& w) {
  w.armed = true;
  tcp::socket& sock = w.watched->socket();
  sock.async_wait(tcp::socket::wait_read, [self = w.shared_from_this(), &sock](error_code ec) {
    if (!self->active || ec) return;
    char c;
    ssize_t r = ::recv(sock.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
      self->gone = true;
      if (self->upstream) self->upstream->cancel();
    }
    // r > 0: the client pipelined its next request; it is read after this one.
  });
}

}  // namespace

void Worker::watch(const std::shared_ptr<ClientWatch>& owned) {
  ClientWatch& w = *owned;  // shared: the hang-up wait keeps it alive past the request
  w.swept = true;
  w.prev = nullptr;
  w.next = watches_;
  if (watches_) watches_->prev = &w;
  watches_ = &w;
  sweep_deadlines();
}

void Worker::unwatch(ClientWatch& w) {
  if (w.prev) w.prev->next = w.next; else if (watches_ == &w) watches_ = w.next;
  if (w.next) w.next->prev = w.prev;
  w.prev = w.next = nullptr;
  w.active = false;
  w.upstream = nullptr;
  if (w.armed) {
    error_code ec;
    w.watched->socket().cancel(ec);
  }
}

void Worker::sweep_deadlines() {
  if (sweeping_) return;
  if (!sweep_) sweep_ = std::make_unique<asio::steady_timer>(ioc);
  sweeping_ = true;
  sweep_->expires_after(std::chrono::milliseconds(25));
  sweep_->async_wait([this](error_code ec) {
    sweeping_ = false;
    if (ec) return;
    auto now = Clock::now();
    bool any = false;
    for (ClientWatch* w = watches_; w; w = w->next) {
      // Still waiting after a sweep: watch its client for a hang-up from now on.
      if (!w->armed && w->watched) arm_watch(*w);
      if (w->upstream_deadline != Clock::time_point::max() || w->client_deadline != Clock::time_point::max()) any = true;
      if (w->upstream && now >= w->upstream_deadline) {
        w->upstream_expired = true;
        w->upstream->cancel();
      }
      if (w->client && now >= w->client_deadline) {
        w->client_expired = true;
        error_code ignored;
        w->client->socket().close(ignored);
      }
    }
    // Requests still linked keep it going: a deadline set later (after a slow connect, a
    // retry's backoff, a fallback step) must find the sweep running.
    if (any || watches_) sweep_deadlines();
  });
}

void Worker::abort_streams() {
  for (ClientWatch* w = watches_; w; w = w->next) {
    w->shutdown = true;
    if (w->upstream) w->upstream->cancel();
  }
}

awaitable<error_code> Worker::read_body(Exchange& ex, std::string& body, Clock::time_point deadline) {
  const milliseconds idle(ex.upstream->cfg->timeouts.idle_ms);
  char rbuf[4096];
  error_code ec;
  while (!ec && !ex.parser->is_done()) {
    ex.conn->expires_at(std::min(deadline, Clock::now() + idle));
    size_t n = co_await ex.conn->read_some(*ex.parser, rbuf, sizeof rbuf, ec);
    body.append(rbuf, n);
  }
  // An Anthropic answer reaches everything after this as a chat completion.
  if (!ec && ex.anthropic) body = ex.anthropic->whole(json_, body, static_cast<int>(ex.parser->get().result_int()));
  if (!ec && ex.parser->get().keep_alive()) {
    pool_for(*ex.upstream).release(std::move(ex.conn));
  } else {
    ex.conn->close();
  }
  co_return ec;
}

// The mirror: the candidate answers the same request, never streamed, after the user got the
// stable answer. Bounded per worker; its result only feeds the rollout's evidence.
awaitable<void> Worker::shadow(pipeline::ShadowJob job) {
  struct Done {
    int64_t& n;
    ~Done() { --n; }
  } done{shadow_inflight_};
  auto snap = snaps_.get();
  const config::Resolution* res = snap->resolve(job.route);
  if (!res || !res->live || res->live->id != job.rollout_id || !res->candidate || res->candidate_upstreams.empty())
    co_return;
  res->live->shadow_sent.fetch_add(1, std::memory_order_relaxed);
  rollout::ShadowPair pair;
  pair.rollout_id = job.rollout_id;
  pair.request_id = job.request_id;
  pair.stable = job.stable;
  pair.stable_text = std::move(job.stable_text);
  const auto t0 = Clock::now();
  auto fail = [&] {
    pair.candidate.error = true;
    pair.candidate.latency_ms = static_cast<double>(micros_between(t0, Clock::now())) / 1000.0;
    shared_.rollout_sink->push(index, std::move(pair));
  };
  std::string body = std::move(job.body);
  const std::vector<json::Edit> extra = {{"stream", "false"}, {"stream_options", ""}};
  if (release::render(*res->candidate, body, job.vars_header, json_, extra)) {
    fail();
    co_return;
  }
  // Internal traffic is the lowest tier: a mirror takes a slot of the candidate's pool only
  // when a sheddable request would, and is dropped (never queued) otherwise.
  admission::Gate* gate = res->candidate_balance ? res->candidate_balance->gate.get() : nullptr;
  const int64_t est = static_cast<int64_t>(body.size() / 4) + 256;
  if (gate && gate->acquire(admission::Tier::kSheddable, est, nullptr, unix_millis()) != admission::Gate::Result::kAdmitted) {
    gate->count_shed(admission::Tier::kSheddable);
    res->live->shadow_dropped.fetch_add(1, std::memory_order_relaxed);
    co_return;
  }
  struct SlotGuard {
    admission::Gate* g;
    int64_t tokens;
    ~SlotGuard() {
      if (g) g->release(tokens, -1, unix_millis());
    }
  } slot{gate, est};
  // The same forwarder as user traffic: the candidate's pool, breakers, retries, deadlines.
  ClientWatch watch;  // no client to watch: the mirror runs after the user was answered
  ForwardSpec fs;
  fs.targets = res->candidate_upstreams;
  fs.balance = res->candidate_balance;
  fs.path = "/chat/completions";
  fs.body = body;
  fs.request_id = job.request_id;
  fs.user_agent = "sluice/0.1 (shadow)";
  fs.max_attempts = snap->config().limits.max_attempts;
  fs.est_tokens = static_cast<int64_t>(body.size() / 4) + 256;
  ForwardResult fr = co_await forward(*snap, fs, watch);
  if (!fr.exchange) {
    fail();
    co_return;
  }
  Exchange& ex = *fr.exchange;
  const config::UpstreamRuntime& u = *ex.upstream;
  const int status = static_cast<int>(ex.parser->get().result_int());
  std::string answer = std::move(ex.prefetched);
  error_code ec = co_await read_body(ex, answer, Clock::now() + milliseconds(u.cfg->timeouts.total_ms));
  if (ec || status != 200) {
    ex.finish(ec ? upstream::Outcome::kFailure : outcome_of_status(status), ec ? "shadow_read" : "shadow_status");
    fail();
    co_return;
  }
  ex.finish(upstream::Outcome::kSuccess);
  std::string text, finish;
  auto usage = json::response_usage_and_answer(json_, answer, pipeline::kMaxCapturedAnswer, &text, &finish);
  rollout::Observation& c = pair.candidate;
  c.latency_ms = static_cast<double>(micros_between(t0, Clock::now())) / 1000.0;
  if (usage && usage->completion_tokens >= 0) c.tokens_out = static_cast<double>(usage->completion_tokens);
  if (usage && usage->prompt_tokens >= 0) c.tokens_in = static_cast<double>(usage->prompt_tokens);
  c.cost = usage ? u.cfg->cost(usage->prompt_tokens, usage->cached_tokens, usage->completion_tokens, c.latency_ms / 1000.0) : -1;
  c.refusal = quality::is_refusal(text, finish) ? 1 : 0;
  // Checked against the request's own JSON Schema, as the live answer was.
  if (job.stable.schema_valid >= 0) c.schema_valid = quality::check_json(text, job.json_schema).valid ? 1 : 0;
  pair.candidate_text = std::move(text);
  shared_.rollout_sink->push(index, std::move(pair));
}

awaitable<void> Worker::sleep_for(milliseconds d) {
  asio::steady_timer t(ioc);
  t.expires_after(d);
  error_code ec;
  co_await t.async_wait(ec_await(ec));
}

awaitable<ForwardResult> Worker::forward(const config::Snapshot& snap, const ForwardSpec& spec, ClientWatch& watch) {
  ForwardResult res;
  const config::Config& cfg = snap.config();
  const auto& ups = snap.upstreams();
  // A plain list (a primary and its fallbacks) has no ejection valve: when all of it is
  // unavailable the request fails fast (or waits). Pools keep max_ejected_percent of theirs.
  static const upstream::BalanceSettings kOrdered = [] {
    upstream::BalanceSettings b;
    b.max_ejected_share = 1.0;
    return b;
  }();
  const upstream::BalanceSettings& balance = spec.balance ? *spec.balance : kOrdered;
  std::vector<upstream::Target> targets;
  targets.reserve(spec.targets.size());
  for (size_t i : spec.targets) targets.push_back({i, ups[i].health.get()});
  const int64_t wait_budget_ms = cfg.limits.unavailable_wait_ms;
  const auto t0 = Clock::now();

  upstream::Plan plan;
  if (spec.health_check && !spec.targets.empty())
    plan.steps.push_back({spec.targets[0], ups[spec.targets[0]].health.get(), true});
  while (plan.steps.empty()) {
    plan = upstream::make_plan(balance, targets, {spec.affinity, ++balance_seq_, rng_(), unix_millis()});
    if (!plan.steps.empty()) break;
    // Every target is unavailable (breakers open, Retry-After): fail fast, or wait for the
    // first to recover when the operator allows it.
    int64_t wait = plan.earliest_ms - unix_millis();
    int64_t waited = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
    if (wait > 0 && waited + wait <= wait_budget_ms && !watch.gone) {
      co_await sleep_for(milliseconds(wait));
      continue;
    }
    int64_t secs = std::max<int64_t>(1, (std::max<int64_t>(wait, 0) + 999) / 1000);
    res.retry_after = std::to_string(secs);
    // Name each target and why its breaker opened: the client (and the eval runner) sees
    // the cause, not only the symptom.
    std::string why;
    for (size_t i : spec.targets) {
      upstream::HealthView v = ups[i].health->view(unix_millis());
      why += (why.empty() ? "" : "; ") + ups[i].cfg->name + ": circuit open" + (v.reason.empty() ? "" : ", " + v.reason);
    }
    res.failure = error_of(ErrorKind::kUpstreamsUnavailable, "no upstream can take the request now (" + why +
                                                                 "); the first recovers in about " + std::to_string(secs) + " s");
    metrics_.upstream_error(ups[spec.targets.empty() ? 0 : spec.targets[0]].cfg->name, code_of(ErrorKind::kUpstreamsUnavailable));
    co_return res;
  }

  int max_attempts = std::max(spec.max_attempts, static_cast<int>(plan.steps.size()));
  // A candidate gets one try per target: the stable release is its fallback, not a retry of
  // the release under test (and each of its failures counts against it).
  if (spec.candidate_with_fallback) max_attempts = static_cast<int>(plan.steps.size());
  if (spec.health_check) max_attempts = 1;
  if (!spec.health_check) shared_.retry_budget.on_request(unix_millis());
  bool stale_retry_left = true;
  int skipped_in_a_row = 0;
  // A silent upstream (a timeout, or a connection dropped after a long silence) is left for
  // the rest of this request: never retried in place.
  std::vector<char> left(plan.steps.size(), 0);
  // Moves to the next attempt when one remains and the retry budget allows it.
  auto retry_next = [&](int& attempt, std::string_view upstream_name) {
    if (++attempt >= max_attempts) return false;
    if (shared_.retry_budget.try_spend(unix_millis())) return true;
    metrics_.upstream_error(upstream_name, code_of(ErrorKind::kRetryBudgetExhausted));
    return false;
  };
  for (int attempt = 0; attempt < max_attempts;) {
    const size_t si = static_cast<size_t>(attempt) % plan.steps.size();
    const upstream::Plan::Step& step = plan.steps[si];
    const config::UpstreamRuntime& u = ups[step.index];
    upstream::Health& health = *u.health;
    config::Timeouts to = u.cfg->timeouts;
    if (spec.timeout_ms > 0) {
      to.connect_ms = std::min(to.connect_ms, spec.timeout_ms);
      to.first_byte_ms = std::min(to.first_byte_ms, spec.timeout_ms);
      to.total_ms = std::min(to.total_ms, spec.timeout_ms);
    }
    // The breaker may have opened (another request) since the plan was made.
    upstream::Health::Admit admit = spec.health_check ? upstream::Health::Admit{true, false}
                                    : left[si]        ? upstream::Health::Admit{}
                                                      : health.admit(unix_millis(), step.forced);
    if (!admit.allowed) {
      ++attempt;
      if (++skipped_in_a_row >= static_cast<int>(plan.steps.size())) break;
      continue;
    }
    skipped_in_a_row = 0;
    // A retry of the same target waits a full-jitter backoff first (the retry budget was
    // checked when the retry was decided).
    if (res.attempts > 0 && stale_retry_left) {
      if (attempt >= static_cast<int>(plan.steps.size())) {
        std::uniform_real_distribution<double> d(0, 1);
        int64_t b = upstream::backoff_ms(attempt / static_cast<int>(plan.steps.size()) - 1, cfg.limits.retry_backoff_base_ms,
                                         cfg.limits.retry_backoff_cap_ms, d(rng_));
        if (b > 0) co_await sleep_for(milliseconds(b));
        if (watch.gone) {
          health.record(upstream::Outcome::kIgnored, unix_millis(), admit.probe);
          break;
        }
      }
    }
    res.upstream = u.cfg->name;
    ++res.attempts;
    auto ex = std::make_unique<Exchange>();
    ex->upstream = &u;
    ex->probe = admit.probe;
    ex->check = spec.health_check;
    std::string traceparent;
    if (spec.trace) {
      ex->trace = spec.trace;
      ex->span = spec.trace->begin_attempt(u.cfg->name, u.cfg->parsed.host, u.cfg->parsed.port, otel::now_ns(),
                                           otel::random_span_id());
      traceparent = spec.trace->traceparent(ex->span);
    }
    // A health check or load poll is not traffic: the balancer does not count it.
    if (!spec.health_check) ex->load = upstream::LoadGuard(&health, spec.est_tokens);
    net::UpstreamPool& pool = pool_for(u);
    const auto deadline = Clock::now() + milliseconds(to.total_ms);
    ErrorKind kind = ErrorKind::kNone;
    ex->conn = co_await pool.acquire(milliseconds(to.connect_ms), kind, !stale_retry_left);
    if (watch.gone) {
      ex->finish(upstream::Outcome::kIgnored);
      break;
    }
    if (!ex->conn) {
      metrics_.upstream_error(u.cfg->name, code_of(kind));
      if (kind == ErrorKind::kConnectTimeout) left[si] = 1;
      res.failure = error_of(kind, kind == ErrorKind::kConnectTimeout
                                       ? "upstream '" + u.cfg->name + "' did not accept a connection in time"
                                       : "upstream '" + u.cfg->name + "' is unreachable (" + std::string(code_of(kind)) + ")");
      ex->finish(upstream::Outcome::kFailure, res.failure->message);
      if (!retry_next(attempt, u.cfg->name)) break;
      continue;
    }
    // An Anthropic upstream gets the chat request in its Messages shape, its key in x-api-key.
    const bool anthropic = u.cfg->api == config::Upstream::Api::kAnthropic && spec.path == "/chat/completions";
    std::string_view path = spec.path, body = spec.body;
    std::string translated;
    if (anthropic) {
      if (auto e = bridge::anthropic_request(json_, spec.body, translated)) {
        ex->conn->close();
        ex->finish(upstream::Outcome::kIgnored);
        res.failure = std::move(e);
        break;
      }
      path = "/messages";
      body = translated;
      ex->anthropic = std::make_unique<bridge::AnthropicAnswer>(static_cast<size_t>(cfg.limits.max_sse_event_bytes));
    }
    std::string auth = u.api_key.empty() || anthropic ? std::string() : "Bearer " + u.api_key;
    std::string head = net::request_head(spec.method, (spec.from_root ? std::string(path) : u.path_prefix + std::string(path)), u.host_header, body.size(),
                                         {{"Content-Type", body.empty() ? "" : "application/json"},
                                          {"Authorization", auth},
                                          {"x-api-key", anthropic ? std::string_view(u.api_key) : std::string_view()},
                                          {"anthropic-version", anthropic ? std::string_view(u.cfg->anthropic_version) : std::string_view()},
                                          {"User-Agent", spec.user_agent},
                                          {"x-request-id", spec.request_id},
                                          {"traceparent", traceparent}});
    watch.upstream = ex->conn.get();
    const auto sent = Clock::now();
    // Until the answer's head: a client's request leaves the deadline to the worker's sweep
    // (a time stamp, no timer armed and cancelled per request); other callers arm the
    // connection's own timer.
    const auto first_byte_deadline = std::min(deadline, sent + milliseconds(to.first_byte_ms));
    if (watch.swept) {
      ex->conn->tcp().expires_never();
      watch.upstream_expired = false;
      watch.upstream_deadline = first_byte_deadline;
      sweep_deadlines();  // running already in all but odd cases; a no-op then
    } else {
      ex->conn->expires_at(first_byte_deadline);
    }
    error_code ec = co_await ex->conn->write(head, body);
    ex->parser.emplace();
    ex->parser->body_limit(spec.stream ? std::numeric_limits<uint64_t>::max()
                                      : static_cast<uint64_t>(cfg.limits.max_response_bytes));
    if (!ec) ec = co_await ex->conn->read_header(*ex->parser);
    if (watch.swept) {
      watch.upstream_deadline = Clock::time_point::max();
      // Expired in the same loop turn as the head arrived: the sweep closed the connection,
      // so this is a timeout even when the read itself succeeded (as Beast's timer reports it).
      if (watch.upstream_expired) ec = beast::error::timeout;
      watch.upstream_expired = false;
    }
    if (watch.gone) {
      ex->conn->close();
      watch.upstream = nullptr;
      ex->finish(upstream::Outcome::kIgnored);
      break;
    }
    if (ec) {
      const bool quick = Clock::now() - sent < kStaleWithin;
      bool stale = ex->conn->reused && quick &&
                   (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
                    ec == asio::error::broken_pipe);
      ex->conn->close();
      watch.upstream = nullptr;
      if (stale && stale_retry_left) {  // a keep-alive connection the upstream had closed
        stale_retry_left = false;
        --res.attempts;
        ex->finish(upstream::Outcome::kIgnored);
        continue;
      }
      stale_retry_left = true;
      if (ec == http::error::body_limit) {  // Content-Length above max_response_bytes: retrying won't help
        metrics_.upstream_error(u.cfg->name, code_of(ErrorKind::kResponseTooLarge));
        ex->finish(upstream::Outcome::kSuccess);
        res.failure = error_of(ErrorKind::kResponseTooLarge, "upstream '" + u.cfg->name + "' response exceeds max_response_bytes");
        break;
      }
      if (watch.shutdown) {
        ex->finish(upstream::Outcome::kIgnored);
        res.failure = error_of(ErrorKind::kShuttingDown, "the gateway is shutting down");
        break;
      }
      if (ec == beast::error::timeout) {
        kind = ErrorKind::kFirstByteTimeout;
        res.failure = error_of(kind, "upstream '" + u.cfg->name + "' did not answer in time");
        left[si] = 1;
      } else {
        if (!quick) left[si] = 1;  // held the request silently, then dropped it
        kind = ec.category() == http::make_error_code(http::error::bad_version).category() ? ErrorKind::kBadResponse
                                                                                           : ErrorKind::kReset;
        res.failure = error_of(kind, "upstream '" + u.cfg->name + "' failed before answering (" +
                                         std::string(code_of(kind)) + ")");
      }
      metrics_.upstream_error(u.cfg->name, code_of(kind));
      ex->finish(upstream::Outcome::kFailure, res.failure->message);
      if (!retry_next(attempt, u.cfg->name)) break;
      continue;
    }
    stale_retry_left = true;
    unsigned status = ex->parser->get().result_int();
    if (status == 429) {
      // The upstream is alive but asks for time: leave it alone for Retry-After, go elsewhere now.
      auto ra = upstream::parse_retry_after(ex->parser->get()[http::field::retry_after], unix_millis() / 1000);
      if (ra && *ra > 0) health.hold_off_until(unix_millis() + *ra);
    }
    const bool others = plan.steps.size() > 1;
    // The retry budget is spent only when a retry is otherwise due; refused, the upstream's
    // own answer goes to the client.
    int next = attempt;
    const bool retry = retryable_status(status) && attempt + 1 < max_attempts && (status != 429 || others) &&
                       retry_next(next, u.cfg->name);
    // A rollout's candidate answering 5xx/429 it will not retry has failed before the first
    // byte: the stable release answers instead (the caller), the client never sees it. A 4xx
    // from the candidate's upstream (model not found, auth, a rejected param) falls back too;
    // it counts against the candidate only if stable then answers.
    const bool fall_back =
        !retry && ((spec.candidate_with_fallback && (retryable_status(status) || (status >= 400 && status < 500))) ||
                   (spec.fail_on_5xx && status >= 500) || (spec.fail_on_429 && status == 429));
    if (retry || fall_back) {
      const ErrorKind k = status == 429 ? ErrorKind::kStatus429 : status >= 500 ? ErrorKind::kStatus5xx : ErrorKind::kStatus4xx;
      metrics_.upstream_error(u.cfg->name, code_of(k));
      ex->finish(status == 429 ? upstream::Outcome::kRateLimited
                : status >= 500 ? upstream::Outcome::kFailure
                                : upstream::Outcome::kSuccess,
                "answered " + std::to_string(status));
      res.failure.reset();
      if (fall_back) res.failure = error_of(k, "upstream '" + u.cfg->name + "' answered " + std::to_string(status));
      ex->conn->close();  // do not bother draining an error body
      watch.upstream = nullptr;
      if (fall_back) break;
      attempt = next;
      continue;
    }
    // A stream: wait (bounded by first_token_ms) for its first token before committing to
    // this upstream; a slow first token moves the request to the next target.
    std::string_view ctype = ex->parser->get()[http::field::content_type];
    if (spec.stream && status == 200 && to.first_token_ms > 0 && ctype.substr(0, 17) == "text/event-stream") {
      bool first = false;
      sse::Parser events(static_cast<size_t>(cfg.limits.max_sse_event_bytes));
      std::string scratch;
      char rbuf[1024];  // in the coroutine's frame, held while the first token is awaited
      const auto token_deadline = std::min(deadline, sent + milliseconds(to.first_token_ms));
      error_code rec;
      while (!first && !rec && !ex->parser->is_done()) {
        ex->conn->expires_at(token_deadline);
        size_t n = co_await ex->conn->read_some(*ex->parser, rbuf, sizeof rbuf, rec);
        std::string_view got(rbuf, n);
        if (ex->anthropic) got = ex->anthropic->stream(json_, got);
        ex->prefetched.append(got);
        events.feed(got, [&](std::string_view raw) {
          std::string_view data = sse::Parser::data_of(raw, scratch);
          if (data.empty()) return;
          if (data == "[DONE]") {
            first = true;
            return;
          }
          json::ChunkInfo info = json::inspect_chunk(json_, data);
          if (!info.valid_json || info.is_error || info.has_content || !info.finish_reason.empty()) first = true;
        });
      }
      if (watch.gone) {
        ex->conn->close();
        watch.upstream = nullptr;
        ex->finish(upstream::Outcome::kIgnored);
        break;
      }
      if (!first && rec == beast::error::timeout) {
        metrics_.upstream_error(u.cfg->name, code_of(ErrorKind::kFirstTokenTimeout));
        ex->conn->close();
        watch.upstream = nullptr;
        ex->finish(upstream::Outcome::kFailure, "first_token_timeout");
        left[si] = 1;
        res.failure = error_of(ErrorKind::kFirstTokenTimeout, "upstream '" + u.cfg->name + "' sent no token within first_token_ms");
        if (!retry_next(attempt, u.cfg->name)) break;
        continue;
      }
      // Anything else (the first token, an early end or error) is the relay's to handle.
    }
    // A 400 may say the prompt does not fit the model: never resent unchanged, but the
    // route's fallback chain may name a larger-context model for exactly that error. The
    // (small) error body is read here; any other 400 is relayed from what was read.
    if (status == 400 && spec.fail_on_context_length) {
      char rbuf[1024];  // in the coroutine's frame, held while the first token is awaited
      error_code rec;
      const auto body_deadline = std::min(deadline, Clock::now() + milliseconds(to.idle_ms));
      while (!rec && !ex->parser->is_done() && ex->prefetched.size() < (64u << 10)) {
        ex->conn->expires_at(body_deadline);
        size_t n = co_await ex->conn->read_some(*ex->parser, rbuf, sizeof rbuf, rec);
        ex->prefetched.append(rbuf, n);
      }
      if (ex->prefetched.find("context_length_exceeded") != std::string::npos ||
          (ex->anthropic && ex->prefetched.find("prompt is too long") != std::string::npos)) {
        ex->conn->close();
        watch.upstream = nullptr;
        ex->finish(upstream::Outcome::kSuccess, "answered 400");  // the request's size, not the upstream's fault
        res.failure = error_of(ErrorKind::kContextLengthExceeded,
                               "upstream '" + u.cfg->name + "': the prompt is longer than the model's context");
        break;
      }
    }
    res.failure.reset();
    res.exchange = std::move(ex);
    co_return res;
  }
  res.gone = watch.gone;
  if (!res.failure && !res.gone) res.failure = error_of(ErrorKind::kUpstreamFailed, "no upstream could serve the request");
  co_return res;
}

}  // namespace sluice::gateway

namespace sluice::gateway {

awaitable<void> Worker::check_health(std::shared_ptr<const config::Snapshot> snap, size_t i) {
  const config::UpstreamRuntime& u = snap->upstreams()[i];
  const config::HealthCheck& hc = u.cfg->health_check;
  std::string model = hc.model;
  std::string why = co_await deep_check(snap, i, std::move(model), hc.timeout_ms);
  if (!why.empty()) metrics_.upstream_error(u.cfg->name, "health_check_failed");
  u.health->record_check(why.empty(), unix_millis(), why, hc.unhealthy_after);
}

awaitable<std::string> Worker::deep_check(std::shared_ptr<const config::Snapshot> snap, size_t i, std::string model,
                                          int64_t timeout_ms) {
  // A real completion of one token: the upstream's model server answers, not only its port.
  std::string body = "{\"model\":";
  append_json_string(body, model);
  body += ",\"messages\":[{\"role\":\"user\",\"content\":\"ping\"}],\"max_tokens\":1,\"stream\":false}";
  const size_t target[] = {i};
  ClientWatch watch;
  ForwardSpec fs;
  fs.targets = target;
  fs.path = "/chat/completions";
  fs.body = body;
  fs.request_id = "health-check";
  fs.user_agent = "sluice/0.1 (health check)";
  fs.health_check = true;
  fs.timeout_ms = timeout_ms;
  fs.est_tokens = 1;
  const auto deadline = Clock::now() + milliseconds(timeout_ms);
  ForwardResult r = co_await forward(*snap, fs, watch);
  std::string why;
  if (!r.exchange) {
    why = r.failure ? r.failure->code : "no answer";
  } else {
    Exchange& ex = *r.exchange;
    const int status = static_cast<int>(ex.parser->get().result_int());
    std::string answer = std::move(ex.prefetched);
    error_code ec = co_await read_body(ex, answer, deadline);
    ex.finish(upstream::Outcome::kIgnored);  // releases its load; the caller records the check (or not)
    if (ec) {
      why = ec == beast::error::timeout ? "timeout while answering" : "failed while answering";
    } else if (status / 100 != 2) {
      why = "status " + std::to_string(status);
    } else {
      simdjson::dom::element doc;
      simdjson::dom::array choices;
      if (json_.parse(answer).get(doc) || doc["choices"].get_array().get(choices) || choices.size() == 0)
        why = "not a chat completion";
    }
  }
  co_return why;
}

awaitable<void> Worker::poll_load(std::shared_ptr<const config::Snapshot> snap, size_t i) {
  const config::UpstreamRuntime& u = snap->upstreams()[i];
  const config::LoadMetrics& lm = u.cfg->load_metrics;
  const size_t target[] = {i};
  ClientWatch watch;
  ForwardSpec fs;
  fs.targets = target;
  fs.method = "GET";
  fs.path = lm.path;
  fs.from_root = true;
  fs.request_id = "load-metrics";
  fs.user_agent = "sluice/0.1 (load metrics)";
  fs.health_check = true;  // whatever the breaker says; not counted by it
  fs.timeout_ms = std::min<int64_t>(lm.interval_ms, 2000);
  ForwardResult r = co_await forward(*snap, fs, watch);
  if (!r.exchange) co_return;
  Exchange& ex = *r.exchange;
  const int status = static_cast<int>(ex.parser->get().result_int());
  std::string text = std::move(ex.prefetched);
  error_code ec = co_await read_body(ex, text, Clock::now() + milliseconds(fs.timeout_ms));
  ex.finish(upstream::Outcome::kIgnored);
  std::optional<upstream::LoadReport> report;
  if (!ec && status == 200) report = upstream::parse_vllm_metrics(text);
  if (!report) {
    metrics_.upstream_error(u.cfg->name, "load_metrics_failed");
    co_return;
  }
  // Trusted for three intervals: a server that stops reporting falls back to the gateway's count.
  u.health->report_load(*report, unix_millis(), 3 * lm.interval_ms);
}

std::string Worker::call_blocking(const std::string& target, std::string_view method, std::string_view path,
                                  std::string body, std::chrono::milliseconds timeout) {
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::string result;
    std::string body, method, path, target;
  };
  auto st = std::make_shared<State>();
  st->body = std::move(body);
  st->method = method;
  st->path = path;
  st->target = target;
  auto run = [this, st]() -> awaitable<void> {
    std::string out;
    auto snap = snaps_.get();
    const upstream::BalanceSettings* balance = nullptr;
    std::vector<size_t> targets = snap->targets_of(st->target, balance);
    if (targets.empty()) {
      out = "upstream or pool '" + st->target + "' is not configured";
    } else {
      ClientWatch watch;
      ForwardSpec fs;
      fs.targets = targets;
      fs.balance = balance;
      fs.method = st->method;
      fs.path = st->path;
      fs.body = st->body;
      fs.request_id = "probe";
      fs.user_agent = "sluice/0.1 (probe)";
      fs.max_attempts = snap->config().limits.max_attempts;
      ForwardResult r = co_await forward(*snap, fs, watch);
      if (!r.exchange) {
        out = r.failure ? r.failure->message : "no upstream answered";
      } else {
        Exchange& ex = *r.exchange;
        const int status = static_cast<int>(ex.parser->get().result_int());
        std::string ignored;
        error_code ec = co_await read_body(
            ex, ignored, Clock::now() + std::chrono::milliseconds(ex.upstream->cfg->timeouts.total_ms));
        if (ec) {
          out = "upstream '" + ex.upstream->cfg->name + "' failed while answering";
          ex.finish(upstream::Outcome::kFailure, "probe_read");
        } else if (status < 200 || status >= 300) {
          out = "upstream '" + ex.upstream->cfg->name + "' answered status " + std::to_string(status);
          ex.finish(outcome_of_status(status), "probe_status");
        } else {
          ex.finish(upstream::Outcome::kSuccess);
        }
      }
    }
    std::lock_guard<std::mutex> lock(st->mu);
    st->result = std::move(out);
    st->done = true;
    st->cv.notify_all();
  };
  asio::co_spawn(ioc, run, asio::detached);
  std::unique_lock<std::mutex> lock(st->mu);
  if (!st->cv.wait_for(lock, timeout, [&] { return st->done; })) return "the probe timed out";
  return st->result;
}

}  // namespace sluice::gateway
