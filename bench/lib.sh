# bench/lib.sh: shared by the focused bench scripts (render.sh, rss.sh): a work dir that is
# removed on exit, processes stopped on exit, free ports, and a mock-llm + gateway pair.
W="$(mktemp -d /tmp/sluice-bench-focus.XXXXXX)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# start_pair SLUICE [serve args...]: a fast mock-llm (1-token answers) on $MP, and a one-worker
# gateway on $GP (admin $AP, data in $W/data) with that mock as upstream "mock". Sets
# GW_PID; waits for /readyz.
start_pair() {
  local sluice="$1"; shift
  MP=$(free_port); GP=$(free_port); AP=$(free_port)
  "$sluice" mock-llm --listen 127.0.0.1:$MP --output-tokens 1:1 >/dev/null 2>&1 & PIDS+=($!)
  "$sluice" serve --upstream "mock=http://127.0.0.1:$MP/v1" --listen 127.0.0.1:$GP --admin-listen 127.0.0.1:$AP \
    --data-dir "$W/data" --threads 1 "$@" \
    >/dev/null 2>&1 & PIDS+=($!)
  GW_PID=$!
  for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$GP/readyz" && return 0; sleep 0.1; done
  echo "bench: the gateway did not become ready" >&2
  return 1
}

# measure BODY: one saturation run of N requests (32 clients) with $W/BODY.json against the
# gateway; sets LAST_RPS and LAST_CPU (gateway CPU, user+system, in us per request — steadier
# than req/s on a shared machine).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$GW_PID/stat"; }
measure() {
  local before after tick
  tick=$(getconf CLK_TCK)
  before=$(cpu_ticks)
  LAST_RPS=$(h2load --h1 -n "$N" -c 32 -m 1 -d "$W/$1.json" -H 'content-type: application/json' \
    "http://127.0.0.1:$GP/v1/chat/completions" 2>/dev/null | awk '/^finished in/ {print $4}')
  after=$(cpu_ticks)
  LAST_CPU=$(awk -v a="$after" -v b="$before" -v n="$N" -v t="$tick" 'BEGIN {printf "%.2f", (a-b)/t/n*1e6}')
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
