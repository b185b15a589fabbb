#include "mockllm/model.hpp"

#include <simdjson.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstring>
#include <ctime>
#include <functional>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/strings.hpp"

namespace sluice::mockllm {

using simdjson::dom::element;

namespace {

constexpr const char* kWords[] = {"the", "model", "answers", "with", "a", "simulated", "token", "stream", "for",
                                  "testing", "gateway", "latency", "and", "throughput", "under", "load", "while",
                                  "every", "byte", "is", "real", "over", "sockets", "quality", "release"};
constexpr const char* kRefusal = "I'm sorry, but I can't help with that request.";

void apply_fault_fields(element o, Faults& f) {
  double d;
  int64_t i;
  bool b;
  if (!o["error_rate"].get_double().get(d)) f.error_rate = d;
  if (!o["rate_limit_rate"].get_double().get(d)) f.rate_limit_rate = d;
  if (!o["retry_after_s"].get_int64().get(i)) f.retry_after_s = static_cast<int>(i);
  if (!o["stall_rate"].get_double().get(d)) f.stall_rate = d;
  if (!o["stall_ms"].get_int64().get(i)) f.stall_ms = i;
  if (!o["cut_rate"].get_double().get(d)) f.cut_rate = d;
  if (!o["cut_after_tokens"].get_int64().get(i)) f.cut_after_tokens = static_cast<int>(i);
  if (!o["slow_first_byte_ms"].get_int64().get(i)) f.slow_first_byte_ms = i;
  if (!o["refusal_rate"].get_double().get(d)) f.refusal_rate = d;
  if (!o["refusal_content_filter"].get_bool().get(b)) f.refusal_content_filter = b;
  if (!o["garbage_rate"].get_double().get(d)) f.garbage_rate = d;
}

std::string faults_to_json(const Faults& f) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "{\"error_rate\":%g,\"rate_limit_rate\":%g,\"retry_after_s\":%d,\"stall_rate\":%g,\"stall_ms\":%lld,"
                "\"cut_rate\":%g,\"cut_after_tokens\":%d,\"slow_first_byte_ms\":%lld,\"refusal_rate\":%g,"
                "\"refusal_content_filter\":%s,\"garbage_rate\":%g}",
                f.error_rate, f.rate_limit_rate, f.retry_after_s, f.stall_rate, static_cast<long long>(f.stall_ms),
                f.cut_rate, f.cut_after_tokens, static_cast<long long>(f.slow_first_byte_ms), f.refusal_rate,
                f.refusal_content_filter ? "true" : "false", f.garbage_rate);
  return buf;
}

void yaml_latency(const YAML::Node& n, Latency& l) {
  if (n["ttft_ms"]) l.ttft_ms = n["ttft_ms"].as<double>();
  if (n["ttft_per_1k_prompt_ms"]) l.ttft_per_1k_prompt_ms = n["ttft_per_1k_prompt_ms"].as<double>();
  if (n["tpot_ms"]) l.tpot_ms = n["tpot_ms"].as<double>();
  if (auto o = n["output_tokens"]; o && o.IsSequence() && o.size() == 2) {
    l.out_min = o[0].as<int>();
    l.out_max = o[1].as<int>();
  }
}

void yaml_faults(const YAML::Node& n, Faults& f) {
  if (!n) return;
  if (n["error_rate"]) f.error_rate = n["error_rate"].as<double>();
  if (n["rate_limit_rate"]) f.rate_limit_rate = n["rate_limit_rate"].as<double>();
  if (n["retry_after_s"]) f.retry_after_s = n["retry_after_s"].as<int>();
  if (n["stall_rate"]) f.stall_rate = n["stall_rate"].as<double>();
  if (n["stall_ms"]) f.stall_ms = n["stall_ms"].as<int64_t>();
  if (n["cut_rate"]) f.cut_rate = n["cut_rate"].as<double>();
  if (n["cut_after_tokens"]) f.cut_after_tokens = n["cut_after_tokens"].as<int>();
  if (n["slow_first_byte_ms"]) f.slow_first_byte_ms = n["slow_first_byte_ms"].as<int64_t>();
  if (n["refusal_rate"]) f.refusal_rate = n["refusal_rate"].as<double>();
  if (n["refusal_content_filter"]) f.refusal_content_filter = n["refusal_content_filter"].as<bool>();
  if (n["garbage_rate"]) f.garbage_rate = n["garbage_rate"].as<double>();
}

}  // namespace

