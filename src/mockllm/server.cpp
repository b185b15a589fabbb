// mockllm/server.cpp: the sockets side of mock-llm. Endpoints:
//   POST /v1/chat/completions  (stream or not, tools, n, response_format, usage)
//   POST /v1/completions       (legacy text completions: the same answers, `prompt` in, `text` out)
//   POST /v1/responses         (OpenAI's Responses API, natively: same answers, stored for
//                               previous_response_id; written by the gateway's own bridge)
//   POST /v1/messages          (Anthropic's Messages API: the same answers in Anthropic's shape,
//                               written by the gateway's own bridge; needs x-api-key and
//                               anthropic-version, as Anthropic does)
//   POST /v1/embeddings        (float or base64)
//   GET  /v1/models
//   GET|POST|DELETE /mock/faults   run-time fault switches; GET /mock/stats; GET /healthz
#include "mockllm/server.hpp"

#include <simdjson.h>

#include <array>
#include <deque>
#include <iostream>
#include <thread>

#include "bridge/front.hpp"
#include "cache/response_cache.hpp"
#include "core/clock.hpp"
#include "core/strings.hpp"
#include "net/listener.hpp"
#include "net/session.hpp"

namespace sluice::mockllm {

namespace {

using std::chrono::milliseconds;

// The API a request came in on; answers are made as chat completions and then shaped.
enum class Wire { kChat, kCompletions, kMessages, kResponses };

// A legacy completions request as the chat request the model answers: its prompt is the
// user's message.
std::optional<std::string> completions_as_chat(simdjson::dom::parser& p, const std::string& body) {
  simdjson::dom::element doc;
  if (p.parse(body).get(doc) || !doc.is_object()) return std::nullopt;
  std::string_view model, prompt;
  if (doc["model"].get_string().get(model)) return std::nullopt;
  if (doc["prompt"].get_string().get(prompt)) {
    simdjson::dom::array a;  // a list of prompts: the first
    if (doc["prompt"].get_array().get(a) || a.size() == 0 || a.at(0).get_string().get(prompt)) return std::nullopt;
  }
  std::string chat = "{\"model\":";
  append_json_string(chat, model);
  chat += ",\"messages\":[{\"role\":\"user\",\"content\":";
  append_json_string(chat, prompt);
  chat += "}]";
  for (const char* k : {"max_tokens", "n", "stream", "stream_options"}) {
    simdjson::dom::element v;
    if (!doc[k].get(v)) chat += std::string(",\"") + k + "\":" + simdjson::minify(v);
  }
  return chat + "}";
}

// A chat completion or chunk as a legacy text completion (or chunk).
std::string as_text_completion(simdjson::dom::parser& p, std::string_view chat) {
  simdjson::dom::element doc;
  if (p.parse(chat.data(), chat.size()).get(doc) || !doc.is_object()) return std::string(chat);
  std::string_view id, model;
  if (doc["id"].get_string().get(id)) id = {};
  if (doc["model"].get_string().get(model)) model = {};
  std::string out = "{\"id\":";
  append_json_string(out, id);
  out += ",\"object\":\"text_completion\",\"created\":" + std::to_string(std::time(nullptr)) + ",\"model\":";
  append_json_string(out, model);
  out += ",\"choices\":[";
  simdjson::dom::array choices;
  if (!doc["choices"].get_array().get(choices)) {
    size_t i = 0;
    for (simdjson::dom::element c : choices) {
      if (i) out += ",";
      int64_t index = static_cast<int64_t>(i++);
      if (c["index"].get_int64().get(index)) index = static_cast<int64_t>(i - 1);
      std::string_view text, finish;
      if (c["message"]["content"].get_string().get(text) && c["delta"]["content"].get_string().get(text)) text = {};
      out += "{\"index\":" + std::to_string(index) + ",\"text\":";
      append_json_string(out, text);
      out += ",\"logprobs\":null,\"finish_reason\":";
      if (c["finish_reason"].get_string().get(finish)) {
        out += "null";
      } else {
        append_json_string(out, finish);
      }
      out += "}";
    }
  }
  out += "]";
  simdjson::dom::element usage;
  if (!doc["usage"].get(usage) && usage.is_object()) out += ",\"usage\":" + simdjson::minify(usage);
  return out + "}";
}

awaitable<void> sleep_ms(double ms) {
  if (ms <= 0) co_return;
  asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::microseconds(static_cast<int64_t>(ms * 1000)));
  error_code ec;
  co_await t.async_wait(ec_await(ec));
}

class Handler : public net::IdleConnections, public net::FixedLimits {
 public:
  Handler(MockState& state, size_t index, net::SessionLimits limits)
      : net::FixedLimits(limits), state_(state), index_(index) {}

