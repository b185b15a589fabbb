-- 005: tenants and their API keys as first-class objects (sluice tenant / sluice key), and
-- each tenant's spend per UTC day and month (its budgets survive a restart).
CREATE TABLE tenants (
  name        TEXT PRIMARY KEY,
  spec        TEXT NOT NULL,      -- JSON: limits, tier, budgets, routes (config/tenant_spec)
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  updated_by  TEXT NOT NULL
);
CREATE TABLE api_keys (
  id          TEXT PRIMARY KEY,   -- key_...: how operators name a key (the key itself is never stored)
  tenant      TEXT NOT NULL REFERENCES tenants(name),
  key_sha256  TEXT NOT NULL UNIQUE,
  prefix      TEXT NOT NULL,      -- the key's first characters, to recognise it
  label       TEXT,
  created_at  INTEGER NOT NULL,
  created_by  TEXT NOT NULL,
  expires_at  INTEGER NOT NULL DEFAULT 0,   -- a rotated key's grace end (0: never)
  revoked_at  INTEGER NOT NULL DEFAULT 0,
  revoked_by  TEXT,
  replaced_by TEXT                -- the key that rotated it
);
CREATE INDEX api_keys_tenant ON api_keys(tenant);
CREATE TABLE tenant_spend (
  tenant     TEXT NOT NULL,
  period     TEXT NOT NULL,       -- "2026-11-30" (a UTC day) or "2026-11" (a month)
  micro_usd  INTEGER NOT NULL,
  PRIMARY KEY (tenant, period)
);
-- A key's hash and owner never change; only its expiry and revocation do.
CREATE TRIGGER api_keys_immutable BEFORE UPDATE OF id, tenant, key_sha256, prefix, created_at, created_by ON api_keys
BEGIN SELECT RAISE(ABORT, 'an API key''s identity cannot be changed'); END;
CREATE TRIGGER api_keys_no_delete BEFORE DELETE ON api_keys
BEGIN SELECT RAISE(ABORT, 'API keys are revoked, never deleted'); END;
