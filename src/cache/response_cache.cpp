#include "cache/response_cache.hpp"

#include "core/crypto.hpp"

namespace sluice::cache {

namespace {
int64_t cost(const std::string& key, const std::string& body) {
  return static_cast<int64_t>(key.size() + body.size() + 64);  // 64: list node and index overhead
}
}  // namespace

void ResponseCache::set_max_bytes(int64_t b) {
  std::lock_guard<std::mutex> lock(mu_);
  max_bytes_ = b;
  evict_locked();
}

std::optional<std::string> ResponseCache::get(const std::string& key, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) {
    ++stats_.misses;
    return std::nullopt;
  }
  if (it->second->expires_ms <= now_ms) {
    stats_.bytes -= cost(it->second->key, it->second->body);
    lru_.erase(it->second);
    index_.erase(it);
    ++stats_.expired;
    ++stats_.misses;
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  ++stats_.hits;
  return it->second->body;
}

bool ResponseCache::erase(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return false;
  stats_.bytes -= cost(it->second->key, it->second->body);
  lru_.erase(it->second);
  index_.erase(it);
  return true;
}

void ResponseCache::put(const std::string& key, std::string body, int64_t now_ms, int64_t ttl_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cost(key, body) > max_bytes_ / 4) return;
  if (auto it = index_.find(key); it != index_.end()) {
    stats_.bytes -= cost(it->second->key, it->second->body);
    lru_.erase(it->second);
    index_.erase(it);
  }
  lru_.push_front(Entry{key, std::move(body), now_ms + ttl_ms});
  index_[key] = lru_.begin();
  stats_.bytes += cost(lru_.front().key, lru_.front().body);
  ++stats_.stores;
  evict_locked();
}

void ResponseCache::evict_locked() {
  while (stats_.bytes > max_bytes_ && !lru_.empty()) {
    Entry& last = lru_.back();
    stats_.bytes -= cost(last.key, last.body);
    index_.erase(last.key);
    lru_.pop_back();
    ++stats_.evictions;
  }
}

Stats ResponseCache::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.entries = static_cast<int64_t>(index_.size());
  return s;
}

std::string cache_key(std::string_view tenant, std::string_view route, std::string_view body) {
  std::string material;
  material.reserve(tenant.size() + route.size() + body.size() + 2);
  material.append(tenant).push_back('\x1f');
  material.append(route).push_back('\x1f');
  material.append(body);
  return sha256_hex(material);
}

}  // namespace sluice::cache
