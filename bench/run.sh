#!/usr/bin/env bash
# bench/run.sh: sluice side by side with nginx, the Portkey gateway and the bare upstream,
# in one run, on one machine. Method: bench/README.md.
#
#   bench/run.sh [--quick] [--phases LIST] [--flat-seconds N] [--threads N] [--streams N]
#                [--sluice PATH] [--runs N] [--wait-idle SECONDS] [--keep-workdir]
#
# Phases (--phases, comma separated, default all, always run in this order):
#   sat        1. saturation throughput, mock-llm upstream (Portkey included)
#   latency    2. added latency at fixed request rates
#   bound      3. gateway-bound saturation: static nginx upstream, CPU user/system per request
#   oneatatime 4. one request at a time (closed loop), added latency percentiles
#   streaming  5. streaming TTFT and inter-chunk gaps
#   syscalls   6. system calls (strace) and allocations (perf uprobes) per request and per stream
#   memory     7. memory per open stream
#   flat       8. sluice RSS under sustained load
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
STREAMS=10000
RUNS=""
FLAT_SECONDS=""
KEEP=0
WAIT_IDLE=600
SLUICE="${SLUICE_BIN:-$ROOT/build/release/sluice}"
ALL_PHASES=(sat latency bound oneatatime streaming syscalls memory flat)
PHASES="$(IFS=,; echo "${ALL_PHASES[*]}")"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --phases) PHASES="$2"; shift ;;
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
for p in ${PHASES//,/ }; do
  case " ${ALL_PHASES[*]} " in
    *" $p "*) ;;
    *) echo "run.sh: unknown phase '$p' (phases: ${ALL_PHASES[*]})" >&2; exit 2 ;;
  esac
