// rollout/controller.hpp: runs the active rollouts inside `sluice serve`, on the control
// thread. Every tick (20 ms) it drains the workers' samples into each rollout's evidence,
// applies operators' commands, advances the state machine and carries out its decisions:
// weights change with one atomic store (all workers see it on their next request), the
// state is persisted (so a restart resumes at the same step with the same evidence),
// events and audit entries are written, and webhooks are called from their own thread.
#pragma once
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "config/snapshot.hpp"
#include "control/releases.hpp"
#include "rollout/machine.hpp"
#include "rollout/sink.hpp"
#include "store/store.hpp"

namespace sluice::rollout {

struct ControllerEnv {
  store::Store* store = nullptr;
  Sink* sink = nullptr;
  std::function<void()> republish;  // the set of rollouts (bindings) changed
  // Blue-green warm-up of a release: "" when healthy. Runs on a helper thread.
  std::function<std::string(const std::string& release_id, const std::vector<std::string>& smoke)> warm;
  std::function<void(const std::string&)> log;  // one line for the operator (stderr)
  // Several replicas share the store: the one holding the controller lease drives every
  // rollout (decisions, commands, state); the others follow the stored state and publish
  // their own evidence, which the leader merges. `replica`: this process, unique
  // ("host/pid/random"). lease_ms: how long a silent leader keeps the lease (it renews it
  // every lease_ms / 5); 0 disables the lease (this process always drives, tests only).
  std::string replica = "local";
  int64_t lease_ms = 5000;
};

// The lease every replica's controller competes for.
inline constexpr const char* kControllerLease = "rollout-controller";

class Controller {
 public:
  explicit Controller(ControllerEnv env);
  ~Controller();

  // Loads active rollouts and applies queued commands (call at start and on store changes).
  void reload();
  // Drains samples, advances every rollout, persists what changed. `now_ms` is wall time.
  void tick(int64_t now_ms);
  // Persists every rollout's state and this replica's evidence, and gives up the lease so
  // another replica takes over at once (before a shutdown).
  void flush();
  // This replica drives the rollouts (holds the lease); token: the lease's fencing token.
  bool leader() const { return leader_; }
  int64_t token() const { return fence_.token; }
  // A `kill.rollouts` switch: while held, every running rollout stays where it is (its weight,
  // its step; no gate decides) and evidence keeps accumulating.
  void set_held(bool held) { held_ = held; }
  bool held() const { return held_; }

  // Routes with a rollout in progress, for snapshot bindings.
  std::vector<config::RouteBinding> bindings(const std::vector<config::RouteBinding>& stable) const;
  // Admin API: applies a command through the store, then at once.
  control::Result command(const std::string& route, const std::string& cmd, const std::string& actor,
                          const std::string& reason);
  std::string status_json(const std::string& route);  // "" when the route never had a rollout
  std::string prometheus() const;
  // {"replica","leader","holder","token"}: who drives the rollouts.
  std::string controller_json() const;
  // Feedback on a request: false when the request is not part of a rollout (or too old).
  uint64_t feedback_unmatched() const { return feedback_unmatched_; }

 private:
  struct Run;
  void load(const store::RolloutRecord& r);
  // Takes, renews or loses the lease (every lease_ms / 5); on taking it over, re-reads every
  // run's stored state so the new leader resumes where the last one persisted.
  void lead(int64_t now_ms);
  void step_down(const std::string& why);
  void follow(Run& run, const store::RolloutRecord& r);  // a follower takes the stored state
  void publish_evidence(Run& run, int64_t now_ms);      // this replica's own evidence row
  void merge_evidence(Run& run, int64_t now_ms);        // the leader: own + every other replica's
  void handle(Run& run, Decision d, int64_t now_ms);
  // Writes the state (and, in the same transaction, `events` and `audit`), fenced by the
  // lease; false when fenced (this replica stepped down).
  bool persist(Run& run, bool finished, const store::AuditEntry* audit,
               std::vector<store::RolloutEvent>* events = nullptr);
  void notify(const Run& run, const Event& e);
  void apply_commands(Run& run, int64_t now_ms);
  void report_settled(Run& run);         // the rollback_settled event, 1 s after a rollback
  void retire(std::unique_ptr<Run> run);  // a run that left runs_ (finished or replaced)
  void webhook_loop();

  ControllerEnv env_;
  std::map<std::string, std::unique_ptr<Run>> runs_;  // by route
  std::unordered_map<std::string, Run*> by_id_;  // every run in runs_ and settling_
  // Rolled-back runs replaced in runs_ by the route's next rollout before their
  // rollback_settled report (issue 17: by_id_ used to keep a dangling pointer to them).
  std::vector<std::unique_ptr<Run>> settling_;
  // Recent live requests of rollouts, for feedback: request key -> (rollout id, candidate?)
  std::unordered_map<uint64_t, std::pair<std::string, bool>> recent_;
  std::deque<uint64_t> recent_order_;
  static constexpr size_t kRecent = 200000;
  uint64_t feedback_unmatched_ = 0;
  int64_t last_reload_ms_ = 0;
  bool held_ = false;
  bool leader_ = false;
  store::Fence fence_{kControllerLease, 0};
  int64_t next_lease_ms_ = 0;        // when to renew or try again (unix ms)
  int64_t leader_until_ns_ = 0;      // steady time: lead no longer than this without a renewal
  std::string holder_;               // the lease's holder as last seen

  // Warm-up results, written by helper threads.
  std::mutex warm_mu_;
  std::vector<std::pair<std::string, std::string>> warm_done_;  // rollout id, error
  std::vector<std::thread> warm_threads_;

  // Webhooks: a queue served by one thread, retried with backoff.
  std::mutex hook_mu_;
  std::condition_variable hook_cv_;
  std::deque<std::pair<std::string, std::string>> hooks_;  // url, body
  bool stopping_ = false;
  std::thread hook_thread_;
};

}  // namespace sluice::rollout
