#include "config/snapshot.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace sluice::config {

std::shared_ptr<const Snapshot> Snapshot::build(Config cfg, uint64_t version, std::string& error,
                                               const std::vector<RouteBinding>& bindings, upstream::Registry* health,
                                               std::shared_ptr<const flags::FlagSet> flag_set) {
  auto s = std::shared_ptr<Snapshot>(new Snapshot());
  s->config_ = std::move(cfg);
  s->version_ = version;
  s->flags_ = flag_set ? std::move(flag_set) : std::make_shared<const flags::FlagSet>();
  const Config& c = s->config_;
  for (size_t i = 0; i < c.upstreams.size(); ++i) {
    const Upstream& u = c.upstreams[i];
    UpstreamRuntime rt;
    rt.cfg = &u;
    rt.index = i;
    bool default_port = (u.parsed.tls && u.parsed.port == 443) || (!u.parsed.tls && u.parsed.port == 80);
    rt.host_header = u.parsed.host.find(':') != std::string::npos ? "[" + u.parsed.host + "]" : u.parsed.host;
    if (!default_port) rt.host_header += ":" + std::to_string(u.parsed.port);
    // A base URL without a path means the OpenAI layout at /v1.
    rt.path_prefix = u.parsed.base_path.empty() ? "/v1" : u.parsed.base_path;
    rt.identity = u.name + "|" + u.url + "|" + (u.tls_verify ? "v" : "n") + "|" + u.ca_file;
    if (!u.api_key_env.empty()) {
      if (const char* v = std::getenv(u.api_key_env.c_str())) rt.api_key = v;
    } else if (!u.api_key_file.empty()) {
      std::ifstream in(u.api_key_file);
      if (!in) {
        error = "upstream '" + u.name + "': cannot read api_key_file";
        return nullptr;
      }
      std::stringstream ss;
      ss << in.rdbuf();
      rt.api_key = std::string(trim(ss.str()));
    }
    // What was learned about this upstream (breaker, load) outlives the snapshot.
    rt.health = health ? health->get(rt.identity, u.breaker) : std::make_shared<upstream::Health>(u.breaker);
    s->upstreams_.push_back(std::move(rt));
  }
  for (Pool& p : s->config_.pools) {
    // A pool's admission gate outlives the snapshot too (its learned limit, its queue).
    if (p.admission.enabled())
      p.balance.gate = health ? health->gate(p.name, p.admission) : std::make_shared<admission::Gate>(p.admission);
    s->pools_[p.name] = &p;
  }
  for (Pool& p : s->config_.pools) {
    if (p.balance.overflow.empty()) continue;
    if (!s->add_targets(p.balance.overflow, p.balance.overflow_targets, p.balance.overflow_balance)) {
      error = "pool '" + p.name + "': overflow refers to unknown upstream or pool '" + p.balance.overflow + "'";
      return nullptr;
    }
  }
  auto targets = [&](const std::string& name, std::vector<size_t>& out, const upstream::BalanceSettings*& balance) {
    return s->add_targets(name, out, balance);
  };
  for (const RouteBinding& b : bindings) {
    Resolution res;
    if (!targets(b.release->upstream, res.upstreams, res.balance)) {
      // Never let one bad route take the gateway down: it is left out and reported.
      s->warnings_.push_back("route '" + b.route + "': release " + b.release->id + " needs upstream '" +
                             b.release->upstream + "', which is not configured; the route is not served");
      continue;
    }
    res.route = b.route;
    res.upstream_model = b.release->model_id;
    res.release = b.release;
    if (b.candidate && b.live) {
      if (!targets(b.candidate->upstream, res.candidate_upstreams, res.candidate_balance)) {
        s->warnings_.push_back("route '" + b.route + "': candidate release " + b.candidate->id + " needs upstream '" +
                               b.candidate->upstream + "', which is not configured; the rollout gets no traffic");
      } else {
        res.candidate = b.candidate;
        res.live = b.live;
      }
    }
    for (const auto& [name, rel] : b.pinned) {
      PinnedRelease p;
      p.name = name;
      p.release = rel;
      if (!targets(rel->upstream, p.upstreams, p.balance)) {
        s->warnings_.push_back("route '" + b.route + "': release " + rel->id + " (a variant of its release flag) needs upstream '" +
                               rel->upstream + "', which is not configured; requests the flag pins to it get the route's own release");
        continue;
      }
      res.pinned.push_back(std::move(p));
    }
    if (s->by_model_.emplace(b.route, std::move(res)).second) s->model_names_.push_back(b.route);
  }
  for (const Route& r : c.routes) {
    if (s->by_model_.count(r.name)) continue;  // served by a release
    Resolution res;
    res.route = r.name;
    res.upstream_model = r.model;
    for (const auto& n : r.upstreams) {
      const upstream::BalanceSettings* b = nullptr;
      if (!targets(n, res.upstreams, b)) {
        error = "route '" + r.name + "' refers to unknown upstream or pool '" + n + "'";
        return nullptr;
      }
      if (r.upstreams.size() == 1) res.balance = b;  // a route naming one pool balances over it
    }
    if (s->by_model_.emplace(r.name, std::move(res)).second) s->model_names_.push_back(r.name);
  }
  // Models listed on upstreams resolve to every upstream that lists them, in config order.
  for (size_t i = 0; i < c.upstreams.size(); ++i) {
    for (const auto& m : c.upstreams[i].models) {
      auto it = s->by_model_.find(m);
      if (it == s->by_model_.end()) {
        Resolution res;
        res.route = m;
        res.upstreams.push_back(i);
        s->by_model_.emplace(m, std::move(res));
        s->model_names_.push_back(m);
      } else if (it->second.upstream_model.empty() && it->second.route == m) {
        bool listed = false;
        for (size_t x : it->second.upstreams) listed = listed || x == i;
        if (!listed) it->second.upstreams.push_back(i);
      }
    }
  }
  // Zero-config: one upstream, no routes: every model name passes through to it.
  if (c.routes.empty() && bindings.empty() && c.upstreams.size() == 1) {
    Resolution res;
    res.upstreams.push_back(0);
    s->passthrough_ = std::move(res);
  }
  for (const Fallback& f : c.fallbacks) {
    auto it = s->by_model_.find(f.route);
    if (it == s->by_model_.end()) {
      s->warnings_.push_back("fallback for route '" + f.route + "': no such route (yet); it applies once the route exists");
      continue;
    }
    auto cf = std::make_unique<CompiledFallback>();
    for (const auto& name : f.on) cf->on.push_back(failure_class_named(name));
    cf->mid_stream = f.mid_stream == "continue"  ? CompiledFallback::MidStream::kContinue
                     : f.mid_stream == "restart" ? CompiledFallback::MidStream::kRestart
                                                 : CompiledFallback::MidStream::kError;
    cf->max_resumes = f.max_resumes;
    // Without a chain (a mid-stream policy only) nothing answers instead: relay as usual.
    if (!f.chain.empty()) {
      cf->on_5xx = cf->matches(ErrorKind::kStatus5xx);
      cf->on_429 = cf->matches(ErrorKind::kStatus429);
      cf->on_context_length = cf->matches(ErrorKind::kContextLengthExceeded);
    }
    for (const FallbackStep& st : f.chain) {
      CompiledFallback::Step step;
      if (st.last_good) {
        step.last_good = true;
        step.label = "cache";
        cf->keeps_last_good = true;
      } else if (st.upstream.empty()) {
        step.static_text = st.static_text;
        step.label = "static";
      } else {
        if (!s->add_targets(st.upstream, step.targets, step.balance)) continue;  // validated earlier
        if (!st.model.empty()) append_json_string(step.model_literal, st.model);
        step.label = st.upstream + (st.model.empty() ? "" : "/" + st.model);
      }
      cf->steps.push_back(std::move(step));
    }
    it->second.fallback = cf.get();
    s->fallbacks_.push_back(std::move(cf));
  }
  for (const LongContext& lc : c.long_context) {
    auto it = s->by_model_.find(lc.route);
    if (it == s->by_model_.end()) {
      s->warnings_.push_back("long_context: no route '" + lc.route + "' (yet)");
      continue;
    }
    if (!s->add_targets(lc.upstream, it->second.long_targets, it->second.long_balance)) continue;  // validated earlier
    it->second.long_above_bytes = static_cast<size_t>(lc.above_tokens) * 4;
  }
  for (const CacheRoute& cr : c.response_cache.routes) {
    auto it = s->by_model_.find(cr.route);
    if (it == s->by_model_.end()) {
      s->warnings_.push_back("response_cache: no route '" + cr.route + "' (yet)");
      continue;
    }
    it->second.cache = &cr;
  }
  for (const ApiKey& k : c.api_keys) s->key_tenants_[k.key_sha256] = {k.tenant, k.expires_at_ms};
  for (const Tenant& t : c.tenants) {
    s->tenants_[t.name] = &t;
    for (const auto& r : t.routes)
      if (!s->by_model_.count(r))
        s->warnings_.push_back("tenant '" + t.name + "' may call route '" + r + "', which does not exist (yet)");
  }
  return s;
}

