-- 010: what several replicas sharing one store need (issue 15).
-- change_seq: bumped by every write the snapshot shows (not bookkeeping such as spend,
-- events or rollout evidence), so a replica republishes only when something it serves changed.
CREATE TABLE change_seq (
  id  INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL
);
INSERT INTO change_seq VALUES (1, 0);
-- leases: one holder at a time (the rollout controller). Every take-over raises the token;
-- writes fenced by an older token are refused.
CREATE TABLE leases (
  name        TEXT PRIMARY KEY,
  holder      TEXT NOT NULL,
  token       INTEGER NOT NULL,
  expires_ms  INTEGER NOT NULL,   -- unix ms
  acquired_ms INTEGER NOT NULL    -- when this holder took it (unix ms)
);
-- rollout_evidence: each replica's own per-arm sufficient statistics of a rollout (cumulative,
-- replaced as it grows); the controller merges every replica's row.
CREATE TABLE rollout_evidence (
  rollout_id TEXT NOT NULL REFERENCES rollouts(id),
  replica    TEXT NOT NULL,
  evidence   TEXT NOT NULL,       -- {"live":{...},"shadow":{...}}
  updated_ms INTEGER NOT NULL,
  PRIMARY KEY (rollout_id, replica)
);