int64_t approx_tokens(int64_t chars) { return std::max<int64_t>(1, (chars + 3) / 4); }

std::vector<std::string> split_pieces(const std::string& text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j]))) ++j;
    // Long words become several tokens of up to 8 bytes (on UTF-8 boundaries).
    while (j - i > 8) {
      size_t cut = i + 8;
      while (cut > i && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
      if (cut == i) cut = i + 8;
      out.push_back(text.substr(i, cut - i));
      i = cut;
    }
    while (j < text.size() && std::isspace(static_cast<unsigned char>(text[j]))) ++j;
    if (j > i) out.push_back(text.substr(i, j - i));
    i = j;
  }
  return out;
}

std::optional<std::string> parse_chat(simdjson::dom::parser& p, const std::string& body, ChatRequest& out) {
  element doc;
  if (p.parse(body).get(doc) || !doc.is_object()) return std::string("body is not a JSON object");
  std::string_view s;
  if (doc["model"].get_string().get(s)) return std::string("'model' is required");
  out.model.assign(s);
  bool b = false;
  if (!doc["stream"].get_bool().get(b)) out.stream = b;
  if (!doc["stream_options"]["include_usage"].get_bool().get(b)) out.include_usage = b;
  int64_t i = 0;
  if (!doc["n"].get_int64().get(i)) out.n = static_cast<int>(std::clamp<int64_t>(i, 1, 16));
  if (!doc["max_tokens"].get_int64().get(i)) out.max_tokens = i;
  if (!doc["max_completion_tokens"].get_int64().get(i)) out.max_tokens = i;
  simdjson::dom::array msgs;
  if (doc["messages"].get_array().get(msgs)) return std::string("'messages' must be an array");
  for (element m : msgs) {
    ++out.messages;
    std::string_view role, content;
    (void)m["role"].get_string().get(role);
    std::string text;
    if (!m["content"].get_string().get(content)) {
      text.assign(content);
    } else {
      simdjson::dom::array parts;
      if (!m["content"].get_array().get(parts)) {
        for (element part : parts) {
          std::string_view t;
          if (!part["text"].get_string().get(t)) text.append(t);
        }
      }
    }
    out.prompt_chars += static_cast<int64_t>(text.size()) + 16;
    if (out.prompt.size() < (1u << 20)) {
      out.prompt.append(role).push_back(':');
      out.prompt.append(text).push_back('\n');
    }
    out.after_tool = role == "tool";
    if (out.after_tool) out.tool_result = text.substr(0, 4096);
    if (role == "user") out.last_user = std::move(text);
    if (role == "assistant") out.prefill = std::move(text);
    else out.prefill.clear();  // only the final message is continued
  }
  if (doc["continue_final_message"].get_bool().get(b) || !b) out.prefill.clear();
  std::string_view tc;
  bool tools_allowed = doc["tool_choice"].get_string().get(tc) || tc != "none";
  simdjson::dom::array tools;
  if (tools_allowed && !out.after_tool && !doc["tools"].get_array().get(tools) && tools.size() > 0) {
    element fn = tools.at(0)["function"];
    std::string_view name;
    if (!fn["name"].get_string().get(name)) out.tool_name.assign(name);
    simdjson::dom::array req;
    if (!fn["parameters"]["required"].get_array().get(req)) {
      for (element r : req) {
        std::string_view rn;
        if (!r.get_string().get(rn)) out.tool_required.emplace_back(rn);
      }
    }
  }
  if (!doc["response_format"]["type"].get_string().get(s)) out.response_format.assign(s);
  return std::nullopt;
}

