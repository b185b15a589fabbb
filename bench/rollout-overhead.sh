#!/usr/bin/env bash
# bench/rollout-overhead.sh: what a running rollout costs on the hot path. One gateway, one
# fast upstream (mock-llm, 1-token answers), two release routes with the same content:
#   quiet  - served by its stable release
#   canary - the same, with a canary at 5 % (sticky assignment, answer capture, refusal and
#            schema checks, a sample per request to the controller, the candidate's body copy)
# Gateway CPU per request and saturation throughput, interleaved runs, medians, ratio.
#
#   bench/rollout-overhead.sh [--runs N] [--requests N] [--sluice PATH]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
source "$HERE/lib.sh"
bench_args rollout-overhead.sh "$@"
mkdir -p "$W/data" "$W/rel"
for route in quiet canary; do
  for v in 1 2; do
    cat > "$W/rel/$route-$v.yaml" <<R
route: $route
model: {upstream: mock, id: mock-model-v$v}
params: {temperature: 0, max_tokens: 16}
R
  done
  S=$("$SLUICE" release create "$W/rel/$route-1.yaml" --data-dir "$W/data")
  "$SLUICE" route promote "$route" "$S" --data-dir "$W/data" >/dev/null
done
C=$("$SLUICE" release create "$W/rel/canary-2.yaml" --data-dir "$W/data")
cat > "$W/spec.yaml" <<'Y'
strategy: canary
steps: [{setWeight: 5}, {pause: 24h}, {setWeight: 100}]
gates: [{check: "error_rate <= stable + 0.01", min_samples: 100}]
Y
"$SLUICE" rollout start canary --to "$C" --spec "$W/spec.yaml" --override --reason bench --data-dir "$W/data" >/dev/null
start_pair "$SLUICE"
for route in quiet canary; do
  printf '{"model":"%s","messages":[{"role":"user","content":"Say hi"}]}' "$route" > "$W/$route.json"
done
sleep 0.3
curl -s -H "Authorization: Bearer $(cat "$W/data/admin.token")" "http://127.0.0.1:$AP/admin/v1/rollouts/canary" \
  | grep -q '"weight":5' || { echo "rollout-overhead.sh: the canary is not running" >&2; exit 1; }

RPS_A=(); RPS_B=(); CPU_A=(); CPU_B=()
measure quiet; measure canary  # warm-up
for i in $(seq "$RUNS"); do
  measure quiet; RPS_A+=("$LAST_RPS"); CPU_A+=("$LAST_CPU")
  measure canary; RPS_B+=("$LAST_RPS"); CPU_B+=("$LAST_CPU")
done
compare_report quiet canary "release route" "same, canary at 5 %"
