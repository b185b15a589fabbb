-- PostgreSQL: the schema of SQLite migrations 001 to 009 in one step (version 9). A later
-- migration NNN adds migrations/NNN_name.sql and migrations/pg/NNN_name.sql together.
CREATE FUNCTION sluice_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $$;

CREATE TABLE blobs (
  sha256   TEXT PRIMARY KEY,
  content  BYTEA NOT NULL
);
CREATE TABLE releases (
  id           TEXT PRIMARY KEY,
  full_hash    TEXT NOT NULL UNIQUE,
  route        TEXT NOT NULL,
  tuple        TEXT NOT NULL,
  created_by   TEXT NOT NULL,
  created_at   BIGINT NOT NULL,
  parent       TEXT,
  git_commit   TEXT,
  eval_pass_id TEXT
);
CREATE INDEX releases_by_route ON releases(route, created_at);
-- Releases are immutable: only eval_pass_id may be set later; no delete, no truncate.
CREATE TRIGGER releases_immutable_update BEFORE UPDATE ON releases FOR EACH ROW
  WHEN (NEW.id IS DISTINCT FROM OLD.id OR NEW.tuple IS DISTINCT FROM OLD.tuple
        OR NEW.full_hash IS DISTINCT FROM OLD.full_hash OR NEW.route IS DISTINCT FROM OLD.route
        OR NEW.created_by IS DISTINCT FROM OLD.created_by OR NEW.created_at IS DISTINCT FROM OLD.created_at)
  EXECUTE FUNCTION sluice_refuse('releases are immutable');
CREATE TRIGGER releases_immutable_delete BEFORE DELETE ON releases FOR EACH ROW
  EXECUTE FUNCTION sluice_refuse('releases are immutable');
CREATE TRIGGER releases_immutable_truncate BEFORE TRUNCATE ON releases FOR EACH STATEMENT
  EXECUTE FUNCTION sluice_refuse('releases are immutable');

CREATE TABLE routes (
  name           TEXT PRIMARY KEY,
  stable_release TEXT NOT NULL REFERENCES releases(id),
  updated_at     BIGINT NOT NULL
);
CREATE TABLE route_history (
  seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  route      TEXT NOT NULL,
  release    TEXT NOT NULL,
  previous   TEXT,
  action     TEXT NOT NULL,
  actor      TEXT NOT NULL,
  reason     TEXT,
  at         BIGINT NOT NULL
);
CREATE INDEX route_history_by_route ON route_history(route, seq);

CREATE TABLE audit (
  seq      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at       BIGINT NOT NULL,
  actor    TEXT NOT NULL,
  action   TEXT NOT NULL,
  target   TEXT,
  before   TEXT,
  after    TEXT,
  reason   TEXT,
  outcome  TEXT NOT NULL
);
CREATE INDEX audit_at ON audit(at);
CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit FOR EACH ROW
  EXECUTE FUNCTION sluice_refuse('the audit log is append-only');
CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit FOR EACH ROW
  EXECUTE FUNCTION sluice_refuse('the audit log is append-only');
CREATE TRIGGER audit_append_only_truncate BEFORE TRUNCATE ON audit FOR EACH STATEMENT
  EXECUTE FUNCTION sluice_refuse('the audit log is append-only');

CREATE TABLE rollouts (
  id                TEXT PRIMARY KEY,
  route             TEXT NOT NULL,
  stable_release    TEXT NOT NULL REFERENCES releases(id),
  candidate_release TEXT NOT NULL REFERENCES releases(id),
  spec              TEXT NOT NULL,
  state             TEXT NOT NULL,
  status            TEXT NOT NULL,
  version           BIGINT NOT NULL,
  created_by        TEXT NOT NULL,
  created_at        BIGINT NOT NULL,
  updated_at        BIGINT NOT NULL
);
CREATE UNIQUE INDEX rollouts_one_active_per_route ON rollouts(route) WHERE status = 'active';
CREATE TABLE rollout_commands (
  seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  rollout_id TEXT NOT NULL REFERENCES rollouts(id),
  command    TEXT NOT NULL,
  actor      TEXT NOT NULL,
  reason     TEXT,
  at         BIGINT NOT NULL,
  applied_at BIGINT
);
CREATE INDEX rollout_commands_pending ON rollout_commands(rollout_id, seq) WHERE applied_at IS NULL;
CREATE TABLE rollout_events (
  seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  rollout_id TEXT NOT NULL REFERENCES rollouts(id),
  at         BIGINT NOT NULL,
  kind       TEXT NOT NULL,
  detail     TEXT NOT NULL
);
CREATE INDEX rollout_events_by_rollout ON rollout_events(rollout_id, seq);

