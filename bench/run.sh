#!/usr/bin/env bash
# bench/run.sh: sluice side by side with nginx, the Portkey gateway and the bare upstream,
# in one run, on one machine. Method: bench/README.md.
#
#   bench/run.sh [--quick] [--flat-seconds N] [--threads N] [--streams N] [--sluice PATH]
#                [--runs N] [--wait-idle SECONDS] [--keep-workdir]
#
# Writes bench/results/<date>-<host>.md and .json. Starts everything it measures on free
# loopback ports and stops all of it on exit (normal or not).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
HELPER="$HERE/bench.mjs"

ARGS=("$@")
QUICK=0
THREADS=1
STREAMS=5000
RUNS=""
FLAT_SECONDS=""
KEEP=0
WAIT_IDLE=600
SLUICE="${SLUICE_BIN:-$ROOT/build/release/sluice}"

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --flat-seconds) FLAT_SECONDS="$2"; shift ;;
    --threads) THREADS="$2"; shift ;;
    --streams) STREAMS="$2"; shift ;;
    --runs) RUNS="$2"; shift ;;
    --sluice) SLUICE="$2"; shift ;;
    --keep-workdir) KEEP=1 ;;
    --wait-idle) WAIT_IDLE="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

# Priority. With the kernel's autogroup scheduling (the default on desktop and many server
# kernels) CPU is shared fairly between *sessions*, and nice only orders processes within
# one session: a build running in another terminal takes half the machine whatever our
# nice value. As root, run.sh therefore re-runs itself in a session of its own (setsid) and
# gives that session's autogroup nice -10, so everything it starts (all targets alike)
# outweighs background work about ten to one.
if [ "$(id -u)" = 0 ] && [ -z "${SLUICE_BENCH_CHILD:-}" ] && command -v setsid >/dev/null; then
  SLUICE_BENCH_CHILD=1 setsid "$0" "${ARGS[@]}" &
  child=$!
  trap 'kill -TERM "$child" 2>/dev/null' INT TERM
  rc=0
  while :; do
    wait "$child" && rc=0 || rc=$?
    kill -0 "$child" 2>/dev/null || break  # wait returns early when a trapped signal arrives
  done
  exit "$rc"
fi
PRIORITY="default"
if [ "$(id -u)" = 0 ]; then
  if [ -w /proc/self/autogroup ] && echo -10 >"/proc/$$/autogroup" 2>/dev/null; then
    PRIORITY="own session, autogroup nice -10"
  fi
  renice -n -10 -p $$ >/dev/null 2>&1 && PRIORITY="$PRIORITY, nice -10"
fi

if [ "$QUICK" = 1 ]; then
  SAT_N=100000; RUNS="${RUNS:-3}"; LAT_SECONDS=10; TTFT_SECONDS=10; FLAT_SECONDS="${FLAT_SECONDS:-60}"
else
  SAT_N=500000; RUNS="${RUNS:-3}"; LAT_SECONDS=30; TTFT_SECONDS=30; FLAT_SECONDS="${FLAT_SECONDS:-600}"
fi
SAT_CLIENTS=32
TTFT_RATE=1000
MEM_TOKENS=60          # slow streams: one token a second, 60 s per stream
FLAT_INTERVAL=10
# Portkey answers two orders of magnitude fewer requests per second: a smaller count keeps
# its saturation run near the same wall time; req/s does not depend on the count.
PORTKEY_SAT_N=$((SAT_N / 10))

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ------------------------------------------------------------------ prerequisites
[ -x "$SLUICE" ] || die "no sluice binary at $SLUICE (build the release preset first)"
for c in h2load nginx node curl; do command -v "$c" >/dev/null || die "$c not found (scripts/setup.sh installs it)"; done
PORTKEY_JS="$HERE/node_modules/@portkey-ai/gateway/build/start-server.js"
if [ ! -f "$PORTKEY_JS" ]; then
  log "installing the Portkey gateway (npm, into bench/node_modules)"
  (cd "$HERE" && npm install --no-audit --no-fund --loglevel=error) >&2 || die "npm install failed"
