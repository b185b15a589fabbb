#include "core/strings.hpp"
#include "rollout/controller.hpp"

#include <simdjson.h>
#include <signal.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/crypto.hpp"
#include "core/error.hpp"
#include "net/http_client.hpp"
#include "quality/text.hpp"
#include "rollout/ops.hpp"

namespace sluice::rollout {

namespace {

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string num(double v) { return num_text(v, 4); }

constexpr int64_t kPersistEveryMs = 1000;
constexpr int64_t kReloadEveryMs = 250;
constexpr int64_t kEvidenceEveryMs = 500;  // a replica publishes its evidence, the leader reads the others'

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A holder "host/pid/..." of this host whose process is gone: its lease need not run out.
bool dead_on_this_host(const std::string& holder, const std::string& me) {
  const size_t a = holder.find('/'), b = me.find('/');
  if (a == std::string::npos || b == std::string::npos || holder.compare(0, a, me, 0, b) != 0) return false;
  const long pid = std::strtol(holder.c_str() + a + 1, nullptr, 10);
  return pid > 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

// {"live":{...},"shadow":{...}} <-> the two phases' evidence.
std::string evidence_json(const Evidence& live, const Evidence& shadow) {
  return "{\"live\":" + live.to_json() + ",\"shadow\":" + shadow.to_json() + "}";
}

bool evidence_from_json(const std::string& json, Evidence& live, Evidence& shadow) {
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  if (p.parse(json).get(doc)) return false;
  simdjson::dom::element l, sh;
  if (doc["live"].get(l) || doc["shadow"].get(sh)) return false;
  return live.from_json(simdjson::minify(l)) && shadow.from_json(simdjson::minify(sh));
}

}  // namespace

struct Controller::Run {
  store::RolloutRecord rec;
  Spec spec;
  State state;
  std::shared_ptr<config::RolloutLive> live;
  std::shared_ptr<const release::Compiled> candidate;
  bool dirty = false;
  int64_t last_persist_ms = 0;
  int64_t rollback_ns = 0;        // steady time of the rollback decision
  bool settled_reported = false;
  bool warming = false;
  // This replica's own evidence (what its workers saw), published for the leader; the
  // leader's state evidence is its own merged with every other replica's last row.
  Evidence own_live, own_shadow;
  bool own_dirty = false, merge_due = true;
  int64_t last_evidence_ms = 0, others_read_ms = 0;
  std::map<std::string, std::pair<Evidence, Evidence>> others;  // by replica
};

Controller::Controller(ControllerEnv env) : env_(std::move(env)) {
  hook_thread_ = std::thread([this] { webhook_loop(); });
}

Controller::~Controller() {
  {
    std::lock_guard<std::mutex> lock(hook_mu_);
    stopping_ = true;
  }
  hook_cv_.notify_all();
  hook_thread_.join();
  for (auto& t : warm_threads_) t.join();
}

void Controller::load(const store::RolloutRecord& r) {
  auto run = std::make_unique<Run>();
  run->rec = r;
  std::string err;
  auto spec = parse_spec(r.spec, err);
  if (!spec) {
    env_.log("rollout " + r.id + ": stored spec is invalid (" + err + "); ignored");
    return;
  }
  run->spec = *spec;
  run->candidate = control::compile_release(*env_.store, r.candidate_release, err);
  if (!run->candidate) {
    env_.log("rollout " + r.id + ": candidate cannot be compiled (" + err + "); ignored");
    return;
  }
  run->live = std::make_shared<config::RolloutLive>();
  run->live->id = r.id;
  run->live->salt = std::hash<std::string>{}(r.id);
  run->live->sticky_header = run->spec.sticky_header;
  run->live->mirror_tools = run->spec.mirror_tools;
  run->live->shadow_max_inflight = run->spec.shadow_max_inflight;
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  Decision d;
  if (r.state.find("\"new\"") != std::string::npos) {
    if (leader_) d = begin(run->spec, run->state, now);  // a follower waits for the leader to begin it
  } else if (!run->state.from_json(r.state)) {
    env_.log("rollout " + r.id + ": stored state is unreadable; ignored");
    return;
  } else if (leader_) {
    env_.log("rollout " + r.id + " on " + r.route + ": resumed at step " + std::to_string(run->state.step + 1) + " (" +
             status_name(run->state.status) + ", candidate " + num(run->state.weight) + "%, evidence " +
             num(run->state.live.candidate.error.n + run->state.shadow.candidate.error.n) + " candidate requests)");
    if (run->state.status == Status::kWarming) d.needs_warm = true;
    // A rollout stored before replicas published evidence: its stored evidence becomes this
    // replica's own, so nothing is lost.
    if (env_.store->list_rollout_evidence(r.id).empty()) {
      run->own_live = run->state.live;
      run->own_shadow = run->state.shadow;
      run->own_dirty = true;
    }
  }
  run->live->weight_bp.store(static_cast<uint32_t>(std::lround(run->state.weight * 100)));
  run->live->shadow_bp.store(static_cast<uint32_t>(std::lround(run->state.shadow_share * 10000)));
  Run& ref = *run;
  by_id_[r.id] = run.get();
  auto& slot = runs_[r.route];
  if (slot) retire(std::move(slot));  // the route's previous rollout, finished meanwhile
  slot = std::move(run);
  if (!leader_) return;
  handle(ref, std::move(d), now);
  ref.dirty = true;
}

void Controller::lead(int64_t now) {
  if (env_.lease_ms <= 0) {
    leader_ = true;
    return;
  }
  if (leader_ && steady_ns() > leader_until_ns_) step_down("its lease could not be renewed in time");
  if (now < next_lease_ms_) return;
  next_lease_ms_ = now + std::max<int64_t>(env_.lease_ms / 5, 1);
  store::Lease l;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const int64_t asked_ns = steady_ns();
    try {
      l = env_.store->acquire_lease(kControllerLease, env_.replica, env_.lease_ms, now,
                                    dead_on_this_host(holder_, env_.replica) ? holder_ : "");
    } catch (const std::exception& e) {
      return;  // the store is unreachable: lead until leader_until_ns_ at most
    }
    holder_ = l.holder;
    if (l.held) {
      // Renewed as of when it was asked for, less a tenth for the clocks of other replicas.
      leader_until_ns_ = asked_ns + (env_.lease_ms - env_.lease_ms / 10) * 1'000'000;
      break;
    }
    if (!dead_on_this_host(holder_, env_.replica)) break;  // else: try once more, taking it from the dead
  }
  if (!l.held) {
    if (leader_) step_down("replica " + l.holder + " holds the controller lease");
    return;
  }
  if (leader_ && l.token == fence_.token) return;
  leader_ = true;
  fence_.token = l.token;
  env_.log("rollout controller: this replica (" + env_.replica + ") drives the rollouts (lease token " +
           std::to_string(l.token) + ")");
  // Resume every rollout where the last leader persisted it, with every replica's evidence.
  for (auto& [route, run] : runs_) {
    auto fresh = env_.store->get_rollout(run->rec.id);
    if (!fresh) continue;
    follow(*run, *fresh);
    run->others_read_ms = 0;
    run->merge_due = true;
    if (fresh->state.find("\"new\"") != std::string::npos) handle(*run, begin(run->spec, run->state, now), now);
    std::string detail = "{\"message\":";
    append_json_string(detail, "replica " + env_.replica + " took over the rollout controller at step " +
                                   std::to_string(run->state.step + 1));
    detail += ",\"replica\":";
    append_json_string(detail, env_.replica);
    detail += ",\"token\":" + std::to_string(l.token) + ",\"step\":" + std::to_string(run->state.step) + "}";
    env_.store->append_rollout_event({0, run->rec.id, now, "controller", detail});
  }
}

void Controller::step_down(const std::string& why) {
  if (!leader_) return;
  leader_ = false;
  env_.log("rollout controller: this replica (" + env_.replica + ") no longer drives the rollouts: " + why);
  // Follow what is stored: whatever this replica decided without persisting it is undone.
  for (auto& [route, run] : runs_) {
    try {
      if (auto fresh = env_.store->get_rollout(run->rec.id)) follow(*run, *fresh);
    } catch (const std::exception&) {
    }
  }
}

void Controller::follow(Run& run, const store::RolloutRecord& r) {
  run.rec = r;
  if (r.state.find("\"new\"") != std::string::npos) return;
  State st;
  if (!st.from_json(r.state)) return;
  run.state = std::move(st);
  run.live->weight_bp.store(static_cast<uint32_t>(std::lround(run.state.weight * 100)));
  run.live->shadow_bp.store(static_cast<uint32_t>(std::lround(run.state.shadow_share * 10000)));
  run.dirty = false;
}

void Controller::publish_evidence(Run& run, int64_t now) {
  if (!run.own_dirty) return;
  env_.store->put_rollout_evidence(run.rec.id, env_.replica, evidence_json(run.own_live, run.own_shadow), now);
  run.own_dirty = false;
  run.last_evidence_ms = now;
}

void Controller::merge_evidence(Run& run, int64_t now) {
  if (now - run.others_read_ms >= kEvidenceEveryMs) {
    run.others_read_ms = now;
    for (const auto& [replica, json] : env_.store->list_rollout_evidence(run.rec.id)) {
      if (replica == env_.replica) continue;
      std::pair<Evidence, Evidence> ev;
      if (evidence_from_json(json, ev.first, ev.second)) run.others[replica] = std::move(ev);
    }
    run.merge_due = true;
  }
  if (!run.merge_due) return;
  run.merge_due = false;
  Evidence live = run.own_live, shadow = run.own_shadow;
  for (const auto& [replica, ev] : run.others) {
    live.merge(ev.first);
    shadow.merge(ev.second);
  }
  run.state.live = std::move(live);
  run.state.shadow = std::move(shadow);
  run.dirty = true;
}

void Controller::reload() {
  lead(wall_ms());
  auto active = env_.store->list_rollouts("", true);
  bool changed = false;
  std::map<std::string, bool> seen;
  for (const auto& r : active) {
    seen[r.id] = true;
    auto known = by_id_.find(r.id);
    if (known == by_id_.end()) {
      load(r);
      changed = true;
    } else if (!leader_ && r.version != known->second->rec.version) {
      const double before = known->second->state.weight;
      follow(*known->second, r);  // the leader moved it on
      changed |= before != known->second->state.weight;
    }
  }
  for (auto it = runs_.begin(); it != runs_.end();) {
    if (!seen.count(it->second->rec.id)) {  // finished (here or by another process)
      retire(std::move(it->second));
      it = runs_.erase(it);
      changed = true;
    } else {
      ++it;
    }
  }
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  if (leader_)
    for (auto& [route, run] : runs_) apply_commands(*run, now);
  if (changed && env_.republish) env_.republish();
}

void Controller::apply_commands(Run& run, int64_t now) {
  if (run.state.terminal() || !leader_) return;
  for (const auto& c : env_.store->pending_rollout_commands(run.rec.id)) {
    if (!env_.store->mark_rollout_command_applied(c.seq, env_.lease_ms > 0 ? &fence_ : nullptr)) {
      step_down("its lease was taken over (fenced)");
      return;
    }
    Decision d = apply_command(run.spec, run.state, c.command, c.actor, c.reason, now);
    handle(run, std::move(d), now);
    if (run.state.terminal() || !leader_) break;
  }
}

void Controller::tick(int64_t now) {
  lead(now);
  Sink::Batch b;
  env_.sink->drain(b);
  for (auto& s : b.samples) {
    auto it = by_id_.find(s.rollout_id);
    if (it == by_id_.end() || it->second->state.terminal()) continue;
    Run& run = *it->second;
    // Live evidence is collected while live traffic is split: both arms over the same window.
    if (run.state.weight <= 0 && !s.candidate) continue;
    (s.candidate ? run.own_live.candidate : run.own_live.stable).add(s.obs);
    run.own_dirty = run.merge_due = true;
    if (s.request_key && recent_.emplace(s.request_key, std::make_pair(s.rollout_id, s.candidate)).second) {
      recent_order_.push_back(s.request_key);
      if (recent_order_.size() > kRecent) {
        recent_.erase(recent_order_.front());
        recent_order_.pop_front();
      }
    }
  }
  for (auto& p : b.pairs) {
    auto it = by_id_.find(p.rollout_id);
    if (it == by_id_.end() || it->second->state.terminal()) continue;
    Run& run = *it->second;
    Evidence& ev = run.own_shadow;
    ev.stable.add(p.stable);
    ev.candidate.add(p.candidate);
    run.own_dirty = run.merge_due = true;
    if (p.candidate.error || p.stable.error) continue;  // pairs compare answers
    quality::Agreement a = quality::compare(p.stable_text, p.candidate_text);
    const std::string& kind = run.spec.agreement;
    bool agree = kind == "exact"        ? a.exact
                 : kind == "normalized" ? a.normalized
                 : kind == "token_set"  ? a.token_set >= run.spec.agreement_token_set
                 : kind == "json"       ? a.json.value_or(false)
                 : kind == "number"     ? a.number.value_or(a.normalized)
                 : a.json ? *a.json
                          : (a.normalized || a.token_set >= run.spec.agreement_token_set);
    ev.pairs.agreement.add(agree ? 1 : 0);
    ev.pairs.latency_delta.add(p.candidate.latency_ms - p.stable.latency_ms);
    if (p.candidate.cost >= 0 && p.stable.cost >= 0) ev.pairs.cost_delta.add(p.candidate.cost - p.stable.cost);
    if (p.candidate.refusal >= 0 && p.stable.refusal >= 0)
      ev.pairs.refusal_delta.add(static_cast<double>(p.candidate.refusal - p.stable.refusal));
    if (!agree) {
      auto clip = [](std::string s) {
        if (s.size() > 600) s.resize(600);
        return s;
      };
      ev.pairs.kept.push_back({p.request_id, clip(p.stable_text), clip(p.candidate_text), a.token_set});
      if (ev.pairs.kept.size() > ShadowEvidence::kKeep) ev.pairs.kept.pop_front();
    }
  }
  for (auto& f : b.feedback) {
    auto it = recent_.find(request_key(f.request_id));
    if (it == recent_.end()) {
      ++feedback_unmatched_;
      continue;
    }
    auto rit = by_id_.find(it->second.first);
    if (rit == by_id_.end()) continue;
    (it->second.second ? rit->second->own_live.candidate : rit->second->own_live.stable).feedback.add(f.score);
    rit->second->own_dirty = rit->second->merge_due = true;
  }
  if (!leader_) {  // a follower publishes what it saw; the leader decides
    for (auto& [route, run] : runs_)
      if (now - run->last_evidence_ms >= kEvidenceEveryMs) publish_evidence(*run, now);
    return;
  }
  for (auto& [route, run] : runs_)
    if (!run->state.terminal()) merge_evidence(*run, now);
  {
    std::vector<std::pair<std::string, std::string>> done;
    {
      std::lock_guard<std::mutex> lock(warm_mu_);
      done.swap(warm_done_);
    }
    for (auto& [id, err] : done) {
      auto it = by_id_.find(id);
      if (it == by_id_.end()) continue;
      it->second->warming = false;
      handle(*it->second, warm_result(it->second->spec, it->second->state, err, now), now);
    }
  }
  if (now - last_reload_ms_ >= kReloadEveryMs) {
    last_reload_ms_ = now;
    for (auto& [route, run] : runs_) apply_commands(*run, now);
  }
  std::vector<std::string> finished;
  for (auto& [route, run] : runs_) {
    if (!leader_) return;  // fenced meanwhile
    if (!run->state.terminal() && !held_) handle(*run, advance(run->spec, run->state, now), now);
    if (!leader_) return;
    report_settled(*run);
    if (run->state.terminal()) {
      if (run->settled_reported || !run->rollback_ns) finished.push_back(route);
      continue;
    }
    if (run->dirty && now - run->last_persist_ms >= kPersistEveryMs) persist(*run, false, nullptr);
  }
  for (auto it = settling_.begin(); it != settling_.end();) {
    report_settled(**it);
    if ((*it)->settled_reported) {
      by_id_.erase((*it)->rec.id);
      it = settling_.erase(it);
    } else {
      ++it;
    }
  }
  if (!finished.empty()) {
    for (const auto& route : finished) {
      by_id_.erase(runs_[route]->rec.id);
      runs_.erase(route);
    }
    if (env_.republish) env_.republish();
  }
}

void Controller::report_settled(Run& run) {
  if (!run.rollback_ns || run.settled_reported || steady_ns() - run.rollback_ns <= 1'000'000'000) return;
  run.settled_reported = true;
  int64_t last = run.live->last_candidate_start_ns.load();
  double after_ms = last > run.rollback_ns ? static_cast<double>(last - run.rollback_ns) / 1e6 : 0;
  std::string msg = "rollback settled: the last request sent to the candidate started " + num(after_ms) +
                    " ms after the decision (0 = none after it)";
  env_.store->append_rollout_event({0, run.rec.id, 0, "rollback_settled",
                                    "{\"message\":\"" + msg + "\",\"last_candidate_after_ms\":" + num(after_ms) + "}"});
  env_.log("rollout " + run.rec.id + " on " + run.rec.route + ": " + msg);
}

void Controller::retire(std::unique_ptr<Run> run) {
  // A rolled-back run still owes its rollback_settled report (and late samples may still
  // name it): it stays reachable by id until then. Anything else is forgotten at once.
  if (run->state.terminal() && run->rollback_ns && !run->settled_reported) {
    settling_.push_back(std::move(run));
    return;
  }
  by_id_.erase(run->rec.id);
}

void Controller::handle(Run& run, Decision d, int64_t now) {
  // The decision is recorded (fenced by the lease, with its events in the same transaction)
  // before it takes effect: a replica that lost the lease changes nothing, and a decision
  // taken before a crash is in the store for the next leader exactly once.
  std::vector<store::RolloutEvent> events;
  for (const Event& e : d.events) {
    std::string detail = "{\"message\":";
    append_json_string(detail, e.message);
    detail += ",\"weight\":" + num(run.state.weight) + ",\"shadow_share\":" + num(run.state.shadow_share);
    detail += ",\"data\":" + (e.detail.empty() ? std::string("{}") : e.detail) + "}";
    events.push_back({0, run.rec.id, now, e.kind, std::move(detail)});
  }
  if (d.finished) {
    store::AuditEntry a;
    a.actor = "rollout-controller";
    a.action = run.state.promoted ? "rollout.complete" : (d.rolled_back ? "rollout.rollback" : "rollout.finish");
    a.target = run.rec.route;
    a.before = run.rec.stable_release;
    a.after = run.state.promoted ? run.rec.candidate_release : run.rec.stable_release;
    a.reason = run.state.reason;
    if (!persist(run, true, &a, &events)) return;
  } else if (!events.empty()) {
    if (!persist(run, false, nullptr, &events)) return;
  }
  if (d.weights_changed) {
    // One atomic store each: the next request on every worker sees it.
    run.live->weight_bp.store(static_cast<uint32_t>(std::lround(run.state.weight * 100)));
    run.live->shadow_bp.store(static_cast<uint32_t>(std::lround(run.state.shadow_share * 10000)));
    if (d.rolled_back) run.rollback_ns = steady_ns();
    run.dirty = true;
  }
  for (const Event& e : d.events) {
    env_.log("rollout " + run.rec.id + " on " + run.rec.route + ": " + e.kind + ": " + e.message);
    if (e.kind == "rollback" || e.kind == "aborted" || e.kind == "completed" || e.kind == "paused") notify(run, e);
  }
  if (d.needs_warm && !run.warming && env_.warm) {
    run.warming = true;
    std::string id = run.rec.id, rel = run.rec.candidate_release;
    std::vector<std::string> smoke = run.spec.smoke;
    auto warm = env_.warm;
    warm_threads_.emplace_back([this, id, rel, smoke, warm] {
      std::string err = warm(rel, smoke);
      std::lock_guard<std::mutex> lock(warm_mu_);
      warm_done_.push_back({id, err});
    });
  }
  if (d.finished && !d.rolled_back && env_.republish) env_.republish();
}

bool Controller::persist(Run& run, bool finished, const store::AuditEntry* audit,
                         std::vector<store::RolloutEvent>* events) {
  // This replica's evidence first: what the stored state counts is always in some row.
  publish_evidence(run, wall_ms());
  run.rec.state = run.state.to_json();
  if (finished) run.rec.status = run.state.status == Status::kCompleted ? "completed" : "aborted";
  const store::Fence* fence = env_.lease_ms > 0 ? &fence_ : nullptr;
  for (int attempt = 0; attempt < 3; ++attempt) {
    store::Outcome o = env_.store->update_rollout(run.rec, finished && run.state.promoted, audit, fence, events);
    if (o.ok()) break;
    if (o.error == "fenced") {
      step_down("another replica took the controller lease over (fenced write refused)");
      return false;
    }
    if (o.error != "conflict") {
      env_.log("rollout " + run.rec.id + ": cannot persist: " + o.error);
      break;
    }
    // Someone else wrote the row (another process): take its version, keep our state.
    auto fresh = env_.store->get_rollout(run.rec.id);
    if (!fresh) break;
    run.rec.version = fresh->version;
  }
  run.dirty = false;
  run.last_persist_ms = wall_ms();
  return true;
}

void Controller::flush() {
  for (auto& [route, run] : runs_) {
    if (leader_ && run->dirty && !run->state.terminal()) {
      if (!persist(*run, false, nullptr)) break;
    } else {
      publish_evidence(*run, wall_ms());
    }
  }
  if (leader_ && env_.lease_ms > 0) {
    env_.store->release_lease(kControllerLease, env_.replica);
    leader_ = false;
  }
}

void Controller::notify(const Run& run, const Event& e) {
  if (run.spec.webhook.empty()) return;
  std::string body = "{\"event\":";
  append_json_string(body, e.kind);
  body += ",\"rollout\":";
  append_json_string(body, run.rec.id);
  body += ",\"route\":";
  append_json_string(body, run.rec.route);
  body += ",\"stable\":";
  append_json_string(body, run.rec.stable_release);
  body += ",\"candidate\":";
  append_json_string(body, run.rec.candidate_release);
  body += ",\"status\":\"" + std::string(status_name(run.state.status)) + "\",\"message\":";
  append_json_string(body, e.message);
  body += ",\"detail\":" + (e.detail.empty() ? std::string("{}") : e.detail) + "}";
  {
    std::lock_guard<std::mutex> lock(hook_mu_);
    if (hooks_.size() < 1000) hooks_.push_back({run.spec.webhook, std::move(body)});
  }
  hook_cv_.notify_one();
}

void Controller::webhook_loop() {
  std::unique_lock<std::mutex> lock(hook_mu_);
  while (true) {
    hook_cv_.wait(lock, [this] { return stopping_ || !hooks_.empty(); });
    if (stopping_) return;  // undelivered hooks are in the event log
    auto [url, body] = std::move(hooks_.front());
    hooks_.pop_front();
    lock.unlock();
    // Up to 6 attempts: 0.25, 0.5, 1, 2, 4 s apart. Never on the data plane.
    std::chrono::milliseconds wait(250);
    for (int attempt = 0; attempt < 6; ++attempt) {
      net::HttpResult r = net::http_request("POST", url, "", body, std::chrono::seconds(3));
      if (r.status >= 200 && r.status < 300) break;
      if (env_.log)
        env_.log("webhook " + url + " attempt " + std::to_string(attempt + 1) + " failed (" +
                 (r.error.empty() ? "status " + std::to_string(r.status) : r.error) + ")");
      std::unique_lock<std::mutex> l2(hook_mu_);
      if (hook_cv_.wait_for(l2, wait, [this] { return stopping_; })) return;
      wait *= 2;
    }
    lock.lock();
  }
}

std::vector<config::RouteBinding> Controller::bindings(const std::vector<config::RouteBinding>& stable) const {
  std::vector<config::RouteBinding> out = stable;
  for (auto& b : out) {
    auto it = runs_.find(b.route);
    if (it == runs_.end()) continue;
    const Run& run = *it->second;
    if (!b.release || b.release->id != run.rec.stable_release) continue;  // stable moved: stale rollout
    // A finished rollout keeps its binding until the promotion is in the snapshot.
    b.candidate = run.candidate;
    b.live = run.live;
  }
  return out;
}

control::Result Controller::command(const std::string& route, const std::string& cmd, const std::string& actor,
                                    const std::string& reason) {
  auto it = runs_.find(route);
  // The live state may be ahead of the stored one: refuse a promote past an approval here too.
  if (cmd == "promote" && it != runs_.end() && it->second->state.status == Status::kAwaitingApproval)
    return refuse_promote(*env_.store, it->second->rec, actor, reason);
  control::Result r = rollout::command(*env_.store, route, cmd, actor, reason);
  if (!r.ok()) return r;
  if (!leader_) {
    r.text = cmd + " queued: the rollout controller (replica " + holder_ + ") applies it within a moment";
    return r;
  }
  if (it == runs_.end()) {
    reload();
    it = runs_.find(route);
  }
  if (it != runs_.end()) {
    int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    apply_commands(*it->second, now);
    r.text = cmd + " applied to rollout " + it->second->rec.id + " (" + status_name(it->second->state.status) +
             ", candidate " + num(it->second->state.weight) + "%)";
  }
  return r;
}

std::string Controller::status_json(const std::string& route) {
  auto it = runs_.find(route);
  if (it != runs_.end()) {
    Run& run = *it->second;
    store::RolloutRecord r = run.rec;
    r.state = run.state.to_json();  // the live state, not the last persisted one
    std::string json = rollout::status_json(r, env_.store->rollout_events(r.id, 0));
    // Shadow counters live in the data plane.
    json.pop_back();
    json += ",\"shadow_sent\":" + std::to_string(run.live->shadow_sent.load()) +
            ",\"shadow_dropped\":" + std::to_string(run.live->shadow_dropped.load()) +
            (held_ ? ",\"held\":\"by the kill.rollouts switch\"" : "") + ",\"controller\":" + controller_json() + "}";
    return json;
  }
  auto all = env_.store->list_rollouts(route, false);
  if (all.empty()) return "";
  return rollout::status_json(all.back(), env_.store->rollout_events(all.back().id, 0));
}

std::string Controller::controller_json() const {
  std::string o = "{\"replica\":";
  append_json_string(o, env_.replica);
  o += ",\"leader\":" + std::string(leader_ ? "true" : "false") + ",\"holder\":";
  append_json_string(o, leader_ ? env_.replica : holder_);
  o += ",\"token\":" + std::to_string(fence_.token) + "}";
  return o;
}

std::string Controller::prometheus() const {
  std::string o =
      "# HELP sluice_rollout_weight_percent Live traffic share of the candidate release.\n"
      "# TYPE sluice_rollout_weight_percent gauge\n";
  for (const auto& [route, run] : runs_)
    o += "sluice_rollout_weight_percent{route=\"" + route + "\",rollout=\"" + run->rec.id + "\"} " +
         num(run->state.weight) + "\n";
  o += "# HELP sluice_rollout_shadow_dropped_total Mirrored requests dropped because the shadow queue was full.\n"
       "# TYPE sluice_rollout_shadow_dropped_total counter\n";
  for (const auto& [route, run] : runs_)
    o += "sluice_rollout_shadow_dropped_total{route=\"" + route + "\",rollout=\"" + run->rec.id + "\"} " +
         std::to_string(run->live->shadow_dropped.load()) + "\n";
  o += "# HELP sluice_rollouts_held Every rollout is held where it is by the kill.rollouts switch (1).\n"
       "# TYPE sluice_rollouts_held gauge\n";
  o += std::string("sluice_rollouts_held ") + (held_ ? "1" : "0") + "\n";
  o += "# HELP sluice_rollout_controller_leader This replica holds the controller lease and drives every rollout (1).\n"
       "# TYPE sluice_rollout_controller_leader gauge\n";
  o += std::string("sluice_rollout_controller_leader ") + (leader_ ? "1" : "0") + "\n";
  o += "# HELP sluice_feedback_unmatched_total Feedback for requests that are not part of a rollout.\n"
       "# TYPE sluice_feedback_unmatched_total counter\nsluice_feedback_unmatched_total " +
       std::to_string(feedback_unmatched_) + "\n";
  return o;
}

}  // namespace sluice::rollout
