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