fi
# 5,000 streams through a proxy hold 10,000 sockets in one process.
HARD_NOFILE=$(ulimit -Hn)
[ "$HARD_NOFILE" = unlimited ] && HARD_NOFILE=1048576
WANT_NOFILE=$((STREAMS * 2 + 2000))
if [ "$HARD_NOFILE" -lt "$WANT_NOFILE" ]; then
  NEW_STREAMS=$(((HARD_NOFILE - 2000) / 2))
  log "warning: hard open-file limit $HARD_NOFILE; holding $NEW_STREAMS streams instead of $STREAMS"
  STREAMS=$NEW_STREAMS
  WANT_NOFILE=$HARD_NOFILE
fi
ulimit -n "$WANT_NOFILE"

# Percent of all CPUs busy over 2 s (other work on the machine skews every figure).
cpu_busy() {
  local a b
  a=($(head -1 /proc/stat)); sleep 2; b=($(head -1 /proc/stat))
  local ta=0 tb=0 i
  for i in 1 2 3 4 5 6 7 8; do ta=$((ta + a[i])); tb=$((tb + b[i])); done
  local idle=$(((b[4] + b[5]) - (a[4] + a[5]))) total=$((tb - ta))
  echo $(((100 * (total - idle)) / (total > 0 ? total : 1)))
}
BUSY=$(cpu_busy)
waited=0
while [ "$BUSY" -gt 10 ] && [ "$waited" -lt "$WAIT_IDLE" ]; do
  log "machine is ${BUSY}% busy with other work; waiting for it to go idle (up to ${WAIT_IDLE} s, --wait-idle)"
  sleep 18; waited=$((waited + 20)); BUSY=$(cpu_busy)
done
START_BUSY=$BUSY
# CPU jiffies: whole machine busy, and this script plus everything it started (reaped children).
machine_busy_jiffies() { awk '/^cpu /{print $2+$3+$4}' /proc/stat; }  # user+nice+system (softirq is not charged to processes)
own_jiffies() { sed 's/.*) //' /proc/$$/stat | awk '{print $12+$13+$14+$15}'; }
RUN_T0=$(date +%s); RUN_BUSY0=$(machine_busy_jiffies); RUN_OWN0=$(own_jiffies)
# Per phase: our reaped children plus the servers still running (and nginx's workers).
live_jiffies() {
  local p total=0 v
  for p in "${PIDS[@]}" $(for q in "${PIDS[@]}"; do pgrep -P "$q"; done); do
    v=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12+$13}') || v=0
    total=$((total + ${v:-0}))
  done
  echo "$total"
}
PHASE_OTHER=()
phase_mark() {  # NAME: CPU used by others since the previous mark, as % of the machine
  local now busy own
  now=$(date +%s%N); busy=$(machine_busy_jiffies); own=$(($(own_jiffies) + $(live_jiffies)))
  if [ -n "${PH_T:-}" ]; then
    PHASE_OTHER+=("$1 $(node -e "console.log(Math.max(0, Math.round((($busy - $PH_B) - ($own - $PH_O)) / 100 / (($now - $PH_T) / 1e9 * $(nproc)) * 100)))")%")
  fi
  PH_T=$now; PH_B=$busy; PH_O=$own
}

SLUICE_ID="$("$SLUICE" --version 2>&1 | head -1), binary sha256 $(sha256sum "$SLUICE" | cut -c1-12) built $(date -r "$SLUICE" '+%F %T')"
WORK="$(mktemp -d /tmp/sluice-bench.XXXXXX)"
# Run a private copy: a rebuild of build/release during the run must not change what is measured.
cp "$SLUICE" "$WORK/sluice"
SLUICE_ORIG="$SLUICE"
SLUICE="$WORK/sluice"
chmod 755 "$WORK"  # nginx workers may run as an unprivileged user
OUT="$WORK/out"
mkdir -p "$OUT"
NOTES=()
if [ "$START_BUSY" -gt 10 ]; then
  NOTES+=("the machine was ${START_BUSY}% busy with other work when the run started: treat every figure with suspicion")
fi

