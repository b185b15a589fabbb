// cache/response_cache.hpp: the exact-match response cache, opt-in per route. A whole chat
// completion is kept under a key made of the tenant (unless the route shares across
// tenants), the route and the rendered request without its streaming members, for
// deterministic requests only (temperature 0, or a seed). Bounded by bytes, least recently
// used first out, each entry with a time to live. No semantic matching: similar questions
// can have opposite answers. Shared by every worker and kept beside the snapshot (a reload
// keeps the entries); one mutex, held for a map lookup and a list splice.
#pragma once
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace sluice::cache {

struct Stats {
  int64_t hits = 0, misses = 0, stores = 0, evictions = 0, expired = 0, entries = 0, bytes = 0;
};

class ResponseCache {
 public:
  explicit ResponseCache(int64_t max_bytes = 64 << 20) : max_bytes_(max_bytes) {}
  void set_max_bytes(int64_t b);

  // The stored completion for `key`, when present and fresh (counts a hit or a miss).
  std::optional<std::string> get(const std::string& key, int64_t now_ms);
  // Stores `body` until now + ttl; entries larger than a quarter of the cache are not kept.
  void put(const std::string& key, std::string body, int64_t now_ms, int64_t ttl_ms);
  // Forgets `key`; false when it was not kept.
  bool erase(const std::string& key);
  Stats stats();

 private:
  struct Entry {
    std::string key, body;
    int64_t expires_ms = 0;
  };
  void evict_locked();

  std::mutex mu_;
  int64_t max_bytes_;
  std::list<Entry> lru_;  // front = most recently used
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  Stats stats_;
};

// The cache key: a SHA-256 over tenant, route and the request as the upstream would get it,
// without `stream` and `stream_options` (a streamed and a whole request share an answer).
std::string cache_key(std::string_view tenant, std::string_view route, std::string_view rendered_body_without_stream);

}  // namespace sluice::cache