const Tenant* Snapshot::tenant_limits(std::string_view name) const {
  auto it = tenants_.find(name);
  return it == tenants_.end() ? nullptr : it->second;
}

bool CompiledFallback::matches(ErrorKind failure) const {
  const FailureClass cls = failure_class(failure);
  return cls != FailureClass::kNone && std::find(on.begin(), on.end(), cls) != on.end();
}

bool Snapshot::add_targets(std::string_view name, std::vector<size_t>& out,
                           const upstream::BalanceSettings*& balance) const {
  auto add = [&](size_t i) {
    if (std::find(out.begin(), out.end(), i) == out.end()) out.push_back(i);
  };
  for (const auto& u : upstreams_) {
    if (u.cfg->name == name) {
      add(u.index);
      return true;
    }
  }
  auto pit = pools_.find(name);
  if (pit == pools_.end()) return false;
  for (const auto& m : pit->second->upstreams)
    for (const auto& u : upstreams_)
      if (u.cfg->name == m) add(u.index);
  balance = &pit->second->balance;
  return true;
}

std::vector<size_t> Snapshot::targets_of(std::string_view name, const upstream::BalanceSettings*& balance) const {
  std::vector<size_t> out;
  add_targets(name, out, balance);
  return out;
}

const Resolution* Snapshot::resolve(std::string_view model) const {
  if (auto it = by_model_.find(model); it != by_model_.end()) return &it->second;
  if (passthrough_) return &*passthrough_;
  return nullptr;
}

const std::string* Snapshot::tenant_for_key_hash(std::string_view h, int64_t now_ms) const {
  auto it = key_tenants_.find(h);
  if (it == key_tenants_.end()) return nullptr;
  if (it->second.expires_at_ms > 0 && now_ms >= it->second.expires_at_ms) return nullptr;
  return &it->second.tenant;
}

}  // namespace sluice::config
