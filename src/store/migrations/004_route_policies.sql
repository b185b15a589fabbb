-- 004: per-route rollout policy (approvals, the eval suite a candidate must pass) set by operators, applied to every rollout of the route
-- (a spec cannot weaken it).
CREATE TABLE route_policies (
  route                  TEXT PRIMARY KEY,
  require_approval_above REAL,              -- percent; above 100 = no requirement
  eval_suite             TEXT,              -- a rollout needs a passing eval run of this suite
  updated_by             TEXT NOT NULL,
  updated_at             INTEGER NOT NULL
);
