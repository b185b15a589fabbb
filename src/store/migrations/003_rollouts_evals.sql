-- 003: rollouts (a state machine per route, at most one active), their commands and event
-- timeline; eval runs and the release they passed for.
CREATE TABLE rollouts (
  id                TEXT PRIMARY KEY,        -- ro_ + 12 hex
  route             TEXT NOT NULL,
  stable_release    TEXT NOT NULL REFERENCES releases(id),
  candidate_release TEXT NOT NULL REFERENCES releases(id),
  spec              TEXT NOT NULL,           -- the rollout spec as JSON
  state             TEXT NOT NULL,           -- controller state and evidence as JSON
  status            TEXT NOT NULL,           -- active | completed | aborted
  version           INTEGER NOT NULL,        -- bumped on every write (compare-and-set)
  created_by        TEXT NOT NULL,
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL
);
CREATE UNIQUE INDEX rollouts_one_active_per_route ON rollouts(route) WHERE status = 'active';
CREATE TABLE rollout_commands (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  rollout_id TEXT NOT NULL REFERENCES rollouts(id),
  command    TEXT NOT NULL,                  -- promote | pause | resume | abort | approve
  actor      TEXT NOT NULL,
  reason     TEXT,
  at         INTEGER NOT NULL,
  applied_at INTEGER                         -- set by the controller that applied it
);
CREATE INDEX rollout_commands_pending ON rollout_commands(rollout_id, seq) WHERE applied_at IS NULL;
CREATE TABLE rollout_events (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  rollout_id TEXT NOT NULL REFERENCES rollouts(id),
  at         INTEGER NOT NULL,
  kind       TEXT NOT NULL,                  -- step | decision | rollback | ...
  detail     TEXT NOT NULL                   -- JSON with the numbers behind it
);
CREATE INDEX rollout_events_by_rollout ON rollout_events(rollout_id, seq);
CREATE TABLE eval_runs (
  id          TEXT PRIMARY KEY,              -- ev_ + 12 hex
  route       TEXT NOT NULL,
  release     TEXT NOT NULL REFERENCES releases(id),
  baseline    TEXT,
  suite_name  TEXT NOT NULL,
  suite_hash  TEXT NOT NULL,
  passed      INTEGER NOT NULL,
  summary     TEXT NOT NULL,                 -- JSON report
  created_by  TEXT NOT NULL,
  created_at  INTEGER NOT NULL
);
CREATE INDEX eval_runs_by_release ON eval_runs(release, created_at);
CREATE TRIGGER eval_runs_immutable BEFORE UPDATE ON eval_runs
  BEGIN SELECT RAISE(ABORT, 'eval runs are immutable'); END;
