#!/usr/bin/env bash
# bench/otel.sh: what OpenTelemetry tracing costs on the hot path when the collector is DOWN
# (issue 14: the hot path must not slow). One fast upstream (mock-llm, 1-token answers) and
# two one-worker gateways in front of it, side by side in one run:
#   off  - no telemetry section (no otel filter in the chain)
#   down - telemetry.otlp, every request sampled, endpoint a closed port: each request builds
#          its spans and queues them; the exporter's posts fail, it backs off, the full queue
#          drops and counts
# Saturation throughput and gateway CPU per request, interleaved runs, medians, ratio.
#
#   bench/otel.sh [--runs N] [--requests N] [--sluice PATH]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
source "$HERE/lib.sh"
bench_args otel.sh "$@"
start_mock "$SLUICE"
DOWN=$(free_port)  # nothing listens there
printf 'routes: [{name: chat, upstream: mock, model: mock-model}]\n' > "$W/off.yaml"
cat > "$W/down.yaml" <<Y
routes: [{name: chat, upstream: mock, model: mock-model}]
telemetry:
  otlp: {endpoint: "http://127.0.0.1:$DOWN", sample_ratio: 1.0, batch_size: 256, flush_interval_ms: 1000, queue_size: 4096}
Y
# gateway NAME: a one-worker gateway with $W/NAME.yaml; sets <NAME>_GP and <NAME>_PID.
gateway() {
  local gp ap
  gp=$(free_port); ap=$(free_port)
  "$SLUICE" serve --listen 127.0.0.1:$gp --admin-listen 127.0.0.1:$ap --data-dir "$W/data-$1" --threads 1 \
    --upstream "mock=http://127.0.0.1:$MOCK_PORT/v1" --config "$W/$1.yaml" >"$W/gateway-$1.log" 2>&1 & PIDS+=($!)
  printf -v "${1}_PID" %s $!; printf -v "${1}_GP" %s "$gp"
  for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$gp/readyz" && return 0; sleep 0.1; done
  echo "otel.sh: gateway $1 did not become ready" >&2; tail -n 20 "$W/gateway-$1.log" >&2; return 1
}
gateway off
gateway down
printf '{"model":"chat","messages":[{"role":"user","content":"Say hi"}]}' > "$W/chat.json"
use() { GP=$(eval echo \$${1}_GP); GW_PID=$(eval echo \$${1}_PID); }

RPS_A=(); RPS_B=(); CPU_A=(); CPU_B=()
use off; measure chat; use down; measure chat  # warm-up
for i in $(seq "$RUNS"); do
  use off; measure chat; RPS_A+=("$LAST_RPS"); CPU_A+=("$LAST_CPU")
  use down; measure chat; RPS_B+=("$LAST_RPS"); CPU_B+=("$LAST_CPU")
  [ "$LAST_OK" = "$N" ] || echo "otel.sh: only $LAST_OK of $N requests succeeded with the collector down" >&2
done
compare_report off down "tracing off" "tracing on, collector down"
curl -s "http://127.0.0.1:$down_GP/metrics" | grep '^sluice_otel_spans_total'
