-- 011: evidence that travels between environments (issue 19).
-- eval_runs.environment: "" for a run made against this store's own gateway, else the
-- environment named by the release bundle the run was imported from.
ALTER TABLE eval_runs ADD COLUMN environment TEXT NOT NULL DEFAULT '';
-- route_policies: a rollout of the route needs passing runs from this environment (of these
-- suites, comma-separated; empty: any) besides the route's own eval gate.
ALTER TABLE route_policies ADD COLUMN evidence_environment TEXT NOT NULL DEFAULT '';
ALTER TABLE route_policies ADD COLUMN evidence_suites TEXT NOT NULL DEFAULT '';