std::string MockState::load(const Options& opts) {
  defaults_.latency = opts.defaults;
  if (!opts.output_tokens.empty()) {
    auto parts = split(opts.output_tokens, ':');
    if (parts.size() != 2) return "--output-tokens expects MIN:MAX";
    defaults_.latency.out_min = std::atoi(std::string(parts[0]).c_str());
    defaults_.latency.out_max = std::atoi(std::string(parts[1]).c_str());
  }
  if (opts.config_path.empty()) return "";
  try {
    YAML::Node root = YAML::LoadFile(opts.config_path);
    if (root["seed"]) seed_ = root["seed"].as<uint64_t>();
    if (auto c = root["capacity"]) {
      if (c["slots"]) capacity.slots = c["slots"].as<int>();
      if (c["queue"]) capacity.queue = c["queue"].as<int>();
      if (c["tpot_growth"]) capacity.tpot_growth = c["tpot_growth"].as<double>();
      if (c["prefill_ms_per_1k"]) capacity.prefill_ms_per_1k = c["prefill_ms_per_1k"].as<double>();
      if (c["prefix_cache_blocks"]) capacity.prefix_cache_blocks = c["prefix_cache_blocks"].as<int>();
      if (c["block_chars"]) capacity.block_chars = c["block_chars"].as<int>();
      if (capacity.slots < 0 || capacity.queue < 0 || capacity.block_chars < 16) return "capacity: bad values";
      slots.store(capacity.slots);
    }
    if (auto d = root["defaults"]) {
      yaml_latency(d, defaults_.latency);
      yaml_faults(d["faults"], defaults_.faults);
    }
    for (const auto& m : root["models"]) {
      ModelConfig mc = defaults_;
      mc.name = m["name"].as<std::string>();
      mc.replay = nullptr;
      yaml_latency(m, mc.latency);
      yaml_faults(m["faults"], mc.faults);
      if (auto r = m["replay"]) {
        std::string err;
        if (r["gsm8k"]) {
          std::string version = r["version"] ? r["version"].as<std::string>() : "175b_verification";
          mc.replay = ReplayStore::load_gsm8k(r["gsm8k"].as<std::string>(), version, err);
          mc.replay_desc = "gsm8k:" + version;
        } else if (r["xstest"]) {
          mc.replay = ReplayStore::load_xstest(r["xstest"].as<std::string>(), err);
          mc.replay_desc = "xstest:" + r["xstest"].as<std::string>();
        }
        if (!mc.replay) return "model " + mc.name + ": " + err;
      }
      models_[mc.name] = std::move(mc);
    }
  } catch (const YAML::Exception& e) {
    return opts.config_path + ": " + e.what();
  }
  return "";
}

ModelConfig MockState::config_for(const std::string& model) {
  auto it = models_.find(model);
  return it != models_.end() ? it->second : defaults_;
}

