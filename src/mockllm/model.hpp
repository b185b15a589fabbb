// mockllm/model.hpp: what mock-llm answers and when, independent of sockets: per-model
// latency and faults, the plan for one request, and the OpenAI JSON it writes.
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <list>
#include <unordered_map>
#include <string>
#include <vector>

#include "mockllm/replay.hpp"

namespace simdjson::dom {
class parser;
}

namespace sluice::mockllm {

struct Latency {
  double ttft_ms = 0;                 // time to first token
  double ttft_per_1k_prompt_ms = 0;   // extra TTFT per 1,000 prompt tokens
  double tpot_ms = 0;                 // time per output token
  int out_min = 16, out_max = 64;     // generated output length (tokens), uniform
};

struct Faults {
  double error_rate = 0;       // 500
  double rate_limit_rate = 0;  // 429 with Retry-After
  int retry_after_s = 1;
  double stall_rate = 0;  // stop sending mid-stream for stall_ms
  int64_t stall_ms = 600000;
  double cut_rate = 0;  // close the connection mid-stream
  int cut_after_tokens = 3;
  int64_t slow_first_byte_ms = 0;  // delay before response headers
  double refusal_rate = 0;         // answer with a refusal
  bool refusal_content_filter = false;  // refuse with finish_reason content_filter
  double garbage_rate = 0;         // answer with bytes that are not JSON
};

struct ModelConfig {
  std::string name;  // "*" = defaults for any model
  Latency latency;
  Faults faults;
  std::shared_ptr<const ReplayStore> replay;
  std::string replay_desc;
};

struct Options {
  std::string listen = "127.0.0.1:9000";
  std::string config_path;
  int threads = 1;
  uint64_t seed = 42;
  Latency defaults;
  std::string output_tokens;  // "MIN:MAX"
};

// The capacity model (per mock-llm thread; run with --threads 1 to model one server): a
// number of batch slots, time per output token that grows as the slots fill, a bounded queue
// beyond them (then 429), and a prefix (KV) cache of prompt blocks whose hits cut the
// prefill part of the time to first token in proportion to the cached prefix.
struct CapacityConfig {
  int slots = 0;                  // 0 = unlimited (no capacity model)
  int queue = 256;                // requests waiting for a slot; beyond it: 429
  double tpot_growth = 1.0;       // tpot x (1 + growth x busy_other_slots / slots)
  double prefill_ms_per_1k = 0;   // TTFT per 1,000 uncached prompt tokens
  int prefix_cache_blocks = 0;    // LRU of prompt block hashes; 0 = no prefix cache
  int block_chars = 256;          // one block (~64 tokens)
};

// Chained block hashes of prompts in a bounded LRU: how many leading blocks of a prompt
// were cached (each block's hash covers every block before it, as vLLM's prefix cache does).
class PrefixCache {
 public:
  PrefixCache(size_t capacity, size_t block_chars) : cap_(capacity), block_(block_chars ? block_chars : 256) {}
  // Returns the cached leading blocks and the prompt's whole blocks; inserts them all.
  std::pair<size_t, size_t> lookup_insert(std::string_view prompt);

 private:
  size_t cap_, block_;
  std::list<uint64_t> lru_;
  std::unordered_map<uint64_t, std::list<uint64_t>::iterator> index_;
};

// A parsed chat request, as much as the mock needs.
struct ChatRequest {
  std::string model;
  bool stream = false;
  bool include_usage = false;
  int n = 1;
  std::string last_user;
  std::string prompt;  // every message's role and text, in order (bounded), for the prefix cache
  int64_t prompt_chars = 0;
  int64_t messages = 0;
  std::string tool_name;  // first tool's function name when tools are given and allowed
  // The last message is a tool's result: the answer uses it (an agent loop's next turn)
  // instead of calling the tool again.
  std::string tool_result;
  bool after_tool = false;
  std::vector<std::string> tool_required;
  std::string response_format;  // "", "text", "json_object", "json_schema"
  int64_t max_tokens = -1;
  // vLLM's continue_final_message: the last message is the assistant's answer so far; the
  // model continues it (the mock: the rest of the answer it would have given).
  std::string prefill;
};
std::optional<std::string> parse_chat(simdjson::dom::parser& p, const std::string& body, ChatRequest& out);

enum class Fault { kNone, kError, kRateLimit, kStall, kCut, kGarbage };

struct Plan {
  Fault fault = Fault::kNone;
  int retry_after_s = 1;
  int64_t stall_ms = 0;
  int fault_after = 0;  // tokens sent before a stall or cut
  int64_t slow_first_byte_ms = 0;
  double ttft_ms = 0, tpot_ms = 0;
  std::string text;                 // full content (empty for a tool call)
  std::vector<std::string> pieces;  // text split into streamed tokens
  std::string finish_reason = "stop";
  std::string tool_name, tool_args;
  int64_t prompt_tokens = 0, completion_tokens = 0;
  int64_t cached_tokens = -1;  // prompt tokens its prefix cache held (-1: no prefix cache)
  bool replayed = false;
};

// Thread-safe model table and fault switches.
class MockState {
 public:
  explicit MockState(uint64_t seed) : seed_(seed) {}
  std::string load(const Options& opts);  // "" or an error

  Plan plan(const ChatRequest& req);
  // Applies {"model": "...", "error_rate": ...}; returns "" or an error.
  std::string set_faults(simdjson::dom::parser& p, const std::string& body);
  void clear_faults();
  std::string faults_json();
  std::string models_json();

  std::atomic<uint64_t> requests{0}, streams_started{0}, streams_completed{0}, streams_aborted{0}, faults_injected{0};
  std::atomic<uint64_t> requests_by_api[4]{};  // chat, completions, messages, responses
  std::atomic<int64_t> in_flight{0};
  // What a vLLM server publishes on /metrics: generations running and requests waiting.
  std::atomic<int64_t> running{0}, waiting{0};
  std::atomic<int64_t> slots{0};  // the capacity model's batch slots (0: none)
  // Capacity model counters.
  std::atomic<uint64_t> queued{0}, queue_full{0}, prefix_blocks_hit{0}, prefix_blocks_seen{0};
  std::atomic<uint64_t> busy_slot_ms{0};  // slot time used by generations (utilization = busy / (slots x wall))
  CapacityConfig capacity;
  std::string stats_json();

 private:
  ModelConfig config_for(const std::string& model);
  std::mutex mu_;
  uint64_t seed_;
  uint64_t counter_ = 0;
  ModelConfig defaults_{"*", {}, {}, nullptr, ""};
  std::map<std::string, ModelConfig> models_;
};

// Rough token count used for usage: ~4 characters per token, at least 1 per message.
int64_t approx_tokens(int64_t chars);
// Splits text into stream pieces (a word and the whitespace after it) that concatenate back.
std::vector<std::string> split_pieces(const std::string& text);

// OpenAI-shaped bodies.
std::string completion_json(const std::string& id, const std::string& model, const Plan& p, int n);
std::string chunk_json(const std::string& id, const std::string& model, int index, const std::string& delta_json,
                       const char* finish_reason);
std::string usage_chunk_json(const std::string& id, const std::string& model, const Plan& p, int n);
std::string embeddings_json(simdjson::dom::parser& parser, const std::string& body, std::string& error);

}  // namespace sluice::mockllm
