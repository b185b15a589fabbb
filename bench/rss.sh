#!/usr/bin/env bash
# bench/rss.sh: resident memory of the gateway over a sustained run (default 10 minutes at
# 16,000 req/s, about half of saturation on the 2-core machine), sampled every 10 s.
#   bench/rss.sh [--seconds N] [--rate R] [--sluice PATH]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
SLUICE="${SLUICE_BIN:-$ROOT/build/release/sluice}"
SECONDS_RUN=600
RATE=16000
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_RUN="$2"; shift ;;
    --rate) RATE="$2"; shift ;;
    --sluice) SLUICE="$2"; shift ;;
    *) echo "rss.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
source "$HERE/lib.sh"
start_pair "$SLUICE"
GW=$GW_PID
printf '{"model":"mock","messages":[{"role":"user","content":"Say hi"}],"max_tokens":16}' > "$W/body.json"
rss() { awk '/VmRSS/ {print $2}' "/proc/$GW/status"; }
CLIENTS=$(( (RATE + 199) / 200 ))  # h2load paces each client at up to ~200 req/s here
echo "rate $RATE req/s with $CLIENTS clients for $SECONDS_RUN s; RSS (KiB) before load: $(rss)"
h2load --h1 -c "$CLIENTS" -m 1 --rps 200 -D "$SECONDS_RUN" -d "$W/body.json" -H 'content-type: application/json' \
  "http://127.0.0.1:$GP/v1/chat/completions" > "$W/h2load.out" 2>&1 &
H=$!
SAMPLES=()
START=$(date +%s)
while kill -0 "$H" 2>/dev/null; do
  sleep 10
  kill -0 "$H" 2>/dev/null || break
  S="$(( $(date +%s) - START ))s:$(rss)"
  SAMPLES+=("$S"); echo "  $S"
done
wait "$H" || true
grep -E "^requests:|finished in" "$W/h2load.out"
printf '%s\n' "${SAMPLES[@]}" | awk -F: '{v[NR]=$2} END {
  first=v[1]; last=v[NR]; max=first; for (i=1;i<=NR;i++) if (v[i]>max) max=v[i];
  printf "RSS first %.1f MiB, last %.1f MiB, max %.1f MiB: last vs first %+.2f%%, max vs first %+.2f%%\n",
    first/1024, last/1024, max/1024, (last/first-1)*100, (max/first-1)*100 }'
