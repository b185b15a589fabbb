// pipeline/otel_filter.cpp: a request's OpenTelemetry spans, in the GenAI semantic
// conventions. On the way in it decides whether the request is traced (parent-based ratio
// sampling, the client's traceparent joined) and, if so, gives the context a Trace the
// forward loop records each upstream attempt in; at completion it builds the SERVER span
// and one CLIENT span per attempt and hands them to the exporter's queue. An untraced
// request costs one sampling decision.
#include "pipeline/otel_filter.hpp"

#include <simdjson.h>

#include <cstdio>
#include <cstdlib>

#include "otel/exporter.hpp"
#include "otel/span.hpp"
#include "release/compiled.hpp"

namespace sluice::pipeline {

namespace {

std::string_view operation(Endpoint e) {
  switch (e) {
    case Endpoint::kChat:
    case Endpoint::kResponses: return "chat";
    case Endpoint::kEmbeddings: return "embeddings";
    case Endpoint::kCompletions: return "text_completion";
    case Endpoint::kModels: return "";
  }
  return "";
}

std::string_view provider(const RequestContext& ctx, std::string_view upstream) {
  if (ctx.snap)
    for (const auto& u : ctx.snap->upstreams())
      if (u.cfg->name == upstream) return u.cfg->api == config::Upstream::Api::kAnthropic ? "anthropic" : "openai";
  return "openai";
}

// Starts a trace when the sampler keeps the request.
void begin(RequestContext& ctx) {
  if (ctx.trace_decided) return;
  ctx.trace_decided = true;
  const config::Otlp& o = ctx.snap->config().telemetry.otlp;
  std::optional<otel::TraceParent> parent;
  if (ctx.header) parent = otel::parse_traceparent(ctx.header("traceparent"));
  const otel::TraceId id = parent ? parent->trace : otel::random_trace_id();
  if (!otel::sample(id, parent, o.sample_ratio)) return;
  ctx.trace = std::make_unique<otel::Trace>();
  ctx.trace->trace = id;
  ctx.trace->span = otel::random_span_id();
  if (parent) ctx.trace->remote_parent = parent->parent;
  if (o.include_bodies) ctx.capture = true;  // the answer's text, for gen_ai.output.messages
}

int64_t unix_ns_of(Clock::time_point t, Clock::time_point now, int64_t now_unix) {
  return now_unix - std::chrono::duration_cast<std::chrono::nanoseconds>(now - t).count();
}

void add(std::vector<otel::Attribute>& a, std::string key, otel::Value v) { a.push_back({std::move(key), std::move(v)}); }

// The JSON text of a string, for the output message.
std::string json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

// Request parameters the parse stage does not keep, and the messages when bodies are on:
// read from the request as it went upstream (one extra parse, traced requests only).
void request_params(RequestContext& ctx, Env& env, std::vector<otel::Attribute>& a, const config::Otlp& o) {
  if (!ctx.body || ctx.body->empty() || ctx.endpoint == Endpoint::kModels) return;
  simdjson::dom::element doc;
  if (env.json.parse(*ctx.body).get(doc) != simdjson::SUCCESS || !doc.is_object()) return;
  double d;
  if (doc["temperature"].get(d) == simdjson::SUCCESS) add(a, "gen_ai.request.temperature", d);
  if (doc["top_p"].get(d) == simdjson::SUCCESS) add(a, "gen_ai.request.top_p", d);
  if (o.include_bodies) {
    simdjson::dom::element m;
    if (doc["messages"].get(m) == simdjson::SUCCESS || doc["input"].get(m) == simdjson::SUCCESS ||
        doc["prompt"].get(m) == simdjson::SUCCESS)
      add(a, "gen_ai.input.messages", otel::truncate_utf8(simdjson::minify(m), static_cast<size_t>(o.max_body_bytes)));
  }
}

class OtelFilter final : public Filter {
 public:
  std::string_view name() const override { return "otel"; }
  unsigned hooks() const override { return kOnRequest | kOnBody | kOnComplete; }

