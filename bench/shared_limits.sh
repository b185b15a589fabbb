#!/usr/bin/env bash
# bench/shared_limits.sh: what the shared limits (issue 15, Redis) cost per request. One fast
# upstream (mock-llm, 1-token answers), a redis-server on a loopback port, and two one-worker
# gateways side by side in one run, both with one tenant limited by rpm and tpm (limits well
# above the load, so every request is admitted and the limiter's work is all that differs):
#   local  - the tenant's buckets in process (one replica)
#   redis  - shared_limits on the redis-server: admission from leased slices, leases and
#            give-backs on the sync thread (one pipelined round trip per 5 ms at most)
# Saturation throughput and gateway CPU per request (plus redis-server CPU per request and
# round trips per request), interleaved runs, medians, ratio.
#
#   bench/shared_limits.sh [--runs N] [--requests N] [--sluice PATH]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
source "$HERE/lib.sh"
bench_args shared_limits.sh "$@"
command -v redis-server >/dev/null || { echo "shared_limits.sh: redis-server is not installed" >&2; exit 2; }
start_mock "$SLUICE"
RP=$(free_port)
mkdir -p "$W/redis"
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --daemonize no --dir "$W/redis" \
  --loglevel warning >"$W/redis.log" 2>&1 & PIDS+=($!)
REDIS_PID=$!
for _ in $(seq 50); do [ "$(redis-cli -p "$RP" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
KEYHASH=$(printf %s sk-bench | sha256sum | cut -d' ' -f1)
common="routes: [{name: chat, upstream: mock, model: mock-model}]
api_keys: [{tenant: bench, key_sha256: $KEYHASH}]
tenants: [{name: bench, rpm: 100000000, tpm: 10000000000}]"
printf '%s\n' "$common" > "$W/local.yaml"
printf '%s\nshared_limits: {redis: "redis://127.0.0.1:%s"}\n' "$common" "$RP" > "$W/redis.yaml"
gateway() {
  local gp ap
  gp=$(free_port); ap=$(free_port)
  "$SLUICE" serve --listen 127.0.0.1:$gp --admin-listen 127.0.0.1:$ap --data-dir "$W/data-$1" --threads 1 \
    --upstream "mock=http://127.0.0.1:$MOCK_PORT/v1" --config "$W/$1.yaml" >"$W/gateway-$1.log" 2>&1 & PIDS+=($!)
  printf -v "${1}_PID" %s $!; printf -v "${1}_GP" %s "$gp"
  for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$gp/readyz" && return 0; sleep 0.1; done
  echo "shared_limits.sh: gateway $1 did not become ready" >&2; tail -n 20 "$W/gateway-$1.log" >&2; return 1
}
gateway local
gateway redis
curl -s "http://127.0.0.1:$redis_GP/readyz"; echo
printf '{"model":"chat","messages":[{"role":"user","content":"Say hi"}],"max_tokens":1}' > "$W/chat.json"
use() { GP=$(eval echo \$${1}_GP); GW_PID=$(eval echo \$${1}_PID); }
AUTH=(-H 'authorization: Bearer sk-bench')
redis_ticks() { awk '{print $14 + $15}' "/proc/$REDIS_PID/stat"; }
trips() { curl -s "http://127.0.0.1:$redis_GP/metrics" | awk '/^sluice_shared_limits_round_trips_total/ {print $2}'; }

RPS_A=(); RPS_B=(); CPU_A=(); CPU_B=(); RCPU=(); TRIPS=()
use local; measure chat "${AUTH[@]}"; use redis; measure chat "${AUTH[@]}"  # warm-up
for i in $(seq "$RUNS"); do
  use local; measure chat "${AUTH[@]}"; RPS_A+=("$LAST_RPS"); CPU_A+=("$LAST_CPU")
  [ "$LAST_OK" = "$N" ] || echo "shared_limits.sh: only $LAST_OK of $N requests succeeded (local)" >&2
  r0=$(redis_ticks); t0=$(trips)
  use redis; measure chat "${AUTH[@]}"; RPS_B+=("$LAST_RPS"); CPU_B+=("$LAST_CPU")
  [ "$LAST_OK" = "$N" ] || echo "shared_limits.sh: only $LAST_OK of $N requests succeeded (redis)" >&2
  r1=$(redis_ticks); t1=$(trips)
  RCPU+=("$(awk -v a="$r1" -v b="$r0" -v n="$N" -v t="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", (a-b)/t/n*1e6}')")
  TRIPS+=("$(awk -v a="$t1" -v b="$t0" -v n="$N" 'BEGIN {printf "%.4f", (a-b)/n}')")
done
compare_report local redis "in-process limits" "shared limits (Redis)"
echo "redis-server CPU us/request: ${RCPU[*]} (median $(median "${RCPU[@]}"))"
echo "Redis round trips per request: ${TRIPS[*]} (median $(median "${TRIPS[@]}"))"
curl -s "http://127.0.0.1:$redis_GP/metrics" | grep '^sluice_shared_limits_'
