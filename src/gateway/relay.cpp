// gateway/relay.cpp: the one relay of an upstream's answer to the client, calling the
// chain's response hooks as the answer passes (pipeline/filter.hpp): the response head, each
// stream event, a whole answer, and completion.
//
// Whole bodies are read (bounded), shown to the filters, and passed through with the
// upstream's status. SSE streams are relayed event by event with backpressure (the upstream
// is read only after the client took the previous batch); a stream that breaks is finished
// with an OpenAI-shaped error event, never silently, and one that finished every choice
// without `data: [DONE]` is completed for the client.
#include <array>

#include <simdjson.h>

#include "gateway/forward.hpp"
#include "gateway/worker.hpp"
#include "json/chat.hpp"
#include "pipeline/synth.hpp"
#include "net/wire.hpp"
#include "sse/parser.hpp"

namespace sluice::gateway {

namespace {

using std::chrono::milliseconds;

std::string stream_error_event(const ApiError& e) { return "data: " + e.to_json() + "\n\n"; }

// A write of a stream's bytes, chunked for HTTP/1.1 clients, close-delimited for HTTP/1.0.
awaitable<error_code> write_stream_bytes(beast::tcp_stream& client, std::string_view bytes, bool chunked) {
  if (chunked) co_return co_await net::write_all(client, http::make_chunk(asio::buffer(bytes)));
  co_return co_await net::write_all(client, asio::buffer(bytes));
}

// How a relayed exchange ended, as the upstream's breaker counts it.
upstream::Outcome outcome_of(const RequestContext& ctx) {
  if (ctx.status == 499 || ctx.status == 0 || ctx.error == ErrorKind::kShuttingDown) return upstream::Outcome::kIgnored;
  return outcome_of_status(ctx.status);
}

}  // namespace

// A passed-through Responses API answer (or its response.created event): its id belongs to
// the request's tenant, who alone may continue it (pipeline's passthrough checks).
void Worker::own_response(const RequestContext& ctx, std::string_view json) {
  simdjson::dom::element doc;
  std::string_view id;
  if (json_.parse(json.data(), json.size()).get(doc)) return;
  if (doc["id"].get_string().get(id) && doc["response"]["id"].get_string().get(id)) return;
  const config::Config& cfg = ctx.snap->config();
  shared_.responses.put(bridge::owner_key(id), ctx.tenant, unix_millis(), cfg.responses.ttl_s * 1000);
}

awaitable<bool> Worker::relay(beast::tcp_stream& client, http::request<http::string_body>& req, RequestContext& ctx,
                              const pipeline::Chain& chain, Exchange& ex, ClientWatch& watch,
                              std::span<const net::Header> lineage, bool keep_alive) {
  const config::UpstreamRuntime& chosen = *ex.upstream;
  ctx.upstream = chosen.cfg->name;
  // However the relay ends, the upstream's breaker hears how it went (once).
  struct Settle {
    Exchange& ex;
    const RequestContext& ctx;
    ~Settle() { ex.finish(outcome_of(ctx), ctx.error_code); }
  } settle{ex, ctx};
  // The breaker hears the outcome before the client does (no window where it lags).
  auto settle_and_account = [&] {
    ex.finish(outcome_of(ctx), ctx.error_code);
    account(ctx, chain);
  };
  auto fail = [&](const ApiError& e) {
    ctx.fail(e);
    settle_and_account();
  };

  auto& ures = ex.parser->get();
  const int status = static_cast<int>(ures.result_int());
  std::string_view content_type = ures[http::field::content_type];
  const bool is_sse = content_type.substr(0, 17) == "text/event-stream";
  const bool want_stream = pipeline::streams(ctx.endpoint) && ctx.info.stream;
  if (want_stream && status == 200 && is_sse)
    co_return co_await relay_stream(client, req, ctx, chain, ex, watch, lineage, keep_alive);

  // Whole body: read (bounded), show the filters, pass through with the upstream's status.
  const config::Config& cfg = ctx.snap->config();
  std::string body = std::move(ex.prefetched);  // what the forwarder already read (a 400's body)
  const auto deadline = Clock::now() + milliseconds(chosen.cfg->timeouts.total_ms);
  error_code ec = co_await read_body(ex, body, deadline);
  watch.upstream = nullptr;
  if (watch.gone) {
    ctx.status = 499;
    ctx.set_error(ErrorKind::kClientAbort);
    settle_and_account();
    co_return false;
  }
  if (ec) {
    if (watch.shutdown) {
      ApiError e = error_of(ErrorKind::kShuttingDown, "the gateway is shutting down; retry the request");
      fail(e);
      co_return co_await respond_error(client, req, e, ctx.request_id, lineage, ctx.api);
    }
    const ErrorKind kind = ec == beast::error::timeout
                               ? (Clock::now() >= deadline ? ErrorKind::kTotalTimeout : ErrorKind::kIdleTimeout)
                           : ec == http::error::body_limit ? ErrorKind::kResponseTooLarge
                                                           : ErrorKind::kReset;
    metrics_.upstream_error(chosen.cfg->name, code_of(kind));
    ApiError e = error_of(kind, is_timeout(kind) ? "upstream '" + chosen.cfg->name + "' timed out while answering"
                                                 : "upstream '" + chosen.cfg->name + "' failed while answering (" +
                                                       std::string(code_of(kind)) + ")");
    fail(e);
    co_return co_await respond_error(client, req, e, ctx.request_id, lineage, ctx.api);
  }
  ctx.status = status;
  if (status >= 400) {
    ctx.error = ErrorKind::kUpstreamStatus;
    ctx.error_code = "upstream_status_" + std::to_string(status);
  }
  chain.on_head(ctx, pipeline::Head{status, content_type, false}, env_);
  if (status / 100 == 2) {
    if (auto e = chain.on_body(ctx, body, env_)) {
      fail(*e);
      co_return co_await respond_error(client, req, *e, ctx.request_id, lineage, ctx.api);
    }
  }
  settle_and_account();
  if (ctx.endpoint == Endpoint::kResponses && status / 100 == 2) own_response(ctx, body);
  if (ctx.front) {  // another API's client: the chat answer in its shape
    body = status / 100 == 2 ? ctx.front->whole(json_, body) : ctx.front->upstream_error(json_, body, status);
    content_type = "application/json";
  }
  std::vector<net::Header> headers(lineage.begin(), lineage.end());
  headers.insert(headers.end(), {{"Retry-After", ures[http::field::retry_after]},
                                 {"x-sluice-upstream", chosen.cfg->name},
                                 {"x-sluice-fallback", ctx.fallback},
                                 {"x-sluice-cache", ctx.cache.outcome}});
  std::string res_head = net::response_head(
      static_cast<unsigned>(status), req.version(),
      content_type.empty() ? std::string_view("application/json") : content_type, ctx.request_id, keep_alive,
      body.size(), headers);
  std::array<asio::const_buffer, 2> bufs{asio::buffer(res_head), asio::buffer(body)};
  client.expires_after(milliseconds(cfg.limits.client_write_timeout_ms));
  ec = co_await net::write_all(client, bufs);
  client.expires_never();
  co_return !ec && keep_alive;
}

awaitable<bool> Worker::relay_stream(beast::tcp_stream& client, http::request<http::string_body>& req,
                                     RequestContext& ctx, const pipeline::Chain& chain, Exchange& ex,
                                     ClientWatch& watch, std::span<const net::Header> lineage, bool keep_alive) {
  const config::Config& cfg = ctx.snap->config();
  ctx.streamed = true;
  metrics_.open_streams.fetch_add(1, std::memory_order_relaxed);
  struct StreamGuard {
    metrics::Shard& m;
    ~StreamGuard() { m.open_streams.fetch_sub(1, std::memory_order_relaxed); }
  } stream_guard{metrics_};
  chain.on_head(ctx, pipeline::Head{200, "text/event-stream", true}, env_);

  // HTTP/1.0 clients get a close-delimited body: chunked coding is HTTP/1.1 only.
  const bool chunked = req.version() >= 11;
  const bool stream_keep_alive = keep_alive && chunked;
  std::vector<net::Header> headers(lineage.begin(), lineage.end());
  headers.insert(headers.end(), {{"Cache-Control", "no-cache"},
                                 {"x-sluice-upstream", ex.upstream->cfg->name},
                                 {"x-sluice-fallback", ctx.fallback},
                                 {"x-sluice-cache", ctx.cache.outcome}});
  std::string head = net::response_head(200, req.version(), "text/event-stream", ctx.request_id, stream_keep_alive,
                                        chunked ? 0 : net::kCloseDelimited, headers, chunked);
  error_code ec;
  client.expires_after(milliseconds(cfg.limits.client_write_timeout_ms));
  ec = co_await net::write_all(client, asio::buffer(head));
  bool client_ok = !ec;

  // The exchange being relayed: the first, or one that took over mid-stream (restart or
  // continue). A later one is settled here; the first by relay().
  Exchange* cur = &ex;
  std::unique_ptr<Exchange> resumed;
  struct SettleResumed {
    std::unique_ptr<Exchange>& r;
    const RequestContext& ctx;
    ~SettleResumed() {
      if (r) r->finish(outcome_of(ctx), ctx.error_code);
    }
  } settle_resumed{resumed, ctx};
  const config::CompiledFallback* fb = ctx.resolution ? ctx.resolution->fallback : nullptr;
  int resumes = 0;

  std::string out, scratch;
  // Events are a few hundred bytes; a burst larger than this is read in more steps from the
  // connection's buffer (no extra system call). Kept small: it lives as long as the stream.
  char rbuf[1024];
  const milliseconds write_timeout(cfg.limits.client_write_timeout_ms);
  // Per exchange: its deadlines, the SSE framer and what its stream said so far.
  Clock::time_point deadline;
  milliseconds idle_gap{0};
  sse::Parser events(static_cast<size_t>(cfg.limits.max_sse_event_bytes));
  bool done_marker = false, upstream_error_event = false, garbage = false, finished_choice = false;
  std::string prefetched;
  auto start = [&] {
    const config::Timeouts& to = cur->upstream->cfg->timeouts;
    deadline = Clock::now() + milliseconds(to.total_ms);
    idle_gap = milliseconds(to.idle_ms);
    events = sse::Parser(static_cast<size_t>(cfg.limits.max_sse_event_bytes));
    done_marker = upstream_error_event = garbage = finished_choice = false;
    prefetched = std::move(cur->prefetched);  // read while waiting for the first token
    // From here the sweep enforces the idle, total and client-write deadlines.
    cur->conn->tcp().expires_never();
  };
  // Some providers never send `data: [DONE]`. A stream whose choice finished (and that sent
  // the usage it was asked for) is complete however it ends: the client gets [DONE] from us.
  const bool usage_wanted = ctx.strip_usage || ctx.info.include_usage;
  auto complete_without_done = [&] {
    return finished_choice && ctx.info.n <= 1 && (!usage_wanted || ctx.tokens_out >= 0) && !upstream_error_event;
  };
  std::optional<ApiError> cut;
  bool cut_counted = false;

  // Mid-stream failover (the route's `mid_stream`): while no content reached the client the
  // request is resent as it was (restart); after content, to a target that accepts an
  // assistant prefill, with the answer so far as the assistant's message (continue). The
  // new stream is spliced into the same client stream.
  auto resume = [&]() -> awaitable<bool> {
    using MS = config::CompiledFallback::MidStream;
    // An answer that already finished (its finish_reason came, only the end is missing) is
    // never continued: that would add text after its end.
    if (!fb || ctx.endpoint != Endpoint::kChat || fb->mid_stream == MS::kError || resumes >= fb->max_resumes || !ctx.fallback.empty() || watch.gone ||
        watch.shutdown || !client_ok || finished_choice)
      co_return false;
    if (cut->kind != ErrorKind::kStreamCut && cut->kind != ErrorKind::kIdleTimeout && cut->kind != ErrorKind::kBadStream)
      co_return false;
    const bool cont = ctx.content_chunks > 0;
    if (cont && (fb->mid_stream != MS::kContinue || !ctx.capture || ctx.answer.size() >= pipeline::kMaxCapturedAnswer ||
                 ctx.info.n > 1 || ctx.info.has_tools))
      co_return false;
    const auto& ups = ctx.snap->upstreams();
    const size_t failed = static_cast<size_t>(cur->upstream - ups.data());
    std::vector<size_t> targets;
    for (size_t i : ctx.candidates)
      if (i != failed && (!cont || ups[i].cfg->prefill)) targets.push_back(i);
    if (targets.empty()) co_return false;
    std::string body;
    if (cont) {
      auto b = pipeline::continuation_request(json_, *ctx.body, ctx.answer);
      if (!b) co_return false;
      body = std::move(*b);
    } else {
      body = *ctx.body;
    }
    metrics_.upstream_error(cur->upstream->cfg->name, cut->code);
    cut_counted = true;
    cur->conn->close();
    cur->finish(upstream::Outcome::kFailure, cut->code);
    watch.upstream = nullptr;
    watch.upstream_expired = false;
    ForwardSpec fs;
    fs.targets = targets;
    fs.balance = ctx.balance;
    fs.path = "/chat/completions";
    fs.body = body;
    fs.request_id = ctx.request_id;
    fs.trace = ctx.trace.get();
    fs.stream = true;
    fs.max_attempts = cfg.limits.max_attempts;
    fs.est_tokens = static_cast<int64_t>(body.size() / 4) + (ctx.info.max_tokens > 0 ? ctx.info.max_tokens : 256);
    ForwardResult r = co_await forward(*ctx.snap, fs, watch);
    ctx.attempts += r.attempts;
    if (!r.exchange) co_return false;
    auto& h = r.exchange->parser->get();
    if (h.result_int() != 200 || h[http::field::content_type].substr(0, 17) != "text/event-stream") {
      r.exchange->conn->close();
      r.exchange->finish(outcome_of_status(static_cast<int>(h.result_int())), "resume_status");
      co_return false;
    }
    resumed = std::move(r.exchange);  // an earlier resumed exchange was finished above
    cur = resumed.get();
    ++resumes;
    ctx.upstream = cur->upstream->cfg->name;
    ctx.resumed = cont ? "continue" : "restart";
    metrics_.fallback(ctx.resolution->route, ctx.resumed);
    co_return true;
  };

  client.expires_never();
  watch.client = &client;
  sweep_deadlines();
  start();
  for (;;) {
    while (client_ok) {
      std::string_view got;
      if (!prefetched.empty()) {
        got = prefetched;
      } else {
        // A finished answer waits only briefly for a [DONE] that may never come.
        watch.upstream_deadline = std::min(
            deadline, Clock::now() + (complete_without_done() ? std::min(idle_gap, milliseconds(250)) : idle_gap));
        size_t n = co_await cur->conn->read_some(*cur->parser, rbuf, sizeof rbuf, ec);
        watch.upstream_deadline = Clock::time_point::max();
        got = std::string_view(rbuf, n);
        if (cur->anthropic) got = cur->anthropic->stream(json_, got);  // as chat completion chunks
      }
      if (!got.empty()) {
        const auto now = Clock::now();
        bool ok = events.feed(got, [&](std::string_view raw) {
          if (garbage || done_marker) return;
          std::string_view data = sse::Parser::data_of(raw, scratch);
          if (data.empty()) return;  // comments and keep-alives are not relayed
          if (data == "[DONE]") {
            done_marker = true;
            if (ctx.front) {
              ctx.front->done(out);
            } else {
              out.append(raw);
            }
            return;
          }
          json::ChunkInfo info = json::inspect_chunk(json_, data);
          if (!info.valid_json) {
            garbage = true;
            return;
          }
          if (info.is_error) upstream_error_event = true;
          if (!info.finish_reason.empty()) finished_choice = true;
          chain.on_event(ctx, pipeline::Event{info, now}, env_);
          if (ctx.front) return ctx.front->chunk(json_, data, out);
          if (info.usage_only && ctx.strip_usage) return;
          out.append(raw);
          // A Responses stream (passed through) ends with its last event, without [DONE]; its
          // first names the response, which belongs to this tenant.
          if (ctx.endpoint == Endpoint::kResponses) {
            if (!info.finish_reason.empty()) done_marker = true;
            if (data.find("\"response.created\"") != std::string_view::npos) own_response(ctx, data);
          }
        });
        if (!ok) garbage = true;
        prefetched.clear();
      }
      if (!out.empty()) {
        watch.client_deadline = Clock::now() + write_timeout;
        error_code wec = co_await write_stream_bytes(client, out, chunked);
        watch.client_deadline = Clock::time_point::max();
        out.clear();
        if (wec) {
          client_ok = false;
          break;
        }
      }
      const std::string& name = cur->upstream->cfg->name;
      if (garbage) {
        cut = error_of(ErrorKind::kBadStream, "upstream '" + name + "' sent an invalid stream event");
        break;
      }
      if (done_marker || cur->parser->is_done() || upstream_error_event) break;
      if (ec) {
        if (watch.gone) {
          client_ok = false;
          break;
        }
        if (watch.shutdown) {
          cut = error_of(ErrorKind::kShuttingDown, "the gateway is shutting down; retry the request");
          break;
        }
        if (complete_without_done()) break;
        const ErrorKind kind = !watch.upstream_expired          ? ErrorKind::kStreamCut
                               : Clock::now() >= deadline ? ErrorKind::kTotalTimeout
                                                          : ErrorKind::kIdleTimeout;
        cut = error_of(kind, kind == ErrorKind::kStreamCut
                                 ? "upstream '" + name + "' closed the stream before it was complete"
                                 : "upstream '" + name + "' stalled mid-stream (" + std::string(code_of(kind)) + ")");
        break;
      }
    }
    if (!cut && client_ok && !done_marker && !upstream_error_event && cur->parser->is_done() && !complete_without_done())
      cut = error_of(ErrorKind::kStreamCut, "upstream '" + cur->upstream->cfg->name + "' ended the stream without [DONE]");
    if (cut && co_await resume()) {
      cut.reset();
      cut_counted = false;
      ec = {};
      start();
      continue;
    }
    if (watch.gone) client_ok = false;  // the client left while another target was sought
    break;
  }
  const bool synthesized_done = !cut && client_ok && !done_marker && complete_without_done();
  const config::UpstreamRuntime& chosen = *cur->upstream;
  std::unique_ptr<net::UpstreamConn>& conn = cur->conn;
  auto& parser = *cur->parser;
  watch.upstream = nullptr;
  watch.client = nullptr;
  // Upstream and client errors are kept apart from here: a slow terminating chunk from the
  // upstream must never keep the client's stream from ending cleanly.
  error_code uec = ec;
  if (done_marker && client_ok && !cut) {
    // Read the upstream's terminating chunk so the connection can be reused.
    uec = {};
    while (!parser.is_done() && !uec) {
      conn->expires_after(milliseconds(200));
      co_await conn->read_some(parser, rbuf, sizeof rbuf, uec);
    }
  }
  if (conn && parser.is_done() && parser.get().keep_alive() && !cut && client_ok && !uec) {
    pool_for(chosen).release(std::move(conn));
  } else if (conn) {
    conn->close();
  }
  if (!client_ok) {
    ctx.status = 499;
    ctx.set_error(watch.client_expired ? ErrorKind::kClientWriteTimeout : ErrorKind::kClientAbort);
    cur->finish(outcome_of(ctx), ctx.error_code);
    account(ctx, chain);
    co_return false;
  }
  error_code cec;
  client.expires_after(milliseconds(cfg.limits.client_write_timeout_ms));
  if (cut) {
    ctx.fail(*cut);
  } else if (upstream_error_event) {
    ctx.status = 502;
    ctx.set_error(ErrorKind::kUpstreamErrorEvent);
  } else {
    ctx.status = 200;
  }
  cur->finish(outcome_of(ctx), ctx.error_code);
  if (cut) {
    if (!cut_counted) metrics_.upstream_error(chosen.cfg->name, cut->code);
    std::string end = stream_error_event(*cut);
    if (ctx.front) {
      end.clear();
      ctx.front->stream_error(*cut, end);
    } else if (ctx.endpoint == Endpoint::kResponses) {
      end = bridge::responses_error_event(*cut);
    }
    cec = co_await write_stream_bytes(client, end, chunked);
  } else if (synthesized_done) {
    metrics_.upstream_error(chosen.cfg->name, "missing_done");  // counted, not an error for the client
    std::string end = "data: [DONE]\n\n";
    if (ctx.front) {
      end.clear();
      ctx.front->done(end);
    }
    cec = co_await write_stream_bytes(client, end, chunked);
  }
  if (!cec && chunked) cec = co_await net::write_all(client, http::make_chunk_last());
  client.expires_never();
  account(ctx, chain);
  co_return !cec && stream_keep_alive;
}

}  // namespace sluice::gateway