done
want() { case ",$PHASES," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
# The phases run, in run order (whatever order --phases listed them in).
RUN_PHASES=()
for p in "${ALL_PHASES[@]}"; do want "$p" && RUN_PHASES+=("$p"); done
[ ${#RUN_PHASES[@]} -gt 0 ] || { echo "run.sh: --phases selects nothing" >&2; exit 2; }

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
  OAAT_N=20000; SYS_STREAM_SECONDS=5
else
  SAT_N=500000; RUNS="${RUNS:-3}"; LAT_SECONDS=30; TTFT_SECONDS=30; FLAT_SECONDS="${FLAT_SECONDS:-600}"
  OAAT_N=100000; SYS_STREAM_SECONDS=10
fi
SAT_CLIENTS=32
TTFT_RATE=1000
MEM_TOKENS=60          # slow streams: one token a second, 60 s per stream
FLAT_INTERVAL=10
SYS_N=20000            # requests per gateway under strace / perf
SYS_STREAM_RATE=200    # streams/s under strace / perf
# Portkey answers two orders of magnitude fewer requests per second: a smaller count keeps
# its saturation run near the same wall time; req/s does not depend on the count.
PORTKEY_SAT_N=$((SAT_N / 10))
# Which long-lived servers the selected phases need: the mock-llm upstream with nginx and
# sluice in front (phases 1, 2, 8), and Portkey (1, 2, 5, 7).
NEED_FAST=0; NEED_PK=0
if want sat || want latency || want flat; then NEED_FAST=1; fi
if want sat || want latency || want streaming || want memory; then NEED_PK=1; fi

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ------------------------------------------------------------------ prerequisites
[ -x "$SLUICE" ] || die "no sluice binary at $SLUICE (build the release preset first)"
for c in h2load nginx node curl; do command -v "$c" >/dev/null || die "$c not found (scripts/setup.sh installs it)"; done
PORTKEY_JS="$HERE/node_modules/@portkey-ai/gateway/build/start-server.js"
if [ "$NEED_PK" = 1 ] && [ ! -f "$PORTKEY_JS" ]; then
  log "installing the Portkey gateway (npm, into bench/node_modules)"
  (cd "$HERE" && npm install --no-audit --no-fund --loglevel=error) >&2 || die "npm install failed"
fi
# 10,000 streams through a proxy hold 20,000 sockets in one process.
HARD_NOFILE=$(ulimit -Hn)
[ "$HARD_NOFILE" = unlimited ] && HARD_NOFILE=1048576
WANT_NOFILE=$((STREAMS * 2 + 2000))
if [ "$HARD_NOFILE" -lt "$WANT_NOFILE" ]; then
  NEW_STREAMS=$(((HARD_NOFILE - 2000) / 2))
  want memory && log "warning: hard open-file limit $HARD_NOFILE; holding $NEW_STREAMS streams instead of $STREAMS"
  STREAMS=$NEW_STREAMS
  WANT_NOFILE=$HARD_NOFILE
fi
ulimit -n "$WANT_NOFILE"
# nginx (as proxy) needs two connections per held stream.
NGX_CONNECTIONS=$((STREAMS * 2 + 1000)); [ "$NGX_CONNECTIONS" -lt 19000 ] && NGX_CONNECTIONS=19000
NGX_NOFILE=$((NGX_CONNECTIONS + 1000))

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
PIDS=()          # long-running servers we started
FG_PID=""        # the load generator currently running
AUX_PID=""       # strace attached to a gateway
PROBE_EVENTS=()  # perf uprobe events we added (removed on exit)
probe_remove() {
  local e
  for e in "${PROBE_EVENTS[@]}"; do perf probe -q -d "$e" >/dev/null 2>&1 || true; done
  PROBE_EVENTS=()
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$AUX_PID" ] && kill -INT "$AUX_PID" 2>/dev/null || true
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
  [ -n "$AUX_PID" ] && kill -KILL "$AUX_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  probe_remove
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
      -e "s|@CONNECTIONS@|$NGX_CONNECTIONS|g" -e "s|@NOFILE@|$NGX_NOFILE|g" \
      -e "s|@WORKDIR@|$WORK/$name|g" "$HERE/nginx.conf.template" >"$WORK/$name/nginx.conf"
  start "$name" nginx -p "$WORK/$name" -c "$WORK/$name/nginx.conf" -e "$WORK/$name/error.log"
  NGINX_PID=$LAST_PID
  wait_http "http://127.0.0.1:$NGINX_PORT/" "$name" "$NGINX_PID"
}
nginx_pids() { echo "$1$(pgrep -P "$1" | sed 's/^/,/' | tr -d '\n')"; }  # master + workers
nginx_workers() { pgrep -P "$1" | paste -sd, -; }

start_static() {  # NAME -> sets STATIC_PORT STATIC_PID (master): nginx answering a fixed completion
  local name="$1"
  STATIC_PORT=$(freeport)
  mkdir -p "$WORK/$name"
  sed -e "s|@LISTEN_PORT@|$STATIC_PORT|g" -e "s|@WORKDIR@|$WORK/$name|g" \
    "$HERE/nginx-static.conf.template" >"$WORK/$name/nginx.conf"
  start "$name" nginx -p "$WORK/$name" -c "$WORK/$name/nginx.conf" -e "$WORK/$name/error.log"
  STATIC_PID=$LAST_PID
  wait_http "http://127.0.0.1:$STATIC_PORT/" "$name" "$STATIC_PID"
}

start_portkey() {  # -> sets PORTKEY_PORT PORTKEY_PID
  PORTKEY_PORT=$(freeport)
  start portkey env NODE_ENV=production node "$PORTKEY_JS" "--port=$PORTKEY_PORT" --headless
  PORTKEY_PID=$LAST_PID
  wait_http "http://127.0.0.1:$PORTKEY_PORT/" portkey "$PORTKEY_PID"
}
portkey_h() {  # UPSTREAM_PORT -> header args routing Portkey to that upstream
  PK_H=(-H 'x-portkey-provider: openai' -H "x-portkey-custom-host: http://127.0.0.1:$1/v1" -H 'authorization: Bearer sk-bench')
}

# sanity NAME URL [HEADER ARGS...]: the target answers the chat body with 200 and a completion.
sanity() {
  local name="$1" url="$2" code; shift 2
  code=$(curl -s -o "$WORK/sanity-$name.json" -w '%{http_code}' "${JSON_H[@]}" "$@" --data-binary @"$BODY" "$url")
  [ "$code" = 200 ] && grep -q '"chat.completion"' "$WORK/sanity-$name.json" || die "$name answered $code: $(head -c 300 "$WORK/sanity-$name.json")"
}

# CPU accounting around a load run: gateway process(es) and upstream, user+system seconds.
declare -A GWPIDS
cpu_of() { if [ -n "$1" ]; then node "$HELPER" cpu "$1"; else echo 0; fi; }
cpu_split_of() { if [ -n "$1" ]; then node "$HELPER" cpu "$1" --split; else echo "0 0"; fi; }  # "user system"
cpu_snap() {  # TARGET UPSTREAM_PID
  CPU_GW0=$(cpu_of "${GWPIDS[$1]:-}"); CPU_UP0=$(cpu_of "$2")
}
cpu_write() {  # TARGET UPSTREAM_PID REQUESTS OUTFILE
  local gw up
  gw=$(cpu_of "${GWPIDS[$1]:-}"); up=$(cpu_of "$2")
  node -e "console.log(JSON.stringify({gateway_cpu_s: +($gw - $CPU_GW0).toFixed(2), upstream_cpu_s: +($up - $CPU_UP0).toFixed(2), requests: $3}))" >"$4"
}

H2LOAD=(h2load --h1 -m 1 -t 1 -d "$BODY" "${JSON_H[@]}")
h2() { run_fg "${H2LOAD[@]}" "$@"; }
round200() { node -e "console.log(Math.max(200, Math.floor($1 / 200) * 200))"; }
median_rps() {  # PREFIX TARGET: median req/s of $OUT/PREFIX-TARGET-{1..RUNS}.json
  local i v=()
  for i in $(seq 1 "$RUNS"); do v+=("$(node -e "console.log(require('$OUT/$1-$2-$i.json').rps||0)")"); done
  printf '%s\n' "${v[@]}" | sort -g | sed -n "$(((RUNS + 1) / 2))p"
}

# strace_count NAME PIDS CMD...: strace -c -f attached to PIDS (and all their threads) while CMD
# runs in the foreground; the summary table goes to $OUT/strace-NAME.txt.
strace_count() {
  local name="$1" pids="$2" p rc=0; shift 2
  local pargs=()
  for p in ${pids//,/ }; do pargs+=(-p "$p"); done
  strace -c -f -o "$OUT/strace-$name.txt" "${pargs[@]}" 2>"$WORK/strace-$name.err" &
  AUX_PID=$!
  sleep 1  # attached to every thread before the load starts
  if ! kill -0 "$AUX_PID" 2>/dev/null; then
    log "   strace did not attach: $(tail -1 "$WORK/strace-$name.err")"
    wait "$AUX_PID" 2>/dev/null || true
    AUX_PID=""
    rm -f "$OUT/strace-$name.txt"
  fi
  run_fg "$@" || rc=$?
  if [ -n "$AUX_PID" ]; then
    kill -INT "$AUX_PID" 2>/dev/null || true
    wait "$AUX_PID" 2>/dev/null || true
    AUX_PID=""
  fi
  return "$rc"
}

# alloc_object EXE: the file whose malloc EXE ends up calling: EXE itself if it defines one
# (a statically linked allocator that overrides malloc), else the first library that does.
alloc_object() {
  local exe="$1" f
  for f in "$exe" $(ldd "$exe" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3}'); do
    if nm -D --defined-only "$f" 2>/dev/null | awk '$3 ~ /^malloc(@|$)/ {found = 1} END {exit !found}'; then
      realpath "$f"; return 0
    fi
  done
}
# malloc_probes: perf uprobes on malloc, calloc, realloc, posix_memalign (and operator new,
# when the allocator library defines it) of the allocator
# nginx and sluice use. Sets ALLOC_EVENTS[nginx|sluice] (comma lists for perf stat -e),
# ALLOC_OBJ[...] (the files probed) or MALLOC_NOTE (why not).
declare -A ALLOC_EVENTS ALLOC_OBJ
MALLOC_NOTE=""
malloc_probes() {
  if ! command -v perf >/dev/null; then MALLOC_NOTE="perf not found (scripts/setup.sh installs linux-perf)"; return 0; fi
  if ! command -v nm >/dev/null; then MALLOC_NOTE="nm not found (binutils)"; return 0; fi
  local t exe obj f ev i=0 evs
  declare -A done_obj=()
  for t in nginx sluice; do
    if [ "$t" = nginx ]; then exe=$(command -v nginx); else exe=$SLUICE; fi
    obj=$(alloc_object "$exe")
    if [ -z "$obj" ]; then MALLOC_NOTE="no malloc found for $exe"; probe_remove; ALLOC_EVENTS=(); return 0; fi
    ALLOC_OBJ[$t]=$obj
    if [ -z "${done_obj[$obj]:-}" ]; then
      evs=()
      # operator new too where the allocator defines its own: mimalloc's new does not call
      # malloc (perf finds it by its C name, mi_new, at the same address as _Znwm and _Znam)
      for f in malloc calloc realloc posix_memalign mi_new mi_new_aligned; do
        nm -D --defined-only "$obj" 2>/dev/null | awk -v f="$f" '$3 == f || index($3, f "@") == 1 {found = 1} END {exit !found}' || continue
        # perf wants event names unique across groups: the pid keeps ours apart from anyone else's
        ev="sluice_bench:${f}_${i}_$$"
        if ! perf probe -q -x "$obj" "$ev=$f" >>"$WORK/perf-probe.err" 2>&1; then
          MALLOC_NOTE="perf probe -x $obj $f failed: $(tail -1 "$WORK/perf-probe.err")"
          probe_remove; ALLOC_EVENTS=(); return 0
        fi
        PROBE_EVENTS+=("$ev"); evs+=("$ev")
      done
      done_obj[$obj]=$(IFS=,; echo "${evs[*]}")
      i=$((i + 1))
    fi
    ALLOC_EVENTS[$t]=${done_obj[$obj]}
  done
  if ! perf stat -x, -e "${ALLOC_EVENTS[sluice]}" -- true >/dev/null 2>"$WORK/perf-check.txt" || ! grep -q '^[0-9]' "$WORK/perf-check.txt"; then
    MALLOC_NOTE="perf stat cannot count the uprobes: $(head -c 200 "$WORK/perf-check.txt" | tr '\n' ' ')"
    probe_remove
    ALLOC_EVENTS=()
  fi
}
# perf_count NAME TARGET PIDS CMD...: CMD in the foreground under perf stat counting TARGET's
# allocation probes in PIDS (all their threads); counts in $OUT/perf-NAME.txt.
perf_count() {
  local name="$1" t="$2" pids="$3"; shift 3
  run_fg perf stat -x, -o "$OUT/perf-$name.txt" -e "${ALLOC_EVENTS[$t]}" -p "$pids" -- "$@"
}

phase_mark start
log "work dir $WORK; sluice $SLUICE; gateway workers $THREADS; mode $([ "$QUICK" = 1 ] && echo quick || echo full); phases ${RUN_PHASES[*]}"

# ------------------------------------------------------------------ mock-llm upstream, gateways in front
TARGETS=(direct nginx portkey sluice)
declare -A URL SAT=()
LAT_RATES=(); TTFT_RATES=(); HALF_NGX=0; HALF_SL=0; NGX_SAT=""; SL_SAT=""; PK_SAT=""
h_for() { if [ "$1" = portkey ]; then HX=("${PK_H[@]}"); else HX=(); fi; }
if [ "$NEED_PK" = 1 ]; then start_portkey; fi
if [ "$NEED_FAST" = 1 ]; then
  start_mock mock-fast --ttft-ms 0 --tpot-ms 0 --output-tokens 1:1
  FAST_PORT=$MOCK_PORT; FAST_PID=$MOCK_PID
  start_nginx nginx-a "$FAST_PORT"; NGX_A_PORT=$NGINX_PORT; NGX_A_PID=$NGINX_PID
  start_sluice sluice-a "$FAST_PORT"; SL_A_PORT=$SLUICE_PORT; SL_A_PID=$SLUICE_PID
  log "upstream :$FAST_PORT  nginx :$NGX_A_PORT  sluice :$SL_A_PORT$([ "$NEED_PK" = 1 ] && echo "  portkey :$PORTKEY_PORT")"
  URL[direct]="http://127.0.0.1:$FAST_PORT/v1/chat/completions"
  URL[nginx]="http://127.0.0.1:$NGX_A_PORT/v1/chat/completions"
  URL[sluice]="http://127.0.0.1:$SL_A_PORT/v1/chat/completions"
  GWPIDS[nginx]=$(nginx_workers "$NGX_A_PID"); GWPIDS[sluice]=$SL_A_PID; GWPIDS[direct]=""
  # Phases 1 and 2 include Portkey; phase 8 alone does not need it.
  A_TARGETS=(direct nginx sluice)
  if want sat || want latency; then
    A_TARGETS=(direct nginx portkey sluice)
    URL[portkey]="http://127.0.0.1:$PORTKEY_PORT/v1/chat/completions"
    portkey_h "$FAST_PORT"
    GWPIDS[portkey]=$PORTKEY_PID
  fi
  for t in "${A_TARGETS[@]}"; do h_for "$t"; sanity "$t" "${URL[$t]}" "${HX[@]}"; done
  log "warm-up"
  for t in "${A_TARGETS[@]}"; do
    h_for "$t"; n=5000; [ "$t" = portkey ] && n=1000
    h2 -n "$n" -c "$SAT_CLIENTS" "${HX[@]}" "${URL[$t]}" >"$WORK/warm-$t.txt"
  done
fi

# ------------------------------------------------------------------ 1. saturation
if want sat; then
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
  NGX_SAT=$(median_rps sat nginx); SL_SAT=$(median_rps sat sluice); PK_SAT=$(median_rps sat portkey)
  SAT=([nginx]="$NGX_SAT" [sluice]="$SL_SAT" [portkey]="$PK_SAT" [direct]="$(median_rps sat direct)")
  # Rates are multiples of 200: h2load paces each client at 200 req/s (its --rps tops out near
  # 250 per client here), so the client count is rate / 200.
  HALF_NGX=$(round200 "$NGX_SAT / 2")
  HALF_SL=$(round200 "$SL_SAT / 2")
fi

# ------------------------------------------------------------------ 2. latency at fixed rates
if want latency; then
  LAT_RATES=(400 1000)
  [ "$HALF_NGX" -gt 1000 ] && LAT_RATES+=("$HALF_NGX")
  # If sluice saturates below nginx, half of nginx's rate may be beyond sluice: also compare
  # at half of sluice's own saturation.
  [ "$HALF_SL" -gt 1000 ] && [ "$HALF_SL" -lt "$HALF_NGX" ] && LAT_RATES+=("$HALF_SL")
  if ! want sat; then
    NOTES+=("latency without phase sat: only 400 and 1000 req/s (the half-saturation rates need the measured saturation); Portkey only at 400 req/s (it saturates near 1,000 req/s)")
  fi
  log "2. latency at fixed rates: ${LAT_RATES[*]} req/s ($LAT_SECONDS s each, 1 s warm-up dropped)"
  for rate in "${LAT_RATES[@]}"; do
    if [ "$rate" -ge 200 ]; then clients=$((rate / 200)); per=200; else clients=1; per=$rate; fi
    n=$((rate * (LAT_SECONDS + 1)))
    for t in "${TARGETS[@]}"; do
      if [ "$t" != direct ] && [ -n "${SAT[$t]:-}" ] && node -e "process.exit(${SAT[$t]} * 0.95 < $rate ? 0 : 1)"; then
        NOTES+=("latency at $rate req/s: $t skipped, the rate is above its measured saturation (${SAT[$t]} req/s)")
        log "   $t skipped at $rate req/s (saturates at ${SAT[$t]})"
        continue
      fi
      [ "$t" = portkey ] && [ -z "${SAT[$t]:-}" ] && [ "$rate" -gt 400 ] && continue
      h_for "$t"
      cpu_snap "$t" "$FAST_PID"
      h2 -n "$n" -c "$clients" --rps "$per" --log-file "$WORK/lat-$rate-$t.log" "${HX[@]}" "${URL[$t]}" >"$WORK/lat-$rate-$t.txt"
      cpu_write "$t" "$FAST_PID" "$n" "$OUT/cpu-lat-$rate-$t.json"
      node "$HELPER" latency "$WORK/lat-$rate-$t.log" --skip-s 1 >"$OUT/lat-$rate-$t.json"
      log "   $rate req/s $t: $(cat "$OUT/lat-$rate-$t.json")"
    done
  done
  phase_mark latency
fi

# ------------------------------------------------------------------ gateway-bound mode (3, 4, 6)
# A static upstream (nginx, one worker, a fixed 314-byte completion) that costs a few
# microseconds per request, with nginx and sluice in front: the gateway is what saturates.
BOUND_UP=0
declare -A BURL BGW
bound_start() {
  [ "$BOUND_UP" = 1 ] && return 0
  start_static static; BST_PORT=$STATIC_PORT; BST_PID=$STATIC_PID
  start_nginx nginx-s "$BST_PORT"; NGX_S_PID=$NGINX_PID; NGX_S_PORT=$NGINX_PORT
  start_sluice sluice-s "$BST_PORT"; SL_S_PID=$SLUICE_PID; SL_S_PORT=$SLUICE_PORT
  BST_WORKERS=$(nginx_workers "$BST_PID")
  BURL[direct]="http://127.0.0.1:$BST_PORT/v1/chat/completions"
  BURL[nginx]="http://127.0.0.1:$NGX_S_PORT/v1/chat/completions"
  BURL[sluice]="http://127.0.0.1:$SL_S_PORT/v1/chat/completions"
  BGW[direct]=""; BGW[nginx]=$(nginx_workers "$NGX_S_PID"); BGW[sluice]=$SL_S_PID
  log "gateway-bound mode: static upstream :$BST_PORT  nginx :$NGX_S_PORT  sluice :$SL_S_PORT"
  local t
  for t in direct nginx sluice; do sanity "bound-$t" "${BURL[$t]}"; done
  for t in direct nginx sluice; do h2 -n 5000 -c "$SAT_CLIENTS" "${BURL[$t]}" >"$WORK/bound-warm-$t.txt"; done
  BOUND_UP=1
}
bound_stop() {
  [ "$BOUND_UP" = 1 ] || return 0
  BOUND_REQLOG_BYTES=$(stat -c %s "$WORK/sluice-s-data/requests.jsonl" 2>/dev/null || echo 0)
  NOTES+=("gateway-bound sluice: request log on (the default), it wrote $BOUND_REQLOG_BYTES bytes; nginx ran with access_log off")
  stop "$SL_S_PID"; stop "$NGX_S_PID"; stop "$BST_PID"
  BOUND_UP=0
}

if want bound; then
  bound_start
  log "3. gateway-bound saturation: $RUNS run(s) x direct nginx sluice (static upstream)"
  for r in $(seq 1 "$RUNS"); do
    for t in direct nginx sluice; do
      read -r U0 S0 < <(cpu_split_of "${BGW[$t]}"); UP0=$(cpu_of "$BST_WORKERS")
      h2 -n "$SAT_N" -c "$SAT_CLIENTS" "${BURL[$t]}" >"$WORK/bound-sat-$t-$r.txt"
      read -r U1 S1 < <(cpu_split_of "${BGW[$t]}"); UP1=$(cpu_of "$BST_WORKERS")
      node -e "console.log(JSON.stringify({gateway_user_s: +($U1 - $U0).toFixed(2), gateway_sys_s: +($S1 - $S0).toFixed(2), upstream_cpu_s: +($UP1 - $UP0).toFixed(2), requests: $SAT_N}))" \
        >"$OUT/cpu-bound-$t-$r.json"
      node "$HELPER" h2load "$WORK/bound-sat-$t-$r.txt" >"$OUT/bound-sat-$t-$r.json"
      log "   run $r $t: $(grep -o 'finished in .*req/s' "$WORK/bound-sat-$t-$r.txt"); gateway CPU $(cat "$OUT/cpu-bound-$t-$r.json")"
    done
  done
  phase_mark bound
fi

if want oneatatime; then
  bound_start
  log "4. one request at a time: h2load -c 1 -n $OAAT_N x direct nginx sluice (static upstream)"
  for t in direct nginx sluice; do
    c0=$(cpu_of "${BGW[$t]}")
    h2 -n "$OAAT_N" -c 1 --log-file "$WORK/oaat-$t.log" "${BURL[$t]}" >"$WORK/oaat-$t.txt"
    c1=$(cpu_of "${BGW[$t]}")
    node -e "console.log(JSON.stringify({gateway_cpu_s: +($c1 - $c0).toFixed(2), requests: $OAAT_N}))" >"$OUT/cpu-oaat-$t.json"
    node "$HELPER" latency "$WORK/oaat-$t.log" --skip-s 1 >"$OUT/oaat-$t.json"
    log "   $t: $(cat "$OUT/oaat-$t.json")"
  done
  phase_mark oneatatime
fi
want syscalls || bound_stop

# ------------------------------------------------------------------ 5. streaming TTFT
if want streaming; then
  log "5. streaming TTFT up to $TTFT_RATE streams/s ($TTFT_SECONDS s each)"
  start_mock mock-stream --ttft-ms 0 --tpot-ms 5 --output-tokens 20:20
  ST_PORT=$MOCK_PORT; ST_PID=$MOCK_PID
  start_nginx nginx-b "$ST_PORT"; NGX_B_PID=$NGINX_PID; NGX_B_PORT=$NGINX_PORT
  start_sluice sluice-b "$ST_PORT"; SL_B_PID=$SLUICE_PID; SL_B_PORT=$SLUICE_PORT
  GWPIDS[nginx]=$(nginx_workers "$NGX_B_PID"); GWPIDS[sluice]=$SL_B_PID; GWPIDS[portkey]=$PORTKEY_PID; GWPIDS[direct]=""
  declare -A SURL
  SURL[direct]="http://127.0.0.1:$ST_PORT/v1/chat/completions"
  SURL[nginx]="http://127.0.0.1:$NGX_B_PORT/v1/chat/completions"
  SURL[sluice]="http://127.0.0.1:$SL_B_PORT/v1/chat/completions"
  SURL[portkey]="http://127.0.0.1:$PORTKEY_PORT/v1/chat/completions"
  portkey_h "$ST_PORT"
  # Portkey cannot take 1,000 streams/s on one event loop (it saturates near ${PK_SAT} req/s
  # without streaming): it streams only at a quarter of its saturation, so its TTFT is
  # overhead, not queueing; direct, nginx and sluice also run at that rate for comparison.
  if [ -n "$PK_SAT" ]; then
    PK_TTFT_RATE=$(node -e "console.log(Math.min($TTFT_RATE, Math.max(50, Math.floor(($PK_SAT || 0) / 4 / 50) * 50)))")
  else
    PK_TTFT_RATE=200
    NOTES+=("streaming without phase sat: Portkey streams at 200/s (a quarter of its usual saturation) instead of a quarter of its measured one")
  fi
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
fi

# ------------------------------------------------------------------ 6. system calls and allocations
if want syscalls; then
  log "6. system calls and allocations: $SYS_N requests, then $SYS_STREAM_RATE streams/s for $SYS_STREAM_SECONDS s, per gateway"
  STRACE_NOTE=""
  command -v strace >/dev/null || STRACE_NOTE="strace not found (scripts/setup.sh installs it)"
  malloc_probes
  [ -n "$MALLOC_NOTE" ] && log "   allocations not counted: $MALLOC_NOTE"
  [ -n "$STRACE_NOTE" ] && log "   system calls not counted: $STRACE_NOTE"
  bound_start
  for t in nginx sluice; do
    if [ -z "$STRACE_NOTE" ]; then
      strace_count "req-$t" "${BGW[$t]}" "${H2LOAD[@]}" -n "$SYS_N" -c "$SAT_CLIENTS" "${BURL[$t]}" >"$WORK/sys-req-$t.txt"
      node "$HELPER" h2load "$WORK/sys-req-$t.txt" >"$OUT/sys-req-$t.json"
      log "   $t per request (strace): $(node "$HELPER" strace "$OUT/strace-req-$t.txt" 2>/dev/null | cut -c1-200)"
    fi
    if [ -n "${ALLOC_EVENTS[$t]:-}" ]; then
      perf_count "req-$t" "$t" "${BGW[$t]}" "${H2LOAD[@]}" -n "$SYS_N" -c "$SAT_CLIENTS" "${BURL[$t]}" >"$WORK/malloc-req-$t.txt"
      node "$HELPER" h2load "$WORK/malloc-req-$t.txt" >"$OUT/malloc-req-$t.json"
      log "   $t per request (perf): $(grep -v '^#' "$OUT/perf-req-$t.txt" | grep . | cut -d, -f1,3 | tr '\n' ' ')"
    fi
  done
  bound_stop
  start_mock mock-sys --ttft-ms 0 --tpot-ms 5 --output-tokens 20:20
  SYS_UP_PORT=$MOCK_PORT; SYS_UP_PID=$MOCK_PID
  start_nginx nginx-t "$SYS_UP_PORT"; NGX_T_PID=$NGINX_PID; NGX_T_PORT=$NGINX_PORT
  start_sluice sluice-t "$SYS_UP_PORT"; SL_T_PID=$SLUICE_PID; SL_T_PORT=$SLUICE_PORT
  declare -A TURL TGW
  TURL[nginx]="http://127.0.0.1:$NGX_T_PORT/v1/chat/completions"; TGW[nginx]=$(nginx_workers "$NGX_T_PID")
  TURL[sluice]="http://127.0.0.1:$SL_T_PORT/v1/chat/completions"; TGW[sluice]=$SL_T_PID
  STREAM_LOAD=(node "$HELPER" ttft --rate "$SYS_STREAM_RATE" --duration "$SYS_STREAM_SECONDS" --warmup-s 0 --body "$STREAM_BODY")
  for t in nginx sluice; do
    run_fg node "$HELPER" ttft --url "${TURL[$t]}" --rate "$SYS_STREAM_RATE" --duration 2 --warmup-s 0 --body "$STREAM_BODY" >/dev/null
    if [ -z "$STRACE_NOTE" ]; then
      strace_count "stream-$t" "${TGW[$t]}" "${STREAM_LOAD[@]}" --url "${TURL[$t]}" >"$OUT/sys-stream-$t.json"
      log "   $t per stream (strace): $(cut -c1-160 "$OUT/sys-stream-$t.json")"
    fi
    if [ -n "${ALLOC_EVENTS[$t]:-}" ]; then
      perf_count "stream-$t" "$t" "${TGW[$t]}" "${STREAM_LOAD[@]}" --url "${TURL[$t]}" >"$OUT/malloc-stream-$t.json"
      log "   $t per stream (perf): $(grep -v '^#' "$OUT/perf-stream-$t.txt" | grep . | cut -d, -f1,3 | tr '\n' ' ')"
    fi
  done
  stop "$SL_T_PID"; stop "$NGX_T_PID"; stop "$SYS_UP_PID"
  probe_remove
  export S_REQS="$SYS_N" S_RATE="$SYS_STREAM_RATE" S_SECS="$SYS_STREAM_SECONDS" S_STRACE_NOTE="$STRACE_NOTE" \
    S_MALLOC_NOTE="$MALLOC_NOTE" S_OBJ_NGINX="${ALLOC_OBJ[nginx]:-}" S_OBJ_SLUICE="${ALLOC_OBJ[sluice]:-}" \
    S_STRACE_V="$(strace -V 2>/dev/null | head -1 || true)" S_PERF_V="$(perf --version 2>/dev/null || true)"
  node -e '
const e = process.env;
const libs = e.S_OBJ_NGINX === e.S_OBJ_SLUICE ? e.S_OBJ_NGINX : `${e.S_OBJ_NGINX} (nginx), ${e.S_OBJ_SLUICE} (sluice)`;
console.log(JSON.stringify({ requests: Number(e.S_REQS), stream_rate: Number(e.S_RATE), stream_seconds: Number(e.S_SECS),
  strace_note: e.S_STRACE_NOTE || null, malloc_note: e.S_MALLOC_NOTE || null, libc: libs || null,
  alloc_objects: { nginx: e.S_OBJ_NGINX || null, sluice: e.S_OBJ_SLUICE || null }, strace: e.S_STRACE_V, perf: e.S_PERF_V }));' >"$OUT/sys-meta.json"
  [ -n "$MALLOC_NOTE" ] && NOTES+=("allocations were not counted: $MALLOC_NOTE")
  [ -n "$STRACE_NOTE" ] && NOTES+=("system calls were not counted: $STRACE_NOTE")
  phase_mark syscalls
fi

# ------------------------------------------------------------------ 7. memory per stream
if want memory; then
  log "7. memory per open stream: $STREAMS concurrent streams"
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
    # warm the gateway (allocator, upstream pool) with 100 streams before the measured ones
    run_fg node "$HELPER" hold --url "$url" --streams 100 --body "$STREAM_BODY" --pids "$pids" "${HDR[@]}" --settle-ms 500 >/dev/null
    run_fg node "$HELPER" hold --url "$url" --streams "$STREAMS" --body "$STREAM_BODY" --pids "$pids" "${HDR[@]}" \
      --timeout-s $((MEM_TOKENS / 3)) --rounds 2 >"$OUT/mem-$t.json"
    log "   $t: $(cat "$OUT/mem-$t.json")"
    if [ -n "$GW_PID" ]; then stop "$GW_PID"; fi
    stop "$SLOW_PID"
  done
  phase_mark memory
fi

# ------------------------------------------------------------------ 8. RSS flatness
if want flat; then
  if [ -z "$SL_SAT" ]; then
    log "8. (phase sat not run: one saturation run of sluice to set the rate)"
    h2 -n "$SAT_N" -c "$SAT_CLIENTS" "${URL[sluice]}" >"$WORK/flat-sat.txt"
    SL_SAT=$(node "$HELPER" h2load "$WORK/flat-sat.txt" | node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>console.log(JSON.parse(s).rps||0))")
    NOTES+=("RSS run without phase sat: its rate is half of one sluice saturation run made just before it ($SL_SAT req/s)")
  fi
  FLAT_RATE=$(round200 "$SL_SAT / 2")
  log "8. sluice RSS over $FLAT_SECONDS s at $FLAT_RATE req/s (sample every $FLAT_INTERVAL s)"
  stop "$NGX_A_PID"; [ "$NEED_PK" = 1 ] && stop "$PORTKEY_PID"
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
fi

SL_METRICS=""
if [ "$NEED_FAST" = 1 ]; then
  SL_METRICS=$(curl -s "http://127.0.0.1:$SL_A_PORT/metrics" | grep -E '^sluice_(requests|upstream_errors|request_log)' | head -20 || true)
  REQLOG_BYTES=$(stat -c %s "$WORK/sluice-a-data/requests.jsonl" 2>/dev/null || echo 0)
  A_PHASES=""
  for p in sat:1 latency:2 flat:8; do want "${p%%:*}" && A_PHASES+="${p#*:} "; done
  NOTES+=("sluice request log (on, the default) wrote $REQLOG_BYTES bytes in phases ${A_PHASES}(mock-llm upstream); nginx ran with access_log off")
fi
# Stop whatever is still running (each stop is a no-op for a pid already stopped).
for p in "${PIDS[@]}"; do stop "$p"; done

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
PK_VERSION="-"
[ -f "$HERE/node_modules/@portkey-ai/gateway/package.json" ] && PK_VERSION="@portkey-ai/gateway $(node -e "console.log(require('$HERE/node_modules/@portkey-ai/gateway/package.json').version)")"
export B_DATE="$DATE" B_HOST="$HOST" B_QUICK="$QUICK" B_THREADS="$THREADS" B_SAT_N="$SAT_N" B_PK_SAT_N="$PORTKEY_SAT_N" \
  B_RUNS="$RUNS" B_CLIENTS="$SAT_CLIENTS" B_RATES="${LAT_RATES[*]}" B_HALF="$HALF_NGX" B_HALF_SL="$HALF_SL" B_TTFT_RATES="${TTFT_RATES[*]}" \
  B_TTFT_S="$TTFT_SECONDS" B_STREAMS="$STREAMS" B_MEM_TOKENS="$MEM_TOKENS" B_BODY="$(cat "$BODY")" \
  B_PHASES="${RUN_PHASES[*]}" B_OAAT_N="$OAAT_N" \
  B_NPROC="$(nproc)" B_CPU="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)" B_KERNEL="$(uname -r)" \
  B_OS="$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")" \
  B_MEM="$(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)" \
  B_SLUICE_V="$SLUICE_ID" B_PRIORITY="$PRIORITY" \
  B_GIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (dirty)')" \
  B_NGINX_V="$(nginx -v 2>&1 | sed 's/^nginx version: //')" B_H2LOAD_V="$(h2load --version | head -1)" \
  B_NODE_V="$(node --version)" B_PK_V="$PK_VERSION" \
  B_NOTES="$(printf '%s\n' "${NOTES[@]}")"
node -e '
const e = process.env;
const nums = (s) => s.split(" ").filter(Boolean).map(Number);
const labels = {};
if (Number(e.B_HALF_SL) > 0) labels[Number(e.B_HALF_SL)] = "half of sluice saturation";
if (Number(e.B_HALF) > 0) labels[Number(e.B_HALF)] = "half of nginx saturation";
console.log(JSON.stringify({
  date: e.B_DATE, host: e.B_HOST, quick: e.B_QUICK === "1",
  phases: e.B_PHASES.split(" ").filter(Boolean),
  targets: ["direct", "nginx", "portkey", "sluice"],
  gateway_threads: Number(e.B_THREADS),
  upstream: "sluice mock-llm --threads 1 --ttft-ms 0 --tpot-ms 0 --output-tokens 1:1 (314-byte JSON completion)",
  bound_upstream: "nginx, 1 worker, return 200 with a fixed 314-byte JSON completion (bench/nginx-static.conf.template)",
  body: e.B_BODY,
  sat_clients: Number(e.B_CLIENTS), sat_requests: `${e.B_SAT_N} (Portkey ${e.B_PK_SAT_N})`, sat_runs: Number(e.B_RUNS),
  bound_requests: Number(e.B_SAT_N), bound_runs: Number(e.B_RUNS), oaat_requests: Number(e.B_OAAT_N),
  latency_rates: nums(e.B_RATES), latency_labels: labels,
  ttft_rates: nums(e.B_TTFT_RATES), ttft_duration_s: Number(e.B_TTFT_S),
  mem_streams: Number(e.B_STREAMS), mem_tokens: Number(e.B_MEM_TOKENS),
  machine: { nproc: Number(e.B_NPROC), cpu: e.B_CPU, kernel: e.B_KERNEL, os: e.B_OS, memory: e.B_MEM, "benchmark priority": e.B_PRIORITY },
  versions: { sluice: `${e.B_SLUICE_V} (source tree at git ${e.B_GIT})`, nginx: e.B_NGINX_V, h2load: e.B_H2LOAD_V, node: e.B_NODE_V, portkey: e.B_PK_V },
  notes: e.B_NOTES.split("\n").filter(Boolean),
}, null, 2));' >"$OUT/meta.json"
mkdir -p "$HERE/results"
RES="$HERE/results/$DATE-$HOST"
node "$HELPER" report --dir "$OUT" --md "$RES.md" --json "$RES.json"
log "results: $RES.md and $RES.json"
cat "$RES.md"
