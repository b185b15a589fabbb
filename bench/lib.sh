# bench/lib.sh: shared by the focused bench scripts (render.sh, rss.sh, rollout-overhead.sh,
# everything-on.sh): a work dir that is removed on exit, processes stopped on exit, free
# ports, fast mock-llm upstreams and a one-worker gateway.
W="$(mktemp -d /tmp/sluice-bench-focus.XXXXXX)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
# bench_args NAME "$@": the options every focused script takes (--runs, --requests, --sluice);
# sets RUNS (default 5), N (requests per run, default 40000) and SLUICE.
bench_args() {
  local name="$1"; shift
  RUNS=5; N=40000; SLUICE="${SLUICE_BIN:-$ROOT/build/release/sluice}"
  while [ $# -gt 0 ]; do
    case "$1" in
      --runs) RUNS="$2"; shift ;;
      --requests) N="$2"; shift ;;
      --sluice) SLUICE="$2"; shift ;;
      *) echo "$name: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
  done
}
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# start_mock SLUICE: a fast mock-llm (1-token answers) on a free port; sets MOCK_PORT and
# waits until it answers.
start_mock() {
  MOCK_PORT=$(free_port)
  "$1" mock-llm --listen 127.0.0.1:$MOCK_PORT --output-tokens 1:1 >/dev/null 2>&1 & PIDS+=($!)
  for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$MOCK_PORT/mock/stats" && return 0; sleep 0.1; done
  echo "bench: mock-llm on port $MOCK_PORT did not start" >&2
  return 1
}

# start_gateway SLUICE [serve args...]: a one-worker gateway on $GP (admin $AP, data in
# $W/data, its own output in $W/gateway.log). Sets GW_PID; waits for /readyz.
start_gateway() {
  local sluice="$1"; shift
  GP=$(free_port); AP=$(free_port)
  "$sluice" serve --listen 127.0.0.1:$GP --admin-listen 127.0.0.1:$AP \
    --data-dir "$W/data" --threads 1 "$@" \
    >"$W/gateway.log" 2>&1 & PIDS+=($!)
  GW_PID=$!
  for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$GP/readyz" && return 0; sleep 0.1; done
  echo "bench: the gateway did not become ready; its output:" >&2
  tail -n 20 "$W/gateway.log" >&2 || true
  return 1
}

# start_pair SLUICE [serve args...]: a fast mock-llm (1-token answers) on $MP, and a one-worker
# gateway on $GP (admin $AP, data in $W/data) with that mock as upstream "mock". Sets
# GW_PID; waits for /readyz.
start_pair() {
  local sluice="$1"; shift
  start_mock "$sluice"; MP=$MOCK_PORT
  start_gateway "$sluice" --upstream "mock=http://127.0.0.1:$MP/v1" "$@"
}

# measure BODY [h2load args...]: one saturation run of N requests (32 clients) with
# $W/BODY.json against the gateway (extra arguments, e.g. -H 'authorization: ...', go to
# h2load; MEASURE_PATH, default /v1/chat/completions, is the path); sets LAST_RPS, LAST_CPU (gateway CPU, user+system, in us per request — steadier
# than req/s on a shared machine), LAST_OK (responses with a 2xx status) and LAST_OTHER (the
# share, in %, of the machine's CPU time during the run used by processes other than the
# gateway, the mocks and h2load: other work on the machine; more than a few % taints the run).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$GW_PID/stat"; }
# machine_ticks: "busy total" from /proc/stat (busy = user + nice + system + irq + softirq:
# the kernel charges the loopback softirq work it does in our processes' context to them too,
# so leaving it out here would hide other work behind a negative difference).
# our_ticks (sets OUR_TICKS; run in this shell, not in $(...), for the times builtin): every
# process in PIDS plus the finished children of this shell (h2load).
machine_ticks() { awk '/^cpu / {t=0; for (i=2;i<=9;i++) t+=$i; print $2+$3+$4+$7+$8, t}' /proc/stat; }
our_ticks() {
  local p sum=0 kids
  for p in "${PIDS[@]}"; do sum=$((sum + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  times > "$W/.times"
  kids=$(awk -v t="$(getconf CLK_TCK)" 'NR==2 {s=0; for (i=1;i<=2;i++) {split($i,a,"m"); s+=a[1]*60+a[2]} printf "%d", s*t}' "$W/.times")
  OUR_TICKS=$((sum + kids))
}
measure() {
  local body="$1" before after tick out m0 m1 o0 o1; shift
  tick=$(getconf CLK_TCK)
  m0=$(machine_ticks); our_ticks; o0=$OUR_TICKS
  before=$(cpu_ticks)
  out=$(h2load --h1 -n "$N" -c 32 -m 1 -d "$W/$body.json" -H 'content-type: application/json' "$@" \
    "http://127.0.0.1:$GP${MEASURE_PATH:-/v1/chat/completions}" 2>/dev/null)
  after=$(cpu_ticks)
  m1=$(machine_ticks); our_ticks; o1=$OUR_TICKS
  LAST_RPS=$(awk '/^finished in/ {print $4}' <<<"$out")
  LAST_OK=$(awk '/^status codes:/ {print $3}' <<<"$out")
  LAST_CPU=$(awk -v a="$after" -v b="$before" -v n="$N" -v t="$tick" 'BEGIN {printf "%.2f", (a-b)/t/n*1e6}')
  LAST_OTHER=$(awk -v m0="$m0" -v m1="$m1" -v o0="$o0" -v o1="$o1" 'BEGIN {
    split(m0, a, " "); split(m1, b, " "); o = (b[1]-a[1]) - (o1-o0); if (o < 0) o = 0
    printf "%.1f", (b[2] > a[2]) ? 100*o/(b[2]-a[2]) : 0 }')
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }

# compare_report A B LABEL_A LABEL_B: the interleaved runs of two configurations, from the
# arrays RPS_A RPS_B CPU_A CPU_B (one entry per run): req/s runs and medians, then the
# throughput and CPU-per-request ratios B / A. Sets CPU_RATIO (B / A, 3 decimals).
compare_report() {
  local a="$1" b="$2" la="$3" lb="$4" ma mb ca cb
  ma=$(median "${RPS_A[@]}"); mb=$(median "${RPS_B[@]}")
  printf '%-22s req/s runs: %s  median %s\n' "$la" "${RPS_A[*]}" "$ma"
  printf '%-22s req/s runs: %s  median %s\n' "$lb" "${RPS_B[*]}" "$mb"
  awk -v p="$ma" -v t="$mb" -v n="$b / $a" 'BEGIN {printf "throughput: %s = %.3f (%.1f%% %s)\n", n, t/p, (t/p-1)*100, t<p?"slower":"faster"}'
  ca=$(median "${CPU_A[@]}"); cb=$(median "${CPU_B[@]}")
  echo "gateway CPU us/request: $a ${CPU_A[*]} (median $ca), $b ${CPU_B[*]} (median $cb)"
  CPU_RATIO=$(awk -v p="$ca" -v t="$cb" 'BEGIN {printf "%.3f", t/p}')
  echo "CPU per request: $b / $a = $CPU_RATIO"
}