Plan MockState::plan(const ChatRequest& req) {
  ModelConfig mc;
  uint64_t counter;
  {
    std::lock_guard<std::mutex> lock(mu_);
    mc = config_for(req.model);
    counter = ++counter_;
  }
  Plan p;
  // Faults: per-request randomness (seed, arrival order). Content: (seed, prompt) only, so
  // the same prompt gets the same answer.
  std::mt19937_64 frng(mix64(seed_ ^ mix64(counter)));
  std::uniform_real_distribution<double> u01(0, 1);
  const Faults& f = mc.faults;
  double roll = u01(frng);
  double acc = 0;
  if (roll < (acc += f.error_rate)) {
    p.fault = Fault::kError;
  } else if (roll < (acc += f.rate_limit_rate)) {
    p.fault = Fault::kRateLimit;
  } else if (roll < (acc += f.stall_rate)) {
    p.fault = Fault::kStall;
  } else if (roll < (acc += f.cut_rate)) {
    p.fault = Fault::kCut;
  } else if (roll < (acc += f.garbage_rate)) {
    p.fault = Fault::kGarbage;
  }
  if (p.fault != Fault::kNone) faults_injected.fetch_add(1);
  p.retry_after_s = f.retry_after_s;
  p.stall_ms = f.stall_ms;
  p.fault_after = f.cut_after_tokens;
  p.slow_first_byte_ms = f.slow_first_byte_ms;
  bool refuse = u01(frng) < f.refusal_rate;

  p.prompt_tokens = approx_tokens(req.prompt_chars) + 3 * req.messages;
  std::mt19937_64 crng(mix64(seed_ ^ std::hash<std::string>{}(req.last_user)));
  if (refuse) {
    p.text = kRefusal;
    if (f.refusal_content_filter) p.finish_reason = "content_filter";
  } else if (!req.tool_name.empty()) {
    p.tool_name = req.tool_name;
    p.tool_args = "{";
    for (size_t i = 0; i < req.tool_required.size(); ++i) {
      if (i) p.tool_args += ",";
      append_json_string(p.tool_args, req.tool_required[i]);
      p.tool_args += ":\"mock\"";
    }
    p.tool_args += "}";
    p.finish_reason = "tool_calls";
  } else if (req.after_tool) {
    p.text = "The tool answered: " + req.tool_result;
  } else if (auto hit = mc.replay ? mc.replay->find(req.last_user) : std::nullopt) {
    p.text.assign(*hit);
    p.replayed = true;
  } else {
    int lo = std::max(1, mc.latency.out_min), hi = std::max(lo, mc.latency.out_max);
    int n = std::uniform_int_distribution<int>(lo, hi)(crng);
    std::string words;
    for (int i = 0; i < n; ++i) {
      if (i) words.push_back(' ');
      words += kWords[crng() % (sizeof kWords / sizeof *kWords)];
    }
    if (req.response_format == "json_object" || req.response_format == "json_schema") {
      p.text = "{\"answer\":";
      append_json_string(p.text, words);
      p.text += "}";
    } else {
      p.text = std::move(words);
    }
  }
  // A continuation: what is left of the same answer after the prefill (its deterministic
  // content depends on the last user message only).
  if (!req.prefill.empty() && p.tool_name.empty() && p.text.compare(0, req.prefill.size(), req.prefill) == 0)
    p.text.erase(0, req.prefill.size());
  if (p.tool_name.empty()) {
    p.pieces = split_pieces(p.text);
    if (req.max_tokens > 0 && static_cast<int64_t>(p.pieces.size()) > req.max_tokens) {
      p.pieces.resize(static_cast<size_t>(req.max_tokens));
      p.text.clear();
      for (const auto& s : p.pieces) p.text += s;
      p.finish_reason = "length";
    }
    p.completion_tokens = static_cast<int64_t>(p.pieces.size());
  } else {
    p.pieces = {p.tool_args.substr(0, p.tool_args.size() / 2), p.tool_args.substr(p.tool_args.size() / 2)};
    p.completion_tokens = approx_tokens(static_cast<int64_t>(p.tool_args.size() + p.tool_name.size()));
  }
  p.ttft_ms = mc.latency.ttft_ms + mc.latency.ttft_per_1k_prompt_ms * static_cast<double>(p.prompt_tokens) / 1000.0;
  p.tpot_ms = mc.latency.tpot_ms;
  return p;
}

std::string MockState::set_faults(simdjson::dom::parser& parser, const std::string& body) {
  element doc;
  if (parser.parse(body).get(doc) || !doc.is_object()) return "body must be a JSON object";
  std::string_view model = "*";
  (void)doc["model"].get_string().get(model);
  std::lock_guard<std::mutex> lock(mu_);
  if (model == "*") {
    apply_fault_fields(doc, defaults_.faults);
    for (auto& [k, v] : models_) apply_fault_fields(doc, v.faults);
  } else {
    auto it = models_.find(std::string(model));
    if (it == models_.end()) {
      ModelConfig mc = defaults_;
      mc.name = std::string(model);
      it = models_.emplace(mc.name, std::move(mc)).first;
    }
    apply_fault_fields(doc, it->second.faults);
  }
  return "";
}

void MockState::clear_faults() {
  std::lock_guard<std::mutex> lock(mu_);
  defaults_.faults = Faults{};
  for (auto& [k, v] : models_) v.faults = Faults{};
}

std::string MockState::faults_json() {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out = "{\"*\":" + faults_to_json(defaults_.faults);
  for (const auto& [k, v] : models_) {
    out += ",";
    append_json_string(out, k);
    out += ":" + faults_to_json(v.faults);
  }
  return out + "}";
}

std::string MockState::models_json() {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out = "{\"object\":\"list\",\"data\":[";
  bool first = true;
  auto add = [&](const std::string& id) {
    if (!first) out += ",";
    first = false;
    out += "{\"id\":";
    append_json_string(out, id);
    out += ",\"object\":\"model\",\"created\":0,\"owned_by\":\"mock-llm\"}";
  };
  for (const auto& [k, v] : models_) add(k);
  if (models_.empty()) add("mock-model");
  return out + "]}";
}