  Verdict on_request(RequestContext& ctx, Env& env) const override {
    if (env.otel) begin(ctx);
    return Verdict::next();
  }

  // A whole answer names its id and model; a stream's chunks do too, but the relay shows
  // filters only what it parsed, so streamed spans go without them.
  std::optional<ApiError> on_body(RequestContext& ctx, std::string_view body, Env& env) const override {
    if (!ctx.trace) return std::nullopt;
    simdjson::dom::element doc;
    if (env.json.parse(body.data(), body.size()).get(doc) != simdjson::SUCCESS || !doc.is_object()) return std::nullopt;
    std::string_view s;
    if (doc["id"].get(s) == simdjson::SUCCESS) ctx.trace->response_id = s;
    if (doc["model"].get(s) == simdjson::SUCCESS) ctx.trace->response_model = s;
    // The answer filter keeps the finish reason only when it captures the answer.
    if (ctx.finish_reason.empty() && doc.at_pointer("/choices/0/finish_reason").get(s) == simdjson::SUCCESS)
      ctx.finish_reason = s;
    return std::nullopt;
  }

  void on_complete(RequestContext& ctx, Clock::time_point t_end, Env& env) const override {
    if (!env.otel || !ctx.snap) return;
    // Refused or answered before this filter's request hook (authentication, a cache hit):
    // the sampling decision is made now.
    begin(ctx);
    if (!ctx.trace) return;
    const config::Otlp& o = ctx.snap->config().telemetry.otlp;
    otel::Trace& tr = *ctx.trace;
    const auto now = Clock::now();
    const int64_t now_unix = otel::now_ns();
    const std::string_view op = operation(ctx.endpoint);
    const std::string_view prov = provider(ctx, ctx.upstream);

    std::vector<otel::Span> spans;
    spans.reserve(1 + tr.attempts.size());
    otel::Span& s = spans.emplace_back();
    s.trace = tr.trace;
    s.id = tr.span;
    s.parent = tr.remote_parent;
    s.kind = otel::Kind::kServer;
    s.name = op.empty() ? std::string("GET /v1/models") : std::string(op) + " " + ctx.info.model;
    s.start_ns = unix_ns_of(ctx.t_start, now, now_unix);
    s.end_ns = unix_ns_of(t_end, now, now_unix);
    auto& a = s.attributes;
    a.reserve(24);
    if (!op.empty()) add(a, "gen_ai.operation.name", std::string(op));
    add(a, "gen_ai.system", std::string(prov));
    add(a, "gen_ai.provider.name", std::string(prov));
    if (!ctx.info.model.empty()) add(a, "gen_ai.request.model", ctx.info.model);
    if (ctx.info.max_tokens > 0) add(a, "gen_ai.request.max_tokens", ctx.info.max_tokens);
    request_params(ctx, env, a, o);
    if (!tr.response_model.empty()) add(a, "gen_ai.response.model", tr.response_model);
    if (!tr.response_id.empty()) add(a, "gen_ai.response.id", tr.response_id);
    if (!ctx.finish_reason.empty()) add(a, "gen_ai.response.finish_reasons", std::vector<std::string>{ctx.finish_reason});
    if (ctx.tokens_in >= 0) add(a, "gen_ai.usage.input_tokens", ctx.tokens_in);
    if (ctx.tokens_out >= 0) add(a, "gen_ai.usage.output_tokens", ctx.tokens_out);
    if (o.include_bodies && ctx.status == 200 && !ctx.answer.empty())
      add(a, "gen_ai.output.messages",
          "[{\"role\":\"assistant\",\"parts\":[{\"type\":\"text\",\"content\":" +
              json_string(otel::truncate_utf8(ctx.answer, static_cast<size_t>(o.max_body_bytes))) +
              "}],\"finish_reason\":" + json_string(ctx.finish_reason) + "}]");
    add(a, "http.response.status_code", static_cast<int64_t>(ctx.status));
    add(a, "sluice.request_id", ctx.request_id);
    if (ctx.resolution) add(a, "sluice.route", ctx.resolution->route);
    if (ctx.release) add(a, "sluice.release", ctx.release->id);
    if (!ctx.tenant.empty()) add(a, "sluice.tenant", ctx.tenant);
    if (ctx.resolution && ctx.resolution->live && !ctx.flags.pinned)
      add(a, "sluice.rollout.arm", std::string(ctx.rollout.candidate ? "candidate" : "stable"));
    if (ctx.cost_usd >= 0) add(a, "sluice.cost_usd", ctx.cost_usd);
    if (!ctx.upstream.empty()) add(a, "sluice.upstream", ctx.upstream);
    if (!ctx.fallback.empty()) add(a, "sluice.fallback", ctx.fallback);
    add(a, "sluice.attempts", static_cast<int64_t>(ctx.attempts));
    if (ctx.streamed) add(a, "gen_ai.request.stream", true);
    if (!ctx.error_code.empty()) add(a, "error.type", ctx.error_code);
    if (ctx.status >= 500 || ctx.status == 0) {
      s.error = true;
      s.status_message = ctx.error_code;
    }

    for (otel::Attempt& at : tr.attempts) {
      otel::Span& c = spans.emplace_back();
      c.trace = tr.trace;
      c.id = at.id;
      c.parent = tr.span;
      c.kind = otel::Kind::kClient;
      c.name = op.empty() ? std::string("GET") : std::string(op) + " " + ctx.info.model;
      c.start_ns = at.start_ns;
      // Still open: the relayed exchange, ended with the request.
      const bool open = at.end_ns == 0;
      c.end_ns = open ? s.end_ns : at.end_ns;
      std::string outcome = open ? (ctx.status > 0 && ctx.status < 500 ? "success" : "failure") : at.outcome;
      auto& ca = c.attributes;
      ca.reserve(10);
      if (!op.empty()) add(ca, "gen_ai.operation.name", std::string(op));
      add(ca, "gen_ai.provider.name", std::string(provider(ctx, at.upstream)));
      if (!ctx.info.model.empty()) add(ca, "gen_ai.request.model", ctx.info.model);
      add(ca, "server.address", at.host);
      add(ca, "server.port", static_cast<int64_t>(at.port));
      add(ca, "sluice.upstream", at.upstream);
      add(ca, "sluice.attempt", static_cast<int64_t>(at.number));
      add(ca, "sluice.attempt.outcome", outcome);
      if (!at.reason.empty()) add(ca, "sluice.attempt.reason", at.reason);
      if (outcome == "failure" || outcome == "rate_limited") {
        c.error = true;
        c.status_message = at.reason;
      }
    }
    tr.attempts.clear();  // an exchange that ends later records nothing more
    env.otel->push(std::move(spans));
  }
};

const OtelFilter kOtel;

}  // namespace

const Filter& otel_filter() { return kOtel; }

std::unique_ptr<otel::Exporter> make_exporter(const config::Otlp& o, std::string& err) {
  auto u = parse_url(o.endpoint);
  if (!u || u->tls) {
    err = "telemetry.otlp.endpoint must look like http://host:port";
    return nullptr;
  }
  otel::ExporterSettings s;
  s.host = u->host;
  s.port = u->port;
  std::string base = u->base_path;
  while (!base.empty() && base.back() == '/') base.pop_back();
  s.path = base + "/v1/traces";
  for (const auto& [k, v] : o.headers) {
    if (v.rfind("env:", 0) == 0) {
      const char* e = std::getenv(v.c_str() + 4);
      if (!e) {
        err = "telemetry.otlp.headers." + k + ": environment variable " + v.substr(4) + " is not set";
        return nullptr;
      }
      s.headers.emplace_back(k, e);
    } else {
      s.headers.emplace_back(k, v);
    }
  }
  s.batch_size = static_cast<size_t>(o.batch_size);
  s.flush_interval_ms = o.flush_interval_ms;
  s.queue_size = static_cast<size_t>(o.queue_size);
  s.timeout_ms = o.timeout_ms;
  s.service_version = "0.1.0";
  return std::make_unique<otel::Exporter>(std::move(s));
}

}  // namespace sluice::pipeline
