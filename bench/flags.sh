#!/usr/bin/env bash
# bench/flags.sh: what a flag evaluation costs (issue 13). Server-side OFREP providers make one
# HTTP call per evaluation, so both matter:
#   1. in process: ns per evaluation of each flag of a flag file, sluice (`flag eval --repeat`)
#      side by side with @openfeature/flagd-core (the JavaScript evaluator flagd's in-process
#      providers use), same flags, same context;
#   2. through the endpoint: one request at a time on a kept-alive connection (h2load), p50/p99 of
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
command -v h2load >/dev/null || { echo "flags.sh: h2load (nghttp2-client) is needed" >&2; exit 2; }
printf '{"context": %s}' "$CTX" > "$W/body.json"
# h2load, one connection, one request at a time; --log-file gives each request's latency.
one() {  # NAME RUN [h2load args...]
  local name="$1" run="$2"; shift 2
  h2load --h1 -n "$N" -c 1 -m 1 --warm-up-time 1 --log-file "$W/lat.$name.$run" "$@" > "$W/h2load.$name.$run" 2>&1
}
AUTH=(-H 'authorization: Bearer sk-bench' -H 'content-type: application/json' -d "$W/body.json")
for r in $(seq "$RUNS"); do
  one healthz "$r" "http://127.0.0.1:$GP/healthz"
  one notfound "$r" "${AUTH[@]}" "http://127.0.0.1:$GP/ofrep/v1/evaluate/flags/nope"
  one split "$r" "${AUTH[@]}" "http://127.0.0.1:$GP/ofrep/v1/evaluate/flags/split"
  one rule "$r" "${AUTH[@]}" "http://127.0.0.1:$GP/ofrep/v1/evaluate/flags/tenant-rule"
  one bulk "$r" "${AUTH[@]}" "http://127.0.0.1:$GP/ofrep/v1/evaluate/flags"
done
python3 - "$W" "$RUNS" <<'PY'
import statistics, sys
w, runs = sys.argv[1], int(sys.argv[2])
names = [("healthz", "GET /healthz"), ("notfound", "OFREP unknown flag (404: auth and parse, no evaluation)"),
         ("split", "OFREP one flag (split)"), ("rule", "OFREP one flag (tenant-rule)"), ("bulk", "OFREP bulk (5 flags)")]
def pct(name):
    p50s, p99s = [], []
    for r in range(1, runs + 1):
        lat = sorted(int(l.split("\t")[2]) for l in open(f"{w}/lat.{name}.{r}") if l.strip())
        p50s.append(lat[len(lat) // 2]); p99s.append(lat[int(len(lat) * 0.99)])
    return statistics.median(p50s), statistics.median(p99s)
base = pct("healthz")
print("| request | p50 us | p99 us | added p50 us (vs /healthz) | added p99 us |")
print("|---|---|---|---|---|")
for key, label in names:
    p50, p99 = pct(key)
    print(f"| {label} | {p50:.0f} | {p99:.0f} | {p50 - base[0]:+.0f} | {p99 - base[1]:+.0f} |")
PY