std::string MockState::stats_json() {
  return "{\"requests\":" + std::to_string(requests.load()) + ",\"streams_started\":" +
         std::to_string(streams_started.load()) + ",\"streams_completed\":" + std::to_string(streams_completed.load()) +
         ",\"streams_aborted\":" + std::to_string(streams_aborted.load()) + ",\"faults_injected\":" +
         std::to_string(faults_injected.load()) + ",\"in_flight\":" + std::to_string(in_flight.load()) +
         ",\"queued\":" + std::to_string(queued.load()) + ",\"queue_full\":" + std::to_string(queue_full.load()) +
         ",\"prefix_blocks_hit\":" + std::to_string(prefix_blocks_hit.load()) +
         ",\"prefix_blocks_seen\":" + std::to_string(prefix_blocks_seen.load()) +
         ",\"busy_slot_ms\":" + std::to_string(busy_slot_ms.load()) +
         ",\"by_api\":{\"chat\":" + std::to_string(requests_by_api[0].load()) +
         ",\"completions\":" + std::to_string(requests_by_api[1].load()) +
         ",\"messages\":" + std::to_string(requests_by_api[2].load()) +
         ",\"responses\":" + std::to_string(requests_by_api[3].load()) + "}}";
}

std::pair<size_t, size_t> PrefixCache::lookup_insert(std::string_view prompt) {
  size_t blocks = prompt.size() / block_, hit = 0;
  bool leading = true;
  uint64_t h = kFnvOffset;
  for (size_t b = 0; b < blocks; ++b) {
    h = fnv1a(prompt.substr(b * block_, block_), h);  // chained: covers every block before it
    auto it = index_.find(h);
    if (it != index_.end()) {
      if (leading) ++hit;
      lru_.splice(lru_.begin(), lru_, it->second);
    } else {
      leading = false;
      if (cap_ == 0) continue;
      lru_.push_front(h);
      index_[h] = lru_.begin();
      if (lru_.size() > cap_) {
        index_.erase(lru_.back());
        lru_.pop_back();
      }
    }
  }
  return {hit, blocks};
}

namespace {
void usage_json(std::string& out, const Plan& p, int n) {
  int64_t c = p.completion_tokens * n;
  out += "{\"prompt_tokens\":" + std::to_string(p.prompt_tokens) + ",\"completion_tokens\":" + std::to_string(c) +
         ",\"total_tokens\":" + std::to_string(p.prompt_tokens + c);
  if (p.cached_tokens >= 0) out += ",\"prompt_tokens_details\":{\"cached_tokens\":" + std::to_string(p.cached_tokens) + "}";
  out += "}";
}
}  // namespace

std::string completion_json(const std::string& id, const std::string& model, const Plan& p, int n) {
  std::string out = "{\"id\":";
  append_json_string(out, id);
  out += ",\"object\":\"chat.completion\",\"created\":" + std::to_string(std::time(nullptr)) + ",\"model\":";
  append_json_string(out, model);
  out += ",\"choices\":[";
  for (int i = 0; i < n; ++i) {
    if (i) out += ",";
    out += "{\"index\":" + std::to_string(i) + ",\"message\":{\"role\":\"assistant\",\"content\":";
    if (p.tool_name.empty()) {
      append_json_string(out, p.text);
      out += ",\"refusal\":null}";
    } else {
      out += "null,\"tool_calls\":[{\"id\":\"call_mock_" + std::to_string(i) + "\",\"type\":\"function\",\"function\":{\"name\":";
      append_json_string(out, p.tool_name);
      out += ",\"arguments\":";
      append_json_string(out, p.tool_args);
      out += "}}]}";
    }
    out += ",\"logprobs\":null,\"finish_reason\":";
    append_json_string(out, p.finish_reason);
    out += "}";
  }
  out += "],\"usage\":";
  usage_json(out, p, n);
  out += ",\"system_fingerprint\":\"mock-llm\"}";
  return out;
}

