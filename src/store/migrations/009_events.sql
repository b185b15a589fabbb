-- 009: the incident timeline's own events: what the data plane only recorded in memory
-- (upstream breaker changes and ejections) and the control thread's config reloads,
-- written behind by the control thread about once a second (src/incident/).
CREATE TABLE events (
  seq      INTEGER PRIMARY KEY AUTOINCREMENT,
  at       INTEGER NOT NULL,   -- unix ms, when it happened (not when it was written)
  kind     TEXT NOT NULL,      -- breaker.open | breaker.half_open | breaker.closed | config.reload | ...
  route    TEXT NOT NULL,      -- "" when it is not about one route
  subject  TEXT NOT NULL,      -- what it is about: an upstream's name, a config file...
  summary  TEXT NOT NULL,      -- one line for humans
  detail   TEXT NOT NULL       -- JSON object with the numbers behind it
);
CREATE INDEX events_at ON events(at);
CREATE INDEX audit_at ON audit(at);
