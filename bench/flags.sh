#!/usr/bin/env bash
# bench/flags.sh: what a flag evaluation costs (issue 13). Server-side OFREP providers make one
# HTTP call per evaluation, so both matter:
#   1. in process: ns per evaluation of each flag of a flag file, sluice (`flag eval --repeat`)
#      side by side with @openfeature/flagd-core (the JavaScript evaluator flagd's in-process
#      providers use), same flags, same context;
#   2. through the endpoint: one request at a time on a kept-alive connection, p50/p99 of
#      POST /ofrep/v1/evaluate/flags/{key} against GET /healthz on the same gateway (the added
#      latency of an evaluation is the difference), and the bulk evaluation.
#   bench/flags.sh [--requests N] [--runs R] [--sluice PATH]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
. bench/lib.sh
bench_args flags.sh "$@"
[ "$N" = 40000 ] && N=20000
command -v node >/dev/null || { echo "flags.sh: node is needed" >&2; exit 2; }
[ -d tests/integration/node_modules/@openfeature/flagd-core ] || { echo "flags.sh: run npm ci in tests/integration" >&2; exit 2; }

cat > "$W/flags.json" <<'JSON'
{"$evaluators": {"paying": {"in": [{"var": "plan"}, ["pro", "team"]]}},
 "flags": {
  "static-bool": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
  "tenant-rule": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
    "targeting": {"if": [{"==": [{"var": "tenant"}, "acme"]}, "on", {"$ref": "paying"}, "on", null]}},
  "split": {"state": "ENABLED", "variants": {"a": "a", "b": "b", "c": "c"}, "defaultVariant": "a",
    "targeting": {"fractional": [["a", 50], ["b", 30], ["c", 20]]}},
  "semver": {"state": "ENABLED", "variants": {"new": 2, "old": 1}, "defaultVariant": "old",
    "targeting": {"if": [{"sem_ver": [{"var": "version"}, ">=", "2.1.0"]}, "new", null]}},
  "email-cohort": {"state": "ENABLED", "variants": {"in": true, "out": false}, "defaultVariant": "out",
    "targeting": {"if": [{"and": [{"ends_with": [{"var": "email"}, "@example.com"]}, {"in": [{"var": "country"}, ["de", "fr", "nl"]]}]}, "in", "out"]}}
 }}
JSON
CTX='{"targetingKey":"user-42","tenant":"beta","plan":"pro","version":"2.3.1","email":"jo@example.com","country":"fr"}'

echo "== 1. in process: ns per evaluation (median of $RUNS runs of 200000)"
for r in $(seq "$RUNS"); do
  "$SLUICE" flag eval "$W/flags.json" --context "$CTX" --repeat 200000 > "$W/sluice.$r"
done
cat > "$W/core.mjs" <<'JS'
import { FlagdCore } from '@openfeature/flagd-core';
import { readFileSync } from 'node:fs';
const [file, ctxText, n] = process.argv.slice(2);
const core = new FlagdCore();
core.setConfigurations(readFileSync(file, 'utf8'));
const ctx = JSON.parse(ctxText);
for (const [key, flag] of core.getFlags()) {
  const type = typeof flag.variants.values().next().value;
  for (let i = 0; i < 20000; i++) core.resolve(type, key, undefined, ctx);  // warm the JIT
  const t0 = process.hrtime.bigint();
  let sink = 0;
  for (let i = 0; i < Number(n); i++) sink += String(core.resolve(type, key, undefined, ctx).variant).length;
  const ns = Number(process.hrtime.bigint() - t0) / Number(n);
  console.log(JSON.stringify({ key, ns_per_evaluation: ns, check: sink }));
}
JS
cp "$W/core.mjs" tests/integration/.bench-flags-core.mjs
trap 'rm -f "$ROOT/tests/integration/.bench-flags-core.mjs"; cleanup' EXIT
for r in $(seq "$RUNS"); do
  node tests/integration/.bench-flags-core.mjs "$W/flags.json" "$CTX" 200000 > "$W/core.$r"
done
python3 - "$W" "$RUNS" <<'PY'
import json, statistics, sys
w, runs = sys.argv[1], int(sys.argv[2])
def load(prefix):
    out = {}
    for r in range(1, runs + 1):
        for line in open(f"{w}/{prefix}.{r}"):
            d = json.loads(line); out.setdefault(d["key"], []).append(d["ns_per_evaluation"])
    return {k: statistics.median(v) for k, v in out.items()}
s, c = load("sluice"), load("core")
print(f"| flag | sluice ns | flagd-core ns | sluice / flagd-core |")
print(f"|---|---|---|---|")
for k in s:
    print(f"| {k} | {s[k]:.0f} | {c[k]:.0f} | {s[k]/c[k]:.2f}x |")
PY

echo
echo "== 2. through the endpoint: one request at a time, $N requests per run, $RUNS runs"
cat > "$W/gateway.yaml" <<YAML
upstreams: [{name: none, url: "http://127.0.0.1:9/v1"}]
api_keys: [{tenant: beta, key_sha256: "$(printf %s sk-bench | sha256sum | cut -d' ' -f1)"}]
YAML
start_gateway "$SLUICE" --config "$W/gateway.yaml"
"$SLUICE" flag import "$W/flags.json" --data-dir "$W/data" --reason bench >/dev/null
sleep 0.2
python3 - "$GP" "$N" "$RUNS" "$CTX" <<'PY'
import http.client, json, statistics, sys, time
port, n, runs, ctx = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
body = json.dumps({"context": json.loads(ctx)})
hdr = {"authorization": "Bearer sk-bench", "content-type": "application/json"}
def run(method, path, payload):
    c = http.client.HTTPConnection("127.0.0.1", port)
    lat = []
    for i in range(n + 500):
        t = time.perf_counter_ns()
        c.request(method, path, body=payload, headers=hdr)
        r = c.getresponse(); r.read()
        if r.status not in (200, 304): raise SystemExit(f"{path}: {r.status}")
        if i >= 500: lat.append((time.perf_counter_ns() - t) / 1000)
    c.close()
    lat.sort()
    return lat[len(lat) // 2], lat[int(len(lat) * 0.99)]
rows = {"GET /healthz": [], "OFREP one flag (split)": [], "OFREP one flag (tenant-rule)": [], "OFREP bulk (5 flags)": []}
for _ in range(runs):
    rows["GET /healthz"].append(run("GET", "/healthz", None))
    rows["OFREP one flag (split)"].append(run("POST", "/ofrep/v1/evaluate/flags/split", body))
    rows["OFREP one flag (tenant-rule)"].append(run("POST", "/ofrep/v1/evaluate/flags/tenant-rule", body))
    rows["OFREP bulk (5 flags)"].append(run("POST", "/ofrep/v1/evaluate/flags", body))
base50 = statistics.median(r[0] for r in rows["GET /healthz"])
base99 = statistics.median(r[1] for r in rows["GET /healthz"])
print("| request | p50 us | p99 us | added p50 us | added p99 us |")
print("|---|---|---|---|---|")
for k, v in rows.items():
    p50 = statistics.median(r[0] for r in v); p99 = statistics.median(r[1] for r in v)
    print(f"| {k} | {p50:.1f} | {p99:.1f} | {p50 - base50:+.1f} | {p99 - base99:+.1f} |")
PY