std::string chunk_json(const std::string& id, const std::string& model, int index, const std::string& delta_json,
                       const char* finish_reason) {
  std::string out = "{\"id\":";
  append_json_string(out, id);
  out += ",\"object\":\"chat.completion.chunk\",\"created\":" + std::to_string(std::time(nullptr)) + ",\"model\":";
  append_json_string(out, model);
  out += ",\"system_fingerprint\":\"mock-llm\",\"choices\":[{\"index\":" + std::to_string(index) + ",\"delta\":" + delta_json +
         ",\"logprobs\":null,\"finish_reason\":";
  if (finish_reason) {
    append_json_string(out, finish_reason);
  } else {
    out += "null";
  }
  out += "}]}";
  return out;
}

std::string usage_chunk_json(const std::string& id, const std::string& model, const Plan& p, int n) {
  std::string out = "{\"id\":";
  append_json_string(out, id);
  out += ",\"object\":\"chat.completion.chunk\",\"created\":" + std::to_string(std::time(nullptr)) + ",\"model\":";
  append_json_string(out, model);
  out += ",\"choices\":[],\"usage\":";
  usage_json(out, p, n);
  return out + "}";
}

std::string embeddings_json(simdjson::dom::parser& parser, const std::string& body, std::string& error) {
  element doc;
  if (parser.parse(body).get(doc) || !doc.is_object()) {
    error = "body is not a JSON object";
    return "";
  }
  std::string_view model;
  if (doc["model"].get_string().get(model)) {
    error = "'model' is required";
    return "";
  }
  std::vector<std::string> inputs;
  std::string_view s;
  simdjson::dom::array arr;
  if (!doc["input"].get_string().get(s)) {
    inputs.emplace_back(s);
  } else if (!doc["input"].get_array().get(arr)) {
    for (element e : arr) {
      if (!e.get_string().get(s)) {
        inputs.emplace_back(s);
      } else {
        inputs.emplace_back(simdjson::minify(e));
      }
    }
  } else {
    error = "'input' must be a string or an array";
    return "";
  }
  int64_t dims = 16;
  (void)doc["dimensions"].get_int64().get(dims);
  dims = std::clamp<int64_t>(dims, 1, 4096);
  std::string_view fmt = "float";
  (void)doc["encoding_format"].get_string().get(fmt);
  std::string out = "{\"object\":\"list\",\"data\":[";
  int64_t tokens = 0;
  static constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t i = 0; i < inputs.size(); ++i) {
    tokens += approx_tokens(static_cast<int64_t>(inputs[i].size()));
    std::mt19937_64 rng(mix64(std::hash<std::string>{}(inputs[i])));
    std::vector<float> v(static_cast<size_t>(dims));
    double norm = 0;
    for (auto& x : v) {
      x = static_cast<float>(std::uniform_real_distribution<double>(-1, 1)(rng));
      norm += x * x;
    }
    for (auto& x : v) x = static_cast<float>(x / std::sqrt(norm));
    if (i) out += ",";
    out += "{\"object\":\"embedding\",\"index\":" + std::to_string(i) + ",\"embedding\":";
    if (fmt == "base64") {
      std::string raw(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
      std::string b64;
      for (size_t k = 0; k < raw.size(); k += 3) {
        uint32_t chunk = static_cast<unsigned char>(raw[k]) << 16;
        if (k + 1 < raw.size()) chunk |= static_cast<unsigned char>(raw[k + 1]) << 8;
        if (k + 2 < raw.size()) chunk |= static_cast<unsigned char>(raw[k + 2]);
        b64.push_back(kB64[(chunk >> 18) & 63]);
        b64.push_back(kB64[(chunk >> 12) & 63]);
        b64.push_back(k + 1 < raw.size() ? kB64[(chunk >> 6) & 63] : '=');
        b64.push_back(k + 2 < raw.size() ? kB64[chunk & 63] : '=');
      }
      out += "\"" + b64 + "\"";
    } else {
      out += "[";
      char buf[32];
      for (size_t k = 0; k < v.size(); ++k) {
        std::snprintf(buf, sizeof buf, "%s%.6f", k ? "," : "", static_cast<double>(v[k]));
        out += buf;
      }
      out += "]";
    }
    out += "}";
  }
  out += "],\"model\":";
  append_json_string(out, model);
  out += ",\"usage\":{\"prompt_tokens\":" + std::to_string(tokens) + ",\"total_tokens\":" + std::to_string(tokens) + "}}";
  return out;
}

}  // namespace sluice::mockllm
