// config/snapshot.hpp: an immutable, compiled view of a Config that the data plane reads.
// The control plane builds a new Snapshot and publishes it; workers pick it up on their
// next request with one relaxed atomic load (no lock on the hot path).
#pragma once
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "core/error.hpp"
#include "config/rollout_live.hpp"
#include "flags/flagset.hpp"
#include "release/compiled.hpp"

namespace sluice::config {

// An upstream ready to be called: secrets resolved, path prefix computed.
struct UpstreamRuntime {
  const Upstream* cfg = nullptr;  // points into Snapshot::config
  size_t index = 0;
  std::string api_key;            // resolved secret; never logged or serialized
  std::string host_header;        // "host[:port]"
  std::string path_prefix;        // e.g. "/v1" (prepended to "/chat/completions")
  std::string identity;           // name|url: pools survive reloads that keep it
  // Breaker, Retry-After and load of this upstream: kept in the upstream::Registry beside
  // the snapshot store, so a reload that keeps the upstream keeps its state.
  std::shared_ptr<upstream::Health> health;
};

// A route's fallback chain, compiled: each step's targets, or a static answer.
struct CompiledFallback {
  struct Step {
    std::vector<size_t> targets;
    const upstream::BalanceSettings* balance = nullptr;
    std::string model_literal;  // JSON string of the model id to send ("" = the request's)
    std::string static_text;    // a static degraded answer when targets is empty...
    bool last_good = false;     // ...or the route's last good answer to the same request
    std::string label;          // what served: "pool/model", "static" or "cache" (header, log, metric)
  };
  std::vector<Step> steps;
  std::vector<FailureClass> on;  // the failure classes that fall back
  // Derived from `on` once, at build: the answers the forwarder must not relay.
  bool on_5xx = false, on_429 = false, on_context_length = false;
  bool keeps_last_good = false;  // a step answers from the last good answers: keep them
  enum class MidStream { kError, kRestart, kContinue } mid_stream = MidStream::kError;
  int max_resumes = 1;
  bool matches(ErrorKind failure) const;
};

// A release a route's release flag may pin a request to (flags/flagset.hpp), ready to serve.
struct PinnedRelease {
  std::string name;  // as the flag's variant names it (an id or a unique prefix)
  std::shared_ptr<const release::Compiled> release;
  std::vector<size_t> upstreams;
  const upstream::BalanceSettings* balance = nullptr;
};

// How a model name resolves.
struct Resolution {
  std::string route;                 // route name for metrics/logs ("" in pass-through)
  std::vector<size_t> upstreams;     // indices into Snapshot::upstreams, in try order
  // How to balance over `upstreams` (a pool's settings); null = in order (primary, then
  // fallbacks), the behaviour of a plain list.
  const upstream::BalanceSettings* balance = nullptr;
  const upstream::BalanceSettings* candidate_balance = nullptr;
  std::string upstream_model;        // model id to send; empty = leave the body's model as is
  std::shared_ptr<const release::Compiled> release;  // the route's stable release, if it has one
  // A rollout in progress: the candidate, where it is served, and the live weights.
  std::shared_ptr<const release::Compiled> candidate;
  std::vector<size_t> candidate_upstreams;
  std::shared_ptr<RolloutLive> live;
  const CompiledFallback* fallback = nullptr;  // the route's fallback chain, if any
  const CacheRoute* cache = nullptr;           // the route's response cache rule, if any
  std::vector<PinnedRelease> pinned;           // releases the route's release flag names
  const PinnedRelease* pinned_release(std::string_view name) const {
    for (const auto& p : pinned)
      if (p.name == name) return &p;
    return nullptr;
  }
  // Long prompts (body above long_above_bytes) go to their own targets (long_context).
  std::vector<size_t> long_targets;
  const upstream::BalanceSettings* long_balance = nullptr;
  size_t long_above_bytes = 0;
};

// A route served by a release (from the store), as the control plane hands it over.
struct RouteBinding {
  std::string route;
  std::shared_ptr<const release::Compiled> release;
  std::shared_ptr<const release::Compiled> candidate;  // set while a rollout runs
  std::shared_ptr<RolloutLive> live;
  // The releases the route's release flag names (by the name the flag uses), compiled.
  std::vector<std::pair<std::string, std::shared_ptr<const release::Compiled>>> pinned;
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class Snapshot {
 public:
  // Builds from a validated config. Errors (e.g. unreadable secret file) are returned as text.
  // Bindings (routes served by releases) take precedence over config routes of the same name.
  // `health` keeps upstream state across snapshots (null: fresh state, e.g. in tests).
  static std::shared_ptr<const Snapshot> build(Config cfg, uint64_t version, std::string& error,
                                               const std::vector<RouteBinding>& bindings = {},
                                               upstream::Registry* health = nullptr,
                                               std::shared_ptr<const flags::FlagSet> flags = nullptr);

  const Config& config() const { return config_; }
  uint64_t version() const { return version_; }
  // The flags in force (never null: an empty set when there are none).
  const flags::FlagSet& flags() const { return *flags_; }
  const std::vector<UpstreamRuntime>& upstreams() const { return upstreams_; }

  // nullptr when the model is unknown.
  const Resolution* resolve(std::string_view model) const;
  // Tenant owning the key with this sha256, or nullptr (unknown, or past its rotation grace).
  const std::string* tenant_for_key_hash(std::string_view sha256_hex, int64_t now_ms) const;
  bool requires_api_key() const { return !key_tenants_.empty() || config_.require_api_key; }
  // A tenant's limits, or nullptr when it has none.
  const Tenant* tenant_limits(std::string_view name) const;
  bool passthrough() const { return passthrough_.has_value(); }
  // Problems that did not stop the build (e.g. a route whose release cannot be served).
  const std::vector<std::string>& warnings() const { return warnings_; }
  bool has_upstream(std::string_view name) const {
    for (const auto& u : upstreams_)
      if (u.cfg->name == name) return true;
    return false;
  }
  // The upstreams a name in a route or release stands for: the upstream itself, or a pool's
  // members (with the pool's balance settings). Empty when the name is unknown.
  std::vector<size_t> targets_of(std::string_view name, const upstream::BalanceSettings*& balance) const;
  // Names clients may send in "model" (routes, then upstream model lists).
  const std::vector<std::string>& model_names() const { return model_names_; }

 private:
  Config config_;
  uint64_t version_ = 0;
  std::shared_ptr<const flags::FlagSet> flags_;
  bool add_targets(std::string_view name, std::vector<size_t>& out, const upstream::BalanceSettings*& balance) const;

  std::vector<UpstreamRuntime> upstreams_;
  std::unordered_map<std::string, const Pool*, StringHash, std::equal_to<>> pools_;  // into config_
  std::vector<std::unique_ptr<CompiledFallback>> fallbacks_;
  std::unordered_map<std::string, Resolution, StringHash, std::equal_to<>> by_model_;
  std::optional<Resolution> passthrough_;
  struct KeyEntry {
    std::string tenant;
    int64_t expires_at_ms = 0;  // 0: never
  };
  std::unordered_map<std::string, KeyEntry, StringHash, std::equal_to<>> key_tenants_;
  std::unordered_map<std::string, const Tenant*, StringHash, std::equal_to<>> tenants_;  // into config_
  std::vector<std::string> model_names_;
  std::vector<std::string> warnings_;
};

// Holds the current snapshot. publish() is for the control plane; current() for anyone.
class SnapshotStore {
 public:
  void publish(std::shared_ptr<const Snapshot> s) {
    std::lock_guard<std::mutex> lock(mu_);
    current_ = std::move(s);
    version_.fetch_add(1, std::memory_order_release);
  }
  std::shared_ptr<const Snapshot> current() const {
    std::lock_guard<std::mutex> lock(mu_);
    return current_;
  }
  // Bumps on every publish; workers compare it with their cached copy per request.
  uint64_t generation() const { return version_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mu_;  // taken only when a worker sees a new generation
  std::shared_ptr<const Snapshot> current_;
  std::atomic<uint64_t> version_{0};
};

// A worker's cached view of the store: one atomic load per request when nothing changed.
class SnapshotCache {
 public:
  explicit SnapshotCache(const SnapshotStore& store) : store_(store) {}
  const std::shared_ptr<const Snapshot>& get() {
    uint64_t g = store_.generation();
    if (g != seen_) {
      cached_ = store_.current();
      seen_ = g;
    }
    return cached_;
  }

 private:
  const SnapshotStore& store_;
  std::shared_ptr<const Snapshot> cached_;
  uint64_t seen_ = ~uint64_t(0);
};

}  // namespace sluice::config
