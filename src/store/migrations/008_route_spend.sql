-- 008: money spent per UTC day by route, release and tenant (cost per request, spend per
-- day and its week-over-week trend on the dashboard and in alarms). Written behind the data
-- plane once a second; rows only grow.
CREATE TABLE route_spend (
  day        TEXT NOT NULL,       -- "2026-11-30" (UTC)
  route      TEXT NOT NULL,       -- "" for pass-through requests
  release    TEXT NOT NULL,       -- "" for routes without releases
  tenant     TEXT NOT NULL,       -- "" without tenants
  micro_usd  INTEGER NOT NULL,
  requests   INTEGER NOT NULL,
  PRIMARY KEY (day, route, release, tenant)
);