  std::string next_request_id() { return "mock_" + std::to_string(index_) + "_" + std::to_string(++ids_); }
  // A batch slot is free: the longest waiter takes it.
  void release_slot() {
    if (waiting_.empty()) {
      --active_;
      state_.running.fetch_sub(1);
      return;
    }
    asio::steady_timer* t = waiting_.front();  // hand the slot over: active_ stays
    waiting_.pop_front();
    state_.waiting.fetch_sub(1);
    t->cancel();
  }
  bool draining() const { return false; }

  awaitable<bool> handle(beast::tcp_stream& stream, beast::flat_buffer&, http::request<http::string_body>& req) {
    std::string_view target = req.target();
    std::string_view path = target.substr(0, target.find('?'));
    bool keep = req.keep_alive();
    auto reply = [&](http::status st, std::string body) -> awaitable<bool> {
      error_code ec = co_await net::write_response(stream, st, std::move(body), "application/json", "", keep, req.version());
      co_return !ec && keep;
    };
    if (path == "/v1/chat/completions" && req.method() == http::verb::post) co_return co_await chat(stream, req);
    if (path == "/v1/completions" && req.method() == http::verb::post)
      co_return co_await chat(stream, req, Wire::kCompletions);
    if (path == "/v1/messages" && req.method() == http::verb::post) co_return co_await chat(stream, req, Wire::kMessages);
    if (path == "/v1/responses" && req.method() == http::verb::post) co_return co_await chat(stream, req, Wire::kResponses);
    if (path == "/v1/embeddings" && req.method() == http::verb::post) {
      state_.requests.fetch_add(1);
      std::string err;
      std::string body = embeddings_json(json_, req.body(), err);
      if (!err.empty()) co_return co_await reply(http::status::bad_request, bad_request(err).to_json());
      co_return co_await reply(http::status::ok, std::move(body));
    }
    if (path == "/v1/models" && req.method() == http::verb::get) co_return co_await reply(http::status::ok, state_.models_json());
    if (path == "/mock/faults") {
      if (req.method() == http::verb::get) co_return co_await reply(http::status::ok, state_.faults_json());
      if (req.method() == http::verb::delete_) {
        state_.clear_faults();
        co_return co_await reply(http::status::ok, state_.faults_json());
      }
      if (req.method() == http::verb::post) {
        std::string err = state_.set_faults(json_, req.body());
        if (!err.empty()) co_return co_await reply(http::status::bad_request, bad_request(err).to_json());
        co_return co_await reply(http::status::ok, state_.faults_json());
      }
    }
    if (path == "/mock/stats") co_return co_await reply(http::status::ok, state_.stats_json());
    if (path == "/metrics" && req.method() == http::verb::get) {
      // vLLM's load gauges, as its /metrics publishes them (Prometheus text).
      const int64_t slots = state_.slots.load();
      const int64_t running = slots > 0 ? state_.running.load() : state_.in_flight.load();
      std::string m = "# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name=\"mock\"} " +
                      std::to_string(running) +
                      "\n# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name=\"mock\"} " +
                      std::to_string(state_.waiting.load()) +
                      "\n# TYPE vllm:gpu_cache_usage_perc gauge\nvllm:gpu_cache_usage_perc{model_name=\"mock\"} " +
                      num_text(slots > 0 ? static_cast<double>(running) / static_cast<double>(slots) : 0.0, 4) + "\n";
      error_code ec = co_await net::write_response(stream, http::status::ok, std::move(m), "text/plain; version=0.0.4",
                                                   "", keep, req.version());
      co_return !ec && keep;
    }
    if (path == "/healthz") co_return co_await reply(http::status::ok, "{\"status\":\"ok\"}");
    co_return co_await reply(http::status::not_found, not_found("unknown path " + std::string(path)).to_json());
  }

