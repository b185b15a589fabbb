-- 007: feature flags in flagd's format (sluice flag / sluice kill): one row per flag, its
-- canonical definition (the object under flags.KEY of a flag file). `version` counts the
-- writes of a flag (1 when created); a write names the version it replaces, so concurrent
-- edits never lose one another silently.
CREATE TABLE flags (
  key         TEXT PRIMARY KEY,
  definition  TEXT NOT NULL,      -- JSON: state, variants, defaultVariant, targeting, metadata
  created_at  INTEGER NOT NULL,   -- unix ms
  updated_at  INTEGER NOT NULL,
  updated_by  TEXT NOT NULL,
  version     INTEGER NOT NULL
);
