-- 010: what several replicas sharing one store need (issue 15). change_seq already exists
-- here (009).
-- leases: one holder at a time (the rollout controller). Every take-over raises the token;
-- writes fenced by an older token are refused.
CREATE TABLE leases (
  name        TEXT PRIMARY KEY,
  holder      TEXT NOT NULL,
  token       BIGINT NOT NULL,
  expires_ms  BIGINT NOT NULL,
  acquired_ms BIGINT NOT NULL
);
-- rollout_evidence: each replica's own per-arm sufficient statistics of a rollout (cumulative,
-- replaced as it grows); the controller merges every replica's row.
CREATE TABLE rollout_evidence (
  rollout_id TEXT NOT NULL REFERENCES rollouts(id),
  replica    TEXT NOT NULL,
  evidence   TEXT NOT NULL,
  updated_ms BIGINT NOT NULL,
  PRIMARY KEY (rollout_id, replica)
);
