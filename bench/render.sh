#!/usr/bin/env bash
# bench/render.sh: the cost of releases on the hot path. One gateway, one fast upstream
# (mock-llm, 1-token answers), two routes to the same upstream model:
#   plain    - a config route (model rewrite only)
#   tutor    - a release route: pinned model, a system prompt rendered from a variable,
#              pinned params, the `vars` member removed
# Saturation throughput of each with h2load, interleaved runs, median; prints the ratio.
#
#   bench/render.sh [--runs N] [--requests N] [--sluice PATH]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
source "$HERE/lib.sh"
bench_args render.sh "$@"
mkdir -p "$W/data" "$W/rel"
cat > "$W/rel/prompt.yaml" <<'P'
system: "You are a concise assistant for the {{team}} team. Answer in one sentence."
P
cat > "$W/rel/release.yaml" <<'R'
route: tutor
model: {upstream: mock, id: mock-model-2024}
prompt: {file: prompt.yaml, mode: prepend_system}
params: {temperature: 0, max_tokens: 16}
R
REL=$("$SLUICE" release create "$W/rel/release.yaml" --data-dir "$W/data" | cut -d' ' -f1)
"$SLUICE" route promote tutor "$REL" --data-dir "$W/data" >/dev/null
cat > "$W/gw.yaml" <<'C'
routes: [{name: plain, upstream: mock, model: mock-model-2024}]
C
start_pair "$SLUICE" --config "$W/gw.yaml"
printf '{"model":"plain","messages":[{"role":"user","content":"Say hi"}],"max_tokens":16}' > "$W/plain.json"
printf '{"model":"tutor","vars":{"team":"platform"},"messages":[{"role":"user","content":"Say hi"}]}' > "$W/tutor.json"
# Sanity: the release route really renders.
curl -s -D - -o /dev/null "http://127.0.0.1:$GP/v1/chat/completions" -d @"$W/tutor.json" | grep -qi "x-sluice-release: $REL" \
  || { echo "render.sh: the tutor route did not answer with $REL" >&2; exit 1; }

RPS_A=(); RPS_B=(); CPU_A=(); CPU_B=()
measure plain; measure tutor  # warm-up
for i in $(seq "$RUNS"); do
  measure plain; RPS_A+=("$LAST_RPS"); CPU_A+=("$LAST_CPU")
  measure tutor; RPS_B+=("$LAST_RPS"); CPU_B+=("$LAST_CPU")
done
compare_report plain rendered "plain proxying" "rendered prompt"