 private:
  awaitable<bool> chat(beast::tcp_stream& stream, http::request<http::string_body>& req, Wire wire = Wire::kChat) {
    state_.requests.fetch_add(1);
    state_.requests_by_api[static_cast<int>(wire)].fetch_add(1);
    state_.in_flight.fetch_add(1);
    struct Guard {
      MockState& s;
      ~Guard() { s.in_flight.fetch_sub(1); }
    } guard{state_};
    bool keep = req.keep_alive();
    const bridge::Api api = wire == Wire::kMessages ? bridge::Api::kMessages : bridge::Api::kChat;
    // Takes the error by value into a named local: GCC 12 destroys a temporary passed to a
    // co_awaited call twice (see the toolchain notes), so callers never pass one.
    std::optional<ApiError> refusal;
    auto refuse = [&]() -> awaitable<bool> {
      const ApiError& e = *refusal;
      co_return !co_await net::write_response(stream, static_cast<http::status>(e.status), bridge::error_json(api, e),
                                              "application/json", "", keep) && keep;
    };
    // Another API's request becomes the chat request the model answers.
    std::unique_ptr<bridge::Front> front;
    if (wire == Wire::kCompletions) {
      auto c = completions_as_chat(json_, req.body());
      if (!c) {
        refusal = bad_request("'model' and 'prompt' (a string) are required");
        co_return co_await refuse();
      }
      req.body() = std::move(*c);
    } else if (wire == Wire::kResponses) {
      bridge::Opened o;
      const std::string rid = "req_" + std::to_string(index_) + "x" + std::to_string(++ids_);
      refusal = bridge::open_responses(json_, req.body(), bridge::OpenContext{rid, "", unix_millis(), {&responses_, 3600000}}, o);
      if (refusal) co_return co_await refuse();
      req.body() = std::move(o.chat_body);
      front = std::move(o.front);
    } else if (wire == Wire::kMessages) {
      if (req["x-api-key"].empty()) refusal = unauthorized("x-api-key header is required");
      else if (req["anthropic-version"].empty()) refusal = bad_request("anthropic-version: header is required");
      if (refusal) co_return co_await refuse();
      bridge::Opened o;
      const std::string rid = next_request_id();
      refusal = bridge::open_messages(json_, req.body(), bridge::OpenContext{rid, "", 0, {}}, o);
      if (refusal) co_return co_await refuse();
      req.body() = std::move(o.chat_body);
      front = std::move(o.front);
    }
    ChatRequest cr;
    if (auto err = parse_chat(json_, req.body(), cr)) {
      refusal = bad_request(*err);
      co_return co_await refuse();
    }
    Plan p = state_.plan(cr);
    co_await sleep_ms(static_cast<double>(p.slow_first_byte_ms));
    if (p.fault == Fault::kError) {
      refusal = ApiError{500, "server_error", "mock_error", "mock-llm: injected server error"};
      co_return co_await refuse();
    }
    if (p.fault == Fault::kRateLimit) {
      std::string body = bridge::error_json(api, ApiError{429, "rate_limit_error", "rate_limit_exceeded", "mock-llm: injected rate limit"});
      std::string retry = std::to_string(p.retry_after_s);
      std::string head = net::response_head(429, req.version(), "application/json", "", keep, body.size(),
                                            std::initializer_list<net::Header>{{"Retry-After", retry}});
      std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(body)};
      error_code ec;
      co_await asio::async_write(stream, bufs, ec_await(ec));
      co_return !ec && keep;
    }
    // The capacity model: wait for a batch slot (bounded queue), then time the answer by how
    // full the batch is and how much of the prompt the prefix cache already holds.
    const CapacityConfig& cap = state_.capacity;
    struct Slot {
      Handler* h = nullptr;
      std::chrono::steady_clock::time_point since{};
      ~Slot() {
        if (!h) return;
        h->state_.busy_slot_ms.fetch_add(static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - since).count()));
        h->release_slot();
      }
    } slot;
    if (cap.slots > 0) {
      if (active_ >= cap.slots) {
        if (static_cast<int>(waiting_.size()) >= cap.queue) {
          state_.queue_full.fetch_add(1);
          std::string body = bridge::error_json(api, ApiError{429, "rate_limit_error", "queue_full", "mock-llm: every batch slot and the queue are full"});
          std::string head = net::response_head(429, req.version(), "application/json", "", keep, body.size(),
                                                std::initializer_list<net::Header>{{"Retry-After", "1"}});
          std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(body)};
          error_code ec;
          co_await asio::async_write(stream, bufs, ec_await(ec));
          co_return !ec && keep;
        }
        state_.queued.fetch_add(1);
        asio::steady_timer wake(co_await asio::this_coro::executor, std::chrono::steady_clock::time_point::max());
        waiting_.push_back(&wake);
        state_.waiting.fetch_add(1);
        error_code ec;
        co_await wake.async_wait(ec_await(ec));  // cancelled by release_slot(): its slot is ours now
      } else {
        ++active_;
        state_.running.fetch_add(1);
      }
      slot.h = this;
      slot.since = std::chrono::steady_clock::now();
      if (!prefix_ && cap.prefix_cache_blocks > 0)
        prefix_ = std::make_unique<PrefixCache>(static_cast<size_t>(cap.prefix_cache_blocks), static_cast<size_t>(cap.block_chars));
      double uncached = static_cast<double>(p.prompt_tokens);
      if (prefix_) {
        auto [hit, blocks] = prefix_->lookup_insert(cr.prompt);
        state_.prefix_blocks_hit.fetch_add(hit);
        state_.prefix_blocks_seen.fetch_add(blocks);
        if (blocks > 0) uncached *= 1.0 - static_cast<double>(hit) / static_cast<double>(blocks);
        p.cached_tokens = p.prompt_tokens - static_cast<int64_t>(uncached + 0.5);
      }
      p.ttft_ms += cap.prefill_ms_per_1k * uncached / 1000.0;
      p.tpot_ms *= 1.0 + cap.tpot_growth * static_cast<double>(active_ - 1) / static_cast<double>(cap.slots);
    }
    std::string id = "chatcmpl-" + next_request_id();
    if (!cr.stream) {
      co_await sleep_ms(p.ttft_ms + p.tpot_ms * static_cast<double>(std::max<int64_t>(0, p.completion_tokens - 1)));
      if (p.fault == Fault::kCut) {
        error_code ec;
        stream.socket().close(ec);
        co_return false;
      }
      if (p.fault == Fault::kStall) co_await sleep_ms(static_cast<double>(p.stall_ms));
      std::string body = p.fault == Fault::kGarbage ? std::string("<html>502 Bad Gateway</html>\x01\x02 not json")
                                                    : completion_json(id, cr.model, p, cr.n);
      if (p.fault != Fault::kGarbage && wire == Wire::kCompletions) body = as_text_completion(json_, body);
      if (p.fault != Fault::kGarbage && front) body = front->whole(json_, body);
      co_return !co_await net::write_response(stream, http::status::ok, std::move(body), "application/json", "", keep) &&
          keep;
    }

    // Streaming.
    state_.streams_started.fetch_add(1);
    std::string head = net::response_head(200, req.version(), "text/event-stream", "", keep, 0,
                                          std::initializer_list<net::Header>{{"Cache-Control", "no-cache"}}, true);
    error_code ec;
    co_await asio::async_write(stream, asio::buffer(head), ec_await(ec));
    std::string ev;
    auto send = [&](std::string data) -> awaitable<bool> {
      if (front && p.fault != Fault::kGarbage) {  // Anthropic's events, made from the chat chunk
        ev.clear();
        if (data == "[DONE]") {
          front->done(ev);
        } else {
          front->chunk(json_, data, ev);
        }
        if (ev.empty()) co_return true;
        co_await asio::async_write(stream, http::make_chunk(asio::buffer(ev)), ec_await(ec));
        co_return !ec;
      }
      if (wire == Wire::kCompletions && data != "[DONE]") data = as_text_completion(json_, data);
      ev = "data: " + data + "\n\n";
      co_await asio::async_write(stream, http::make_chunk(asio::buffer(ev)), ec_await(ec));
      co_return !ec;
    };
    bool ok = !ec;
    if (p.fault == Fault::kGarbage && ok) {
      ok = co_await send("{\"choices\": [ this is not json");
    }
    co_await sleep_ms(p.ttft_ms);
    for (int i = 0; ok && i < cr.n; ++i) {
      std::string delta = p.tool_name.empty() ? std::string("{\"role\":\"assistant\",\"content\":\"\"}")
                                              : "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_mock_" +
                                                    std::to_string(i) + "\",\"type\":\"function\",\"function\":{\"name\":\"" +
                                                    p.tool_name + "\",\"arguments\":\"\"}}]}";
      ok = co_await send(chunk_json(id, cr.model, i, delta, nullptr));
    }
    for (size_t t = 0; ok && t < p.pieces.size(); ++t) {
      if (t > 0) co_await sleep_ms(p.tpot_ms);
      if (static_cast<int>(t) == p.fault_after) {
        if (p.fault == Fault::kCut) {
          stream.socket().close(ec);
          state_.streams_aborted.fetch_add(1);
          co_return false;
        }
        if (p.fault == Fault::kStall) co_await sleep_ms(static_cast<double>(p.stall_ms));
      }
      for (int i = 0; ok && i < cr.n; ++i) {
        std::string delta;
        if (p.tool_name.empty()) {
          delta = "{\"content\":";
          append_json_string(delta, p.pieces[t]);
          delta += "}";
        } else {
          delta = "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":";
          append_json_string(delta, p.pieces[t]);
          delta += "}}]}";
        }
        ok = co_await send(chunk_json(id, cr.model, i, delta, nullptr));
      }
    }
    for (int i = 0; ok && i < cr.n; ++i) ok = co_await send(chunk_json(id, cr.model, i, "{}", p.finish_reason.c_str()));
    if (ok && cr.include_usage) ok = co_await send(usage_chunk_json(id, cr.model, p, cr.n));
    if (ok) ok = co_await send("[DONE]");
    if (ok) co_await asio::async_write(stream, http::make_chunk_last(), ec_await(ec));
    if (!ok || ec) {
      state_.streams_aborted.fetch_add(1);
      co_return false;
    }
    state_.streams_completed.fetch_add(1);
    co_return keep;
  }

  MockState& state_;
  int active_ = 0;                             // capacity model: generations in progress
  std::deque<asio::steady_timer*> waiting_;    // and the requests waiting for a slot
  std::unique_ptr<PrefixCache> prefix_;
  static inline cache::ResponseCache responses_{16 << 20};  // native /v1/responses, shared by threads
  size_t index_;
  uint64_t ids_ = 0;
  simdjson::dom::parser json_;
};

}  // namespace

