-- 001: releases and their blobs, routes with their history of stable releases, audit log.
CREATE TABLE blobs (
  sha256   TEXT PRIMARY KEY,
  content  BLOB NOT NULL
);
CREATE TABLE releases (
  id           TEXT PRIMARY KEY,            -- rel_ + 8 hex of full_hash
  full_hash    TEXT NOT NULL UNIQUE,
  route        TEXT NOT NULL,
  tuple        TEXT NOT NULL,               -- canonical JSON that was hashed
  created_by   TEXT NOT NULL,
  created_at   INTEGER NOT NULL,            -- unix ms
  parent       TEXT,
  git_commit   TEXT,
  eval_pass_id TEXT
);
CREATE INDEX releases_by_route ON releases(route, created_at);
CREATE TABLE routes (
  name           TEXT PRIMARY KEY,
  stable_release TEXT NOT NULL REFERENCES releases(id),
  updated_at     INTEGER NOT NULL
);
CREATE TABLE route_history (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  route      TEXT NOT NULL,
  release    TEXT NOT NULL,
  previous   TEXT,
  action     TEXT NOT NULL,                 -- promote | rollback
  actor      TEXT NOT NULL,
  reason     TEXT,
  at         INTEGER NOT NULL
);
CREATE INDEX route_history_by_route ON route_history(route, seq);
CREATE TABLE audit (
  seq      INTEGER PRIMARY KEY AUTOINCREMENT,
  at       INTEGER NOT NULL,
  actor    TEXT NOT NULL,
  action   TEXT NOT NULL,
  target   TEXT,
  before   TEXT,
  after    TEXT,
  reason   TEXT,
  outcome  TEXT NOT NULL                    -- ok | denied | unauthenticated | error
);
-- Releases are immutable: the store refuses updates and deletes.
CREATE TRIGGER releases_immutable_update BEFORE UPDATE ON releases
  WHEN NEW.id = OLD.id AND (NEW.tuple IS NOT OLD.tuple OR NEW.full_hash IS NOT OLD.full_hash OR NEW.route IS NOT OLD.route)
  BEGIN SELECT RAISE(ABORT, 'releases are immutable'); END;
CREATE TRIGGER releases_immutable_delete BEFORE DELETE ON releases
  BEGIN SELECT RAISE(ABORT, 'releases are immutable'); END;
CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
