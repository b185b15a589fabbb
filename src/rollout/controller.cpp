#include "core/strings.hpp"
#include "rollout/controller.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>

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
    d = begin(run->spec, run->state, now);
  } else if (!run->state.from_json(r.state)) {
    env_.log("rollout " + r.id + ": stored state is unreadable; ignored");
    return;
  } else {
    env_.log("rollout " + r.id + " on " + r.route + ": resumed at step " + std::to_string(run->state.step + 1) + " (" +
             status_name(run->state.status) + ", candidate " + num(run->state.weight) + "%, evidence " +
             num(run->state.live.candidate.error.n + run->state.shadow.candidate.error.n) + " candidate requests)");
    if (run->state.status == Status::kWarming) d.needs_warm = true;
  }
  run->live->weight_bp.store(static_cast<uint32_t>(std::lround(run->state.weight * 100)));
  run->live->shadow_bp.store(static_cast<uint32_t>(std::lround(run->state.shadow_share * 10000)));
  Run& ref = *run;
  by_id_[r.id] = run.get();
  auto& slot = runs_[r.route];
  if (slot) retire(std::move(slot));  // the route's previous rollout, finished meanwhile
  slot = std::move(run);
  handle(ref, std::move(d), now);
  ref.dirty = true;
}

void Controller::reload() {
  auto active = env_.store->list_rollouts("", true);
  bool changed = false;
  std::map<std::string, bool> seen;
  for (const auto& r : active) {
    seen[r.id] = true;
    if (!by_id_.count(r.id)) {
      load(r);
      changed = true;
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
  for (auto& [route, run] : runs_) apply_commands(*run, now);
  if (changed && env_.republish) env_.republish();
}

void Controller::apply_commands(Run& run, int64_t now) {
  if (run.state.terminal()) return;
  for (const auto& c : env_.store->pending_rollout_commands(run.rec.id)) {
    Decision d = apply_command(run.spec, run.state, c.command, c.actor, c.reason, now);
    env_.store->mark_rollout_command_applied(c.seq);
    handle(run, std::move(d), now);
    if (run.state.terminal()) break;
  }
}

void Controller::tick(int64_t now) {
  Sink::Batch b;
  env_.sink->drain(b);
  for (auto& s : b.samples) {
    auto it = by_id_.find(s.rollout_id);
    if (it == by_id_.end() || it->second->state.terminal()) continue;
    Run& run = *it->second;
    // Live evidence is collected while live traffic is split: both arms over the same window.
    if (run.state.weight <= 0 && !s.candidate) continue;
    (s.candidate ? run.state.live.candidate : run.state.live.stable).add(s.obs);
    run.dirty = true;
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
    Evidence& ev = run.state.shadow;
    ev.stable.add(p.stable);
    ev.candidate.add(p.candidate);
    run.dirty = true;
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
    (it->second.second ? rit->second->state.live.candidate : rit->second->state.live.stable).feedback.add(f.score);
    rit->second->dirty = true;
  }
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
    if (!run->state.terminal() && !held_) handle(*run, advance(run->spec, run->state, now), now);
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
  if (d.weights_changed) {
    // One atomic store each: the next request on every worker sees it.
    run.live->weight_bp.store(static_cast<uint32_t>(std::lround(run.state.weight * 100)));
    run.live->shadow_bp.store(static_cast<uint32_t>(std::lround(run.state.shadow_share * 10000)));
    if (d.rolled_back) run.rollback_ns = steady_ns();
  }
  for (const Event& e : d.events) {
    std::string detail = "{\"message\":";
    append_json_string(detail, e.message);
    detail += ",\"weight\":" + num(run.state.weight) + ",\"shadow_share\":" + num(run.state.shadow_share);
    detail += ",\"data\":" + (e.detail.empty() ? std::string("{}") : e.detail) + "}";
    env_.store->append_rollout_event({0, run.rec.id, now, e.kind, detail});
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
  if (!d.events.empty() || d.weights_changed) run.dirty = true;
  if (d.finished) {
    store::AuditEntry a;
    a.actor = "rollout-controller";
    a.action = run.state.promoted ? "rollout.complete" : (d.rolled_back ? "rollout.rollback" : "rollout.finish");
    a.target = run.rec.route;
    a.before = run.rec.stable_release;
    a.after = run.state.promoted ? run.rec.candidate_release : run.rec.stable_release;
    a.reason = run.state.reason;
    persist(run, true, &a);
    if (!d.rolled_back && env_.republish) env_.republish();
  } else if (!d.events.empty()) {
    persist(run, false, nullptr);
  }
}

void Controller::persist(Run& run, bool finished, const store::AuditEntry* audit) {
  run.rec.state = run.state.to_json();
  if (finished) run.rec.status = run.state.status == Status::kCompleted ? "completed" : "aborted";
  for (int attempt = 0; attempt < 3; ++attempt) {
    store::Outcome o = env_.store->update_rollout(run.rec, finished && run.state.promoted, audit);
    if (o.ok()) break;
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
  run.last_persist_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
}

void Controller::flush() {
  for (auto& [route, run] : runs_)
    if (run->dirty && !run->state.terminal()) persist(*run, false, nullptr);
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
            (held_ ? ",\"held\":\"by the kill.rollouts switch\"}" : "}");
    return json;
  }
  auto all = env_.store->list_rollouts(route, false);
  if (all.empty()) return "";
  return rollout::status_json(all.back(), env_.store->rollout_events(all.back().id, 0));
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
  o += "# HELP sluice_feedback_unmatched_total Feedback for requests that are not part of a rollout.\n"
       "# TYPE sluice_feedback_unmatched_total counter\nsluice_feedback_unmatched_total " +
       std::to_string(feedback_unmatched_) + "\n";
  return o;
}

}  // namespace sluice::rollout
