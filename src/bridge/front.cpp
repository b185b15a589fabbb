#include "bridge/front.hpp"

#include <simdjson.h>

#include "bridge/json_util.hpp"
#include "cache/response_cache.hpp"
#include "sse/parser.hpp"

namespace sluice::bridge {

using simdjson::dom::element;
using simdjson::dom::object;

std::string_view anthropic_error_type(int status) {
  switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 402: return "billing_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503:
    case 529: return "overloaded_error";
    case 504: return "timeout_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

std::string error_json(Api api, const ApiError& e) {
  if (api != Api::kMessages) return e.to_json();
  std::string out = "{\"type\":\"error\",\"error\":{\"type\":\"";
  out += anthropic_error_type(e.status);
  out += "\",\"message\":";
  append_json_string(out, e.message);
  out += "}}";
  return out;
}

std::string responses_error_event(const ApiError& e) {
  std::string j = "event: error\ndata: {\"type\":\"error\",\"code\":";
  append_json_string(j, e.code.empty() ? std::string_view("server_error") : std::string_view(e.code));
  j += ",\"message\":";
  append_json_string(j, e.message);
  return j + ",\"param\":null}\n\n";
}

void Journal::saved(Saved s) {
  std::lock_guard<std::mutex> lock(mu_);
  pending_bytes_ += s.body.size();
  pending_.saved.push_back(std::move(s));
  while (!pending_.saved.empty() && (pending_.saved.size() > kMaxPending || pending_bytes_ > kMaxPendingBytes)) {
    pending_bytes_ -= pending_.saved.front().body.size();
    pending_.saved.pop_front();
    dropped_.fetch_add(1, std::memory_order_relaxed);
  }
}

void Journal::deleted(std::string tenant, std::string id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (pending_.deleted.size() >= kMaxPending) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  pending_.deleted.emplace_back(std::move(tenant), std::move(id));
}

Journal::Batch Journal::take() {
  std::lock_guard<std::mutex> lock(mu_);
  Batch b = std::move(pending_);
  pending_ = {};
  pending_bytes_ = 0;
  return b;
}

std::string store_key(std::string_view tenant, std::string_view response_id) {
  std::string k = "resp\x1f";
  k.append(tenant);
  k.push_back('\x1f');
  k.append(response_id);
  return k;
}

std::string owner_key(std::string_view response_id) {
  std::string k = "owner\x1f";
  k.append(response_id);
  return k;
}

std::optional<std::string> stored_response(simdjson::dom::parser& p, const Store& store, const std::string& key,
                                           int64_t now_ms) {
  if (!store.cache) return std::nullopt;
  auto kept = store.cache->get(key, now_ms);
  if (!kept) return std::nullopt;
  element doc, r;
  if (p.parse(*kept).get(doc) || doc["response"].get(r)) return std::nullopt;
  return simdjson::minify(r);
}

void Front::read_whole(simdjson::dom::parser& p, std::string_view chat) {
  element doc;
  if (p.parse(chat.data(), chat.size()).get(doc) || !doc.is_object()) return;
  if (auto m = str(doc, "model"); !m.empty()) answer_.model.assign(m);
  read_usage(doc, answer_);
  element choice;
  if (doc["choices"].at(0).get(choice)) return;
  answer_.finish.assign(str(choice, "finish_reason"));
  element msg;
  if (choice["message"].get(msg)) return;
  answer_.text.assign(str(msg, "content"));
  answer_.refusal.assign(str(msg, "refusal"));
  simdjson::dom::array calls;
  if (!msg["tool_calls"].get_array().get(calls)) {
    for (element c : calls) {
      ToolCall t;
      t.id.assign(str(c, "id"));
      element fn;
      if (!c["function"].get(fn)) {
        t.name.assign(str(fn, "name"));
        t.arguments.assign(str(fn, "arguments"));
      }
      answer_.calls.push_back(std::move(t));
    }
  }
}

std::string Front::whole(simdjson::dom::parser& p, std::string_view chat) {
  read_whole(p, chat);
  finished_ = true;
  completed();
  return render_whole();
}

std::string Front::upstream_error(simdjson::dom::parser& p, std::string_view body, int status) const {
  if (api_ != Api::kMessages) return std::string(body);
  ApiError e;
  e.status = status;
  e.message = "upstream answered with status " + std::to_string(status);
  element doc, err;
  if (!p.parse(body.data(), body.size()).get(doc) && !doc["error"].get(err)) {
    if (auto m = str(err, "message"); !m.empty()) e.message.assign(m);
  }
  return error_json(api_, e);
}

void Front::chunk(simdjson::dom::parser& p, std::string_view data, std::string& out) {
  if (finished_) return;
  if (data == "[DONE]") return done(out);
  element doc;
  if (p.parse(data.data(), data.size()).get(doc) || !doc.is_object()) return;
  // Any `error` member ends the stream, as the relay counts it (a string or an object).
  if (element err; !doc["error"].get(err)) {
    std::string message = err.is_string() ? std::string(err.get_string().value_unsafe()) : std::string(str(err, "message"));
    ApiError e = error_of(ErrorKind::kUpstreamErrorEvent, message.empty() ? "upstream sent an error event" : message);
    if (auto c = str(err, "code"); !c.empty()) e.code.assign(c);
    return stream_error(e, out);
  }
  if (answer_.model.empty()) answer_.model.assign(str(doc, "model"));
  if (!begun_) {
    begun_ = true;
    begin(out);
  }
  read_usage(doc, answer_);
  element choice;
  if (doc["choices"].at(0).get(choice)) return;
  element delta;
  if (!choice["delta"].get(delta)) {
    std::string_view text = str(delta, "content");
    if (text.empty()) text = str(delta, "refusal");
    if (!text.empty()) {
      answer_.text.append(text);
      text_delta(text, out);
    }
    simdjson::dom::array calls;
    if (!delta["tool_calls"].get_array().get(calls)) {
      for (element c : calls) {
        int64_t index = 0;
        if (c["index"].get_int64().get(index)) index = static_cast<int64_t>(call_index_.size());
        size_t k = 0;
        while (k < call_index_.size() && call_index_[k] != index) ++k;
        element fn;
        const bool has_fn = !c["function"].get(fn);
        std::string_view args = has_fn ? str(fn, "arguments") : std::string_view();
        if (k == call_index_.size()) {
          call_index_.push_back(index);
          ToolCall t;
          t.id.assign(str(c, "id"));
          if (has_fn) t.name.assign(str(fn, "name"));
          answer_.calls.push_back(std::move(t));
          call_start(k, out);
        }
        if (!args.empty()) {
          answer_.calls[k].arguments.append(args);
          call_delta(k, args, out);
        }
      }
    }
  }
  if (auto f = str(choice, "finish_reason"); !f.empty()) answer_.finish.assign(f);
}

void Front::done(std::string& out) {
  if (finished_) return;
  if (!begun_) {
    begun_ = true;
    begin(out);
  }
  finished_ = true;
  finish(out);
  completed();
}

void Front::stream_error(const ApiError& e, std::string& out) {
  if (finished_) return;
  if (!begun_) {
    begun_ = true;
    begin(out);
  }
  finished_ = true;
  fail(e, out);
}

std::string Front::translate_stream(simdjson::dom::parser& p, std::string_view sse) {
  std::string out, scratch;
  sse::Parser events(sse.size() + 1);
  events.feed(sse, [&](std::string_view raw) {
    std::string_view data = sse::Parser::data_of(raw, scratch);
    if (!data.empty()) chunk(p, data, out);
  });
  done(out);
  return out;
}

}  // namespace sluice::bridge