# ------------------------------------------------------------------ process bookkeeping
PIDS=()     # long-running servers we started
FG_PID=""   # the load generator currently running
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$FG_PID" ] && kill -TERM "$FG_PID" 2>/dev/null || true
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    local alive=0
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  [ -n "$FG_PID" ] && kill -KILL "$FG_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ "$KEEP" = 1 ] || [ "$rc" != 0 ]; then
    log "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME CMD...: runs CMD in the background, output in $WORK/NAME.{out,err}; sets LAST_PID.
start() {
  local name="$1"; shift
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# stop PID: TERM, then KILL after 5 s; forgets the pid.
stop() {
  local pid="$1" i
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" != "$pid" ] && keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# run_fg CMD...: runs a load generator in the foreground but interruptibly (the trap can kill it).
run_fg() {
  "$@" &
  FG_PID=$!
  local rc=0
  wait "$FG_PID" || rc=$?
  FG_PID=""
  return "$rc"
}

freeport() { node "$HELPER" freeport; }

# wait_http URL [NAME PID]: until URL answers at all (any status), 20 s at most.
wait_http() {
  local url="$1" name="${2:-}" pid="${3:-}" i
  for i in $(seq 1 200); do
    if curl -s -o /dev/null --max-time 1 "$url"; then return 0; fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      cat "$WORK/$name.err" >&2 || true
      die "$name exited during startup"
    fi
    sleep 0.1
  done
  die "$url did not come up"
}

BODY="$WORK/chat.json"
STREAM_BODY="$WORK/chat-stream.json"
printf '%s' '{"model":"mock","messages":[{"role":"user","content":"Say hi"}],"max_tokens":16}' >"$BODY"
printf '%s' '{"model":"mock","messages":[{"role":"user","content":"Say hi"}],"stream":true}' >"$STREAM_BODY"
JSON_H=(-H 'content-type: application/json')

start_mock() {  # NAME ARGS... -> sets MOCK_PORT MOCK_PID
  local name="$1"; shift
  MOCK_PORT=$(freeport)
  start "$name" "$SLUICE" mock-llm --listen "127.0.0.1:$MOCK_PORT" --threads 1 "$@"
  MOCK_PID=$LAST_PID
  wait_http "http://127.0.0.1:$MOCK_PORT/healthz" "$name" "$MOCK_PID"
}

start_sluice() {  # NAME UPSTREAM_PORT -> sets SLUICE_PORT SLUICE_PID
  local name="$1" up="$2"
  SLUICE_PORT=$(freeport)
  local admin; admin=$(freeport)
  start "$name" "$SLUICE" serve --upstream "mock=http://127.0.0.1:$up" --listen "127.0.0.1:$SLUICE_PORT" \
    --admin-listen "127.0.0.1:$admin" --data-dir "$WORK/$name-data" --threads "$THREADS"
  SLUICE_PID=$LAST_PID
  wait_http "http://127.0.0.1:$SLUICE_PORT/healthz" "$name" "$SLUICE_PID"
  grep -q "data plane listening on 127.0.0.1:$SLUICE_PORT" "$WORK/$name.out" || die "$name did not report its port"
}

start_nginx() {  # NAME UPSTREAM_PORT -> sets NGINX_PORT NGINX_PID (master)
  local name="$1" up="$2"
  NGINX_PORT=$(freeport)
  mkdir -p "$WORK/$name"
  sed -e "s|@WORKERS@|$THREADS|g" -e "s|@LISTEN_PORT@|$NGINX_PORT|g" -e "s|@UPSTREAM_PORT@|$up|g" \
      -e "s|@WORKDIR@|$WORK/$name|g" "$HERE/nginx.conf.template" >"$WORK/$name/nginx.conf"
  start "$name" nginx -p "$WORK/$name" -c "$WORK/$name/nginx.conf" -e "$WORK/$name/error.log"
  NGINX_PID=$LAST_PID
  wait_http "http://127.0.0.1:$NGINX_PORT/" "$name" "$NGINX_PID"
}
nginx_pids() { echo "$1$(pgrep -P "$1" | sed 's/^/,/' | tr -d '\n')"; }  # master + workers

start_portkey() {  # -> sets PORTKEY_PORT PORTKEY_PID
  PORTKEY_PORT=$(freeport)
  start portkey env NODE_ENV=production node "$PORTKEY_JS" "--port=$PORTKEY_PORT" --headless
  PORTKEY_PID=$LAST_PID
  wait_http "http://127.0.0.1:$PORTKEY_PORT/" portkey "$PORTKEY_PID"
}
portkey_h() {  # UPSTREAM_PORT -> header args routing Portkey to that upstream
  PK_H=(-H 'x-portkey-provider: openai' -H "x-portkey-custom-host: http://127.0.0.1:$1/v1" -H 'authorization: Bearer sk-bench')
}

# CPU accounting around a load run: gateway process(es) and upstream, user+system seconds.
declare -A GWPIDS
cpu_of() { if [ -n "$1" ]; then node "$HELPER" cpu "$1"; else echo 0; fi; }
cpu_snap() {  # TARGET UPSTREAM_PID
  CPU_GW0=$(cpu_of "${GWPIDS[$1]:-}"); CPU_UP0=$(cpu_of "$2")
}
cpu_write() {  # TARGET UPSTREAM_PID REQUESTS OUTFILE
  local gw up
  gw=$(cpu_of "${GWPIDS[$1]:-}"); up=$(cpu_of "$2")
  node -e "console.log(JSON.stringify({gateway_cpu_s: +($gw - $CPU_GW0).toFixed(2), upstream_cpu_s: +($up - $CPU_UP0).toFixed(2), requests: $3}))" >"$4"
}

h2() { run_fg h2load --h1 -m 1 -t 1 -d "$BODY" "${JSON_H[@]}" "$@"; }

# ------------------------------------------------------------------ phase A: non-streaming
phase_mark start
log "work dir $WORK; sluice $SLUICE; gateway workers $THREADS; mode $([ "$QUICK" = 1 ] && echo quick || echo full)"
start_mock mock-fast --ttft-ms 0 --tpot-ms 0 --output-tokens 1:1
FAST_PORT=$MOCK_PORT; FAST_PID=$MOCK_PID
start_nginx nginx-a "$FAST_PORT"; NGX_A_PORT=$NGINX_PORT; NGX_A_PID=$NGINX_PID
start_sluice sluice-a "$FAST_PORT"; SL_A_PORT=$SLUICE_PORT; SL_A_PID=$SLUICE_PID
start_portkey
log "upstream :$FAST_PORT  nginx :$NGX_A_PORT  sluice :$SL_A_PORT  portkey :$PORTKEY_PORT"

TARGETS=(direct nginx portkey sluice)
declare -A URL H_EXTRA
URL[direct]="http://127.0.0.1:$FAST_PORT/v1/chat/completions"
URL[nginx]="http://127.0.0.1:$NGX_A_PORT/v1/chat/completions"
URL[sluice]="http://127.0.0.1:$SL_A_PORT/v1/chat/completions"
URL[portkey]="http://127.0.0.1:$PORTKEY_PORT/v1/chat/completions"
portkey_h "$FAST_PORT"
GWPIDS[nginx]=$(pgrep -P "$NGX_A_PID" | paste -sd, -); GWPIDS[sluice]=$SL_A_PID; GWPIDS[portkey]=$PORTKEY_PID; GWPIDS[direct]=""
h_for() { if [ "$1" = portkey ]; then HX=("${PK_H[@]}"); else HX=(); fi; }

# sanity: every target answers 200 with a completion
for t in "${TARGETS[@]}"; do
  h_for "$t"
  code=$(curl -s -o "$WORK/sanity-$t.json" -w '%{http_code}' "${JSON_H[@]}" "${HX[@]}" --data-binary @"$BODY" "${URL[$t]}")
  [ "$code" = 200 ] && grep -q '"chat.completion"' "$WORK/sanity-$t.json" || die "$t answered $code: $(head -c 300 "$WORK/sanity-$t.json")"
done

log "warm-up"
for t in "${TARGETS[@]}"; do
  h_for "$t"; n=5000; [ "$t" = portkey ] && n=1000
  h2 -n "$n" -c "$SAT_CLIENTS" "${HX[@]}" "${URL[$t]}" >"$WORK/warm-$t.txt"
done

log "1. saturation: $RUNS run(s) x ${TARGETS[*]}"
for r in $(seq 1 "$RUNS"); do
  for t in "${TARGETS[@]}"; do
    h_for "$t"; n=$SAT_N; [ "$t" = portkey ] && n=$PORTKEY_SAT_N
    cpu_snap "$t" "$FAST_PID"
    h2 -n "$n" -c "$SAT_CLIENTS" "${HX[@]}" "${URL[$t]}" >"$WORK/sat-$t-$r.txt"
    cpu_write "$t" "$FAST_PID" "$n" "$OUT/cpu-sat-$t-$r.json"
    node "$HELPER" h2load "$WORK/sat-$t-$r.txt" >"$OUT/sat-$t-$r.json"
    log "   run $r $t: $(grep -o 'finished in .*req/s' "$WORK/sat-$t-$r.txt")"
  done
done
phase_mark saturation
median_rps() {  # TARGET
  local i v=()
  for i in $(seq 1 "$RUNS"); do v+=("$(node -e "console.log(require('$OUT/sat-$1-$i.json').rps||0)")"); done
  printf '%s\n' "${v[@]}" | sort -g | sed -n "$(((RUNS + 1) / 2))p"
}
NGX_SAT=$(median_rps nginx); SL_SAT=$(median_rps sluice); PK_SAT=$(median_rps portkey)
declare -A SAT=([nginx]="$NGX_SAT" [sluice]="$SL_SAT" [portkey]="$PK_SAT" [direct]="$(median_rps direct)")

# Rates are multiples of 200: h2load paces each client at 200 req/s (its --rps tops out near
# 250 per client here), so the client count is rate / 200.
round200() { node -e "console.log(Math.max(200, Math.floor($1 / 200) * 200))"; }
HALF_NGX=$(round200 "$NGX_SAT / 2")
HALF_SL=$(round200 "$SL_SAT / 2")
LAT_RATES=(400 1000)
[ "$HALF_NGX" -gt 1000 ] && LAT_RATES+=("$HALF_NGX")
# If sluice saturates below nginx, half of nginx's rate may be beyond sluice: also compare
# at half of sluice's own saturation.
[ "$HALF_SL" -gt 1000 ] && [ "$HALF_SL" -lt "$HALF_NGX" ] && LAT_RATES+=("$HALF_SL")
log "2. latency at fixed rates: ${LAT_RATES[*]} req/s ($LAT_SECONDS s each, 1 s warm-up dropped)"
for rate in "${LAT_RATES[@]}"; do
  if [ "$rate" -ge 200 ]; then clients=$((rate / 200)); per=200; else clients=1; per=$rate; fi
  n=$((rate * (LAT_SECONDS + 1)))
  for t in "${TARGETS[@]}"; do
    if [ "$t" != direct ] && node -e "process.exit(${SAT[$t]} * 0.95 < $rate ? 0 : 1)"; then
      NOTES+=("latency at $rate req/s: $t skipped, the rate is above its measured saturation (${SAT[$t]} req/s)")
      log "   $t skipped at $rate req/s (saturates at ${SAT[$t]})"
      continue
    fi
    h_for "$t"
    cpu_snap "$t" "$FAST_PID"
    h2 -n "$n" -c "$clients" --rps "$per" --log-file "$WORK/lat-$rate-$t.log" "${HX[@]}" "${URL[$t]}" >"$WORK/lat-$rate-$t.txt"
    cpu_write "$t" "$FAST_PID" "$n" "$OUT/cpu-lat-$rate-$t.json"
    node "$HELPER" latency "$WORK/lat-$rate-$t.log" --skip-s 1 >"$OUT/lat-$rate-$t.json"
    log "   $rate req/s $t: $(cat "$OUT/lat-$rate-$t.json")"
  done
done

phase_mark latency
# ------------------------------------------------------------------ phase B: streaming TTFT
log "3. streaming TTFT up to $TTFT_RATE streams/s ($TTFT_SECONDS s each)"
start_mock mock-stream --ttft-ms 0 --tpot-ms 5 --output-tokens 20:20
ST_PORT=$MOCK_PORT; ST_PID=$MOCK_PID
start_nginx nginx-b "$ST_PORT"; NGX_B_PID=$NGINX_PID; NGX_B_PORT=$NGINX_PORT
start_sluice sluice-b "$ST_PORT"; SL_B_PID=$SLUICE_PID; SL_B_PORT=$SLUICE_PORT
GWPIDS[nginx]=$(pgrep -P "$NGX_B_PID" | paste -sd, -); GWPIDS[sluice]=$SL_B_PID
declare -A SURL
SURL[direct]="http://127.0.0.1:$ST_PORT/v1/chat/completions"
SURL[nginx]="http://127.0.0.1:$NGX_B_PORT/v1/chat/completions"
SURL[sluice]="http://127.0.0.1:$SL_B_PORT/v1/chat/completions"
SURL[portkey]="http://127.0.0.1:$PORTKEY_PORT/v1/chat/completions"
portkey_h "$ST_PORT"
# Portkey cannot take 1,000 streams/s on one event loop (it saturates near ${PK_SAT} req/s
# without streaming): it streams only at a quarter of its saturation, so its TTFT is
# overhead, not queueing; direct, nginx and sluice also run at that rate for comparison.
PK_TTFT_RATE=$(node -e "console.log(Math.min($TTFT_RATE, Math.max(50, Math.floor(($PK_SAT || 0) / 4 / 50) * 50)))")
TTFT_RATES=($(printf '%s\n' "$PK_TTFT_RATE" $((TTFT_RATE / 2)) "$TTFT_RATE" | sort -n | uniq))
log "   rates: ${TTFT_RATES[*]} streams/s (Portkey only at $PK_TTFT_RATE)"
for rate in "${TTFT_RATES[@]}"; do
  for t in "${TARGETS[@]}"; do
    [ "$t" = portkey ] && [ "$rate" -gt "$PK_TTFT_RATE" ] && continue
    h_for "$t"
    HDR=()
    for ((i = 1; i < ${#HX[@]}; i += 2)); do HDR+=(--header "${HX[$i]}"); done
    cpu_snap "$t" "$ST_PID"
    run_fg node "$HELPER" ttft --url "${SURL[$t]}" --rate "$rate" --duration "$TTFT_SECONDS" --warmup-s 1 \
      --body "$STREAM_BODY" "${HDR[@]}" >"$OUT/ttft-$rate-$t.json"
    cpu_write "$t" "$ST_PID" "$((rate * (TTFT_SECONDS + 1)))" "$OUT/cpu-ttft-$rate-$t.json"
    log "   $rate/s $t: $(cut -c1-230 "$OUT/ttft-$rate-$t.json")"
  done
done
stop "$NGX_B_PID"; stop "$SL_B_PID"; stop "$ST_PID"

phase_mark streaming
# ------------------------------------------------------------------ phase C: memory per stream
log "4. memory per open stream: $STREAMS concurrent streams"
MEM_TARGETS=(sluice nginx portkey)
for t in "${MEM_TARGETS[@]}"; do
  start_mock "mock-slow-$t" --ttft-ms 0 --tpot-ms 1000 --output-tokens "$MEM_TOKENS:$MEM_TOKENS"
  SLOW_PORT=$MOCK_PORT; SLOW_PID=$MOCK_PID
  HDR=()
  case "$t" in
    sluice) start_sluice sluice-c "$SLOW_PORT"; GW_PID=$SLUICE_PID; url="http://127.0.0.1:$SLUICE_PORT/v1/chat/completions"; pids=$GW_PID ;;
    nginx) start_nginx nginx-c "$SLOW_PORT"; GW_PID=$NGINX_PID; url="http://127.0.0.1:$NGINX_PORT/v1/chat/completions"; pids=$(nginx_pids "$GW_PID") ;;
    portkey) GW_PID=""; url="http://127.0.0.1:$PORTKEY_PORT/v1/chat/completions"; pids=$PORTKEY_PID
             HDR=(--header 'x-portkey-provider: openai' --header "x-portkey-custom-host: http://127.0.0.1:$SLOW_PORT/v1" --header 'authorization: Bearer sk-bench') ;;
  esac
  # warm the gateway (allocator, upstream pool) with 100 streams before the measured 5,000
  run_fg node "$HELPER" hold --url "$url" --streams 100 --body "$STREAM_BODY" --pids "$pids" "${HDR[@]}" --settle-ms 500 >/dev/null
  run_fg node "$HELPER" hold --url "$url" --streams "$STREAMS" --body "$STREAM_BODY" --pids "$pids" "${HDR[@]}" \
    --timeout-s $((MEM_TOKENS / 3)) --rounds 2 >"$OUT/mem-$t.json"
  log "   $t: $(cat "$OUT/mem-$t.json")"
  if [ -n "$GW_PID" ]; then stop "$GW_PID"; fi
  stop "$SLOW_PID"
done

phase_mark memory
# ------------------------------------------------------------------ phase D: RSS flatness
FLAT_RATE=$(round200 "$SL_SAT / 2")
log "5. sluice RSS over $FLAT_SECONDS s at $FLAT_RATE req/s (sample every $FLAT_INTERVAL s)"
stop "$NGX_A_PID"; stop "$PORTKEY_PID"
: >"$OUT/flat-samples.tsv"
printf '0\t%s\n' "$(node "$HELPER" rss "$SL_A_PID")" >>"$OUT/flat-samples.tsv"
h2load --h1 -m 1 -t 1 -d "$BODY" "${JSON_H[@]}" -n $((FLAT_RATE * FLAT_SECONDS)) -c $((FLAT_RATE / 200)) --rps 200 \
  "${URL[sluice]}" >"$WORK/flat.txt" &
FG_PID=$!
t0=$(date +%s)
next=$FLAT_INTERVAL
while kill -0 "$FG_PID" 2>/dev/null; do
  now=$(($(date +%s) - t0))
  if [ "$now" -ge "$next" ]; then
    printf '%s\t%s\n' "$now" "$(node "$HELPER" rss "$SL_A_PID")" >>"$OUT/flat-samples.tsv"
    next=$((next + FLAT_INTERVAL))
  fi
  sleep 0.5
done
wait "$FG_PID" || true
FG_PID=""
phase_mark rss-run
printf '%s\t%s\n' "$(($(date +%s) - t0))" "$(node "$HELPER" rss "$SL_A_PID")" >>"$OUT/flat-samples.tsv"
node "$HELPER" h2load "$WORK/flat.txt" >"$WORK/flat-h2load.json"
node -e "
const h=require('$WORK/flat-h2load.json');
console.log(JSON.stringify({duration_s:$FLAT_SECONDS, rate:$FLAT_RATE, interval_s:$FLAT_INTERVAL, h2load:h}));" >"$OUT/flat.json"
log "   samples: $(tr '\n' ' ' <"$OUT/flat-samples.tsv")"
SL_METRICS=$(curl -s "http://127.0.0.1:$SL_A_PORT/metrics" | grep -E '^sluice_(requests|upstream_errors|request_log)' | head -20 || true)
REQLOG_BYTES=$(stat -c %s "$WORK/sluice-a-data/requests.jsonl" 2>/dev/null || echo 0)
stop "$SL_A_PID"; stop "$FAST_PID"

# ------------------------------------------------------------------ report
# Everything we started has been stopped and reaped: its CPU time is in our cutime/cstime.
wait 2>/dev/null || true
RUN_WALL=$(($(date +%s) - RUN_T0))
OTHER=$(node -e "
const hz = 100, busy = $(machine_busy_jiffies) - $RUN_BUSY0, own = $(own_jiffies) - $RUN_OWN0;
const pct = Math.round(((busy - own) / hz) / ($RUN_WALL * $(nproc)) * 1000) / 10;
console.log((pct < 2 ? 'none measurable (' + pct + '%, within accounting error)' : pct + '%') + ' of the machine (user+system: machine ' + (busy / hz).toFixed(0) + ' s, benchmark processes ' + (own / hz).toFixed(0) + ' s, over ' + $RUN_WALL + ' s wall x $(nproc) CPUs)');")
NOTES+=("CPU used by processes outside the benchmark during the run: $OTHER; by phase: ${PHASE_OTHER[*]}")
if ! cmp -s "$SLUICE" "$SLUICE_ORIG"; then
  NOTES+=("$SLUICE_ORIG was rebuilt during the run; this run measured the copy taken at the start (sha256 $(sha256sum "$SLUICE" | cut -c1-12))")
fi
HOST=$(hostname -s 2>/dev/null || hostname)
DATE=$(date +%F)
[ -n "$SL_METRICS" ] && NOTES+=("sluice /metrics after the run: $(echo "$SL_METRICS" | tr '\n' ';' | sed 's/;$//')")
NOTES+=("sluice request log (on, the default) wrote $REQLOG_BYTES bytes during phase A; nginx ran with access_log off")
export B_DATE="$DATE" B_HOST="$HOST" B_QUICK="$QUICK" B_THREADS="$THREADS" B_SAT_N="$SAT_N" B_PK_SAT_N="$PORTKEY_SAT_N" \
  B_RUNS="$RUNS" B_CLIENTS="$SAT_CLIENTS" B_RATES="${LAT_RATES[*]}" B_HALF="$HALF_NGX" B_HALF_SL="$HALF_SL" B_TTFT_RATES="${TTFT_RATES[*]}" \
  B_TTFT_S="$TTFT_SECONDS" B_STREAMS="$STREAMS" B_MEM_TOKENS="$MEM_TOKENS" B_BODY="$(cat "$BODY")" \
  B_NPROC="$(nproc)" B_CPU="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)" B_KERNEL="$(uname -r)" \
  B_OS="$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")" \
  B_MEM="$(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)" \
  B_SLUICE_V="$SLUICE_ID" B_PRIORITY="$PRIORITY" \
  B_GIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (dirty)')" \
  B_NGINX_V="$(nginx -v 2>&1 | sed 's/^nginx version: //')" B_H2LOAD_V="$(h2load --version | head -1)" \
  B_NODE_V="$(node --version)" \
  B_PK_V="$(node -e "console.log(require('$HERE/node_modules/@portkey-ai/gateway/package.json').version)")" \
  B_NOTES="$(printf '%s\n' "${NOTES[@]}")"
node -e '
const e = process.env;
const rates = e.B_RATES.split(" ").map(Number);
const labels = {}; labels[Number(e.B_HALF_SL)] = "half of sluice saturation"; labels[Number(e.B_HALF)] = "half of nginx saturation";
console.log(JSON.stringify({
  date: e.B_DATE, host: e.B_HOST, quick: e.B_QUICK === "1",
  targets: ["direct", "nginx", "portkey", "sluice"],
  gateway_threads: Number(e.B_THREADS),
  upstream: "sluice mock-llm --threads 1 --ttft-ms 0 --tpot-ms 0 --output-tokens 1:1 (314-byte JSON completion)",
  body: e.B_BODY,
  sat_clients: Number(e.B_CLIENTS), sat_requests: `${e.B_SAT_N} (Portkey ${e.B_PK_SAT_N})`, sat_runs: Number(e.B_RUNS),
  latency_rates: rates, latency_labels: labels,
  ttft_rates: e.B_TTFT_RATES.split(" ").map(Number), ttft_duration_s: Number(e.B_TTFT_S),
  mem_streams: Number(e.B_STREAMS), mem_tokens: Number(e.B_MEM_TOKENS),
  machine: { nproc: Number(e.B_NPROC), cpu: e.B_CPU, kernel: e.B_KERNEL, os: e.B_OS, memory: e.B_MEM, "benchmark priority": e.B_PRIORITY },
  versions: { sluice: `${e.B_SLUICE_V} (source tree at git ${e.B_GIT})`, nginx: e.B_NGINX_V, h2load: e.B_H2LOAD_V, node: e.B_NODE_V, portkey: `@portkey-ai/gateway ${e.B_PK_V}` },
  notes: e.B_NOTES.split("\n").filter(Boolean),
}, null, 2));' >"$OUT/meta.json"
mkdir -p "$HERE/results"
RES="$HERE/results/$DATE-$HOST"
node "$HELPER" report --dir "$OUT" --md "$RES.md" --json "$RES.json"
log "results: $RES.md and $RES.json"
cat "$RES.md"