CREATE TABLE eval_runs (
  id          TEXT PRIMARY KEY,
  route       TEXT NOT NULL,
  release     TEXT NOT NULL REFERENCES releases(id),
  baseline    TEXT,
  suite_name  TEXT NOT NULL,
  suite_hash  TEXT NOT NULL,
  passed      BIGINT NOT NULL,
  summary     TEXT NOT NULL,
  created_by  TEXT NOT NULL,
  created_at  BIGINT NOT NULL
);
CREATE INDEX eval_runs_by_release ON eval_runs(release, created_at);
CREATE TRIGGER eval_runs_immutable BEFORE UPDATE ON eval_runs FOR EACH ROW
  EXECUTE FUNCTION sluice_refuse('eval runs are immutable');

CREATE TABLE route_policies (
  route                  TEXT PRIMARY KEY,
  require_approval_above DOUBLE PRECISION,
  eval_suite             TEXT,
  updated_by             TEXT NOT NULL,
  updated_at             BIGINT NOT NULL
);

CREATE TABLE tenants (
  name        TEXT PRIMARY KEY,
  spec        TEXT NOT NULL,
  created_at  BIGINT NOT NULL,
  updated_at  BIGINT NOT NULL,
  updated_by  TEXT NOT NULL
);
CREATE TABLE api_keys (
  id          TEXT PRIMARY KEY,
  tenant      TEXT NOT NULL REFERENCES tenants(name),
  key_sha256  TEXT NOT NULL UNIQUE,
  prefix      TEXT NOT NULL,
  label       TEXT,
  created_at  BIGINT NOT NULL,
  created_by  TEXT NOT NULL,
  expires_at  BIGINT NOT NULL DEFAULT 0,
  revoked_at  BIGINT NOT NULL DEFAULT 0,
  revoked_by  TEXT,
  replaced_by TEXT
);
CREATE INDEX api_keys_tenant ON api_keys(tenant);
CREATE TRIGGER api_keys_immutable BEFORE UPDATE OF id, tenant, key_sha256, prefix, created_at, created_by ON api_keys
  FOR EACH ROW EXECUTE FUNCTION sluice_refuse('an API key''s identity cannot be changed');
CREATE TRIGGER api_keys_no_delete BEFORE DELETE ON api_keys FOR EACH ROW
  EXECUTE FUNCTION sluice_refuse('API keys are revoked, never deleted');
CREATE TABLE tenant_spend (
  tenant     TEXT NOT NULL,
  period     TEXT NOT NULL,
  micro_usd  BIGINT NOT NULL,
  PRIMARY KEY (tenant, period)
);

CREATE TABLE stored_responses (
  tenant      TEXT NOT NULL,
  id          TEXT NOT NULL,
  body        TEXT NOT NULL,
  expires_at  BIGINT NOT NULL,
  PRIMARY KEY (tenant, id)
);
CREATE INDEX stored_responses_expiry ON stored_responses(expires_at);

CREATE TABLE flags (
  key         TEXT PRIMARY KEY,
  definition  TEXT NOT NULL,
  created_at  BIGINT NOT NULL,
  updated_at  BIGINT NOT NULL,
  updated_by  TEXT NOT NULL,
  version     BIGINT NOT NULL
);

CREATE TABLE route_spend (
  day        TEXT NOT NULL,
  route      TEXT NOT NULL,
  release    TEXT NOT NULL,
  tenant     TEXT NOT NULL,
  micro_usd  BIGINT NOT NULL,
  requests   BIGINT NOT NULL,
  PRIMARY KEY (day, route, release, tenant)
);

CREATE TABLE events (
  seq      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at       BIGINT NOT NULL,
  kind     TEXT NOT NULL,
  route    TEXT NOT NULL,
  subject  TEXT NOT NULL,
  summary  TEXT NOT NULL,
  detail   TEXT NOT NULL
);
CREATE INDEX events_at ON events(at);

-- The change feed's safety net: every commit a snapshot shows bumps it (and NOTIFYs
-- sluice_changes); a replica that missed notifications sees the number move.
CREATE TABLE change_seq (
  id  INTEGER PRIMARY KEY CHECK (id = 1),
  seq BIGINT NOT NULL
);
INSERT INTO change_seq VALUES (1, 0);