int run(const Options& opts) {
  MockState state(opts.seed);
  if (std::string err = state.load(opts); !err.empty()) {
    std::cerr << "mock-llm: " << err << "\n";
    return 2;
  }
  auto hp = parse_host_port(opts.listen);
  if (!hp) {
    std::cerr << "mock-llm: --listen must be HOST:PORT\n";
    return 2;
  }
  size_t n = static_cast<size_t>(std::max(1, opts.threads));
  std::vector<std::unique_ptr<asio::io_context>> ctxs;
  std::vector<asio::io_context*> raw;
  for (size_t i = 0; i < n; ++i) {
    ctxs.push_back(std::make_unique<asio::io_context>(1));
    raw.push_back(ctxs.back().get());
  }
  std::string err;
  uint16_t port = 0;
  auto acceptors = net::bind_acceptors(raw, hp->host, hp->port, err, port);
  if (acceptors.empty()) {
    std::cerr << "mock-llm: " << err << "\n";
    return 2;
  }
  std::vector<std::unique_ptr<Handler>> handlers;
  net::SessionLimits limits;
  limits.max_body_bytes = 64 << 20;
  for (size_t i = 0; i < n; ++i) {
    handlers.push_back(std::make_unique<Handler>(state, i, limits));
    asio::co_spawn(*ctxs[i], net::accept_loop(acceptors[i], handlers[i].get(), nullptr), asio::detached);
  }
  asio::signal_set signals(*ctxs[0], SIGINT, SIGTERM);
  signals.async_wait([&](error_code, int) {
    for (auto& c : ctxs) c->stop();
  });
  std::cout << "mock-llm: listening on " << hp->host << ":" << port << std::endl;
  std::vector<std::thread> threads;
  for (size_t i = 1; i < n; ++i) threads.emplace_back([c = ctxs[i].get()] { c->run(); });
  ctxs[0]->run();
  for (auto& c : ctxs) c->stop();
  for (auto& t : threads) t.join();
  return 0;
}

}  // namespace sluice::mockllm
