#!/usr/bin/env bash
# bench/rollback.sh: automatic rollback under load. A canary at 5 % of ~1,000 req/s (h2load)
# with the guardrail "error_rate <= stable + 0.01"; after a few seconds the candidate's model
# starts failing every request. Reports, per trial: time from the fault to the rollback
# decision, requests the candidate saw, the time from the decision to the last request the
# candidate received (the controller's rollback_settled event), and client-visible failures
# (h2load status codes: the stable fallback should keep them at 0).
#   bench/rollback.sh [--trials N] [--rate R] [--weight PCT] [--sluice PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=3 RATE=1000 WEIGHT=5 SLUICE=build/release/sluice
while [ $# -gt 0 ]; do
  case "$1" in
    --trials) TRIALS="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    --weight) WEIGHT="$2"; shift 2 ;;
    --sluice) SLUICE="$2"; shift 2 ;;
    *) echo "rollback.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
. bench/lib.sh
command -v h2load >/dev/null || { echo "rollback.sh: h2load (nghttp2-client) is needed" >&2; exit 2; }

cat > "$W/stable.yaml" <<YAML
route: bench
model: {upstream: mock, id: m-stable}
params: {max_tokens: 16}
YAML
cat > "$W/spec.yaml" <<YAML
strategy: canary
alpha: 0.01
steps: [{setWeight: $WEIGHT}, {pause: 1h}, {setWeight: 100}]
gates: [{check: "error_rate <= stable + 0.01", min_samples: 30}]
YAML
echo '{"model":"bench","messages":[{"role":"user","content":"hello"}]}' > "$W/body.json"
D="$W/data"
start_pair "$SLUICE"
A="http://127.0.0.1:$AP"
TOKEN=$(cat "$D/admin.token")
"$SLUICE" release create "$W/stable.yaml" --data-dir "$D" > "$W/stable.id"
"$SLUICE" route promote bench "$(cat "$W/stable.id")" --data-dir "$D" >/dev/null
CLIENTS=$(( (RATE + 199) / 200 ))
echo "rate $RATE req/s ($CLIENTS h2load clients), candidate weight $WEIGHT %, $TRIALS trials"
printf '%-6s %-14s %-16s %-24s %-10s\n' trial detect_ms cand_requests decision_to_last_ms non2xx
for t in $(seq "$TRIALS"); do
  sed "s/m-stable/m-cand-$t/" "$W/stable.yaml" > "$W/cand.yaml"
  CAND=$("$SLUICE" release create "$W/cand.yaml" --data-dir "$D")
  curl -s -XDELETE "http://127.0.0.1:$MP/mock/faults" >/dev/null
  h2load --h1 -c "$CLIENTS" -m 1 --rps 200 -D 14 -d "$W/body.json" -H 'content-type: application/json' \
    "http://127.0.0.1:$GP/v1/chat/completions" > "$W/h2load.$t" 2>&1 &
  H=$!
  sleep 1
  "$SLUICE" rollout start bench --to "$CAND" --spec "$W/spec.yaml" --override --reason bench --data-dir "$D" >/dev/null
  sleep 4
  FAULT_MS=$(date +%s%3N)
  curl -s -XPOST "http://127.0.0.1:$MP/mock/faults" -d "{\"model\":\"m-cand-$t\",\"error_rate\":1.0}" >/dev/null
  wait $H
  sleep 1.5
  curl -s -H "Authorization: Bearer $TOKEN" "$A/admin/v1/rollouts/bench" > "$W/status.$t"
  python3 - "$W/status.$t" "$FAULT_MS" "$W/h2load.$t" "$t" <<'PY'
import json, re, sys
st = json.load(open(sys.argv[1])); fault = int(sys.argv[2]); h2 = open(sys.argv[3]).read()
rb = [e for e in st["events"] if e["kind"] == "rollback"]
settled = [e for e in st["events"] if e["kind"] == "rollback_settled"]
codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", h2)
non2xx = sum(int(x) for x in codes.groups()[1:]) if codes else -1
detect = rb[0]["at"] - fault if rb else -1
last = settled[0]["detail"]["last_candidate_after_ms"] if settled else -1
print(f"{sys.argv[4]:<6} {detect:<14} {st['live']['candidate']['requests']:<16} {last:<24} {non2xx:<10}  {st['status']}")
PY
done
