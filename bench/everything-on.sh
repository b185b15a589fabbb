#!/usr/bin/env bash
# bench/everything-on.sh: what the whole hot path costs compared with plain proxying. One
# gateway (one worker), two fast upstreams (mock-llm, 1-token answers), two kinds of
# request served by the same process in interleaved runs:
#   plain         - a pass-through model: "mock-plain" is in upstream mock-a's `models`, so it
#                   is forwarded as it is (no route, no release, no prompt, no balancer); the
#                   request carries the key of a tenant without limits (see below)
#   everything on - route "tutor", served by a release with a system prompt rendered from a
#                   variable and pinned params, with a canary at 5 % to a second release
#                   (as in rollout-overhead.sh), requested with the key of a tenant with rpm
#                   and tpm limits (far above what the bench sends: never a refusal), its
#                   model on pool "mocks" (mock-a + mock-b, least_request); the request log
#                   is on (the default) for both
# Why plain sends a key: once the store has a tenant, every data-plane request needs one
# (401 without; checked below), so plain uses the key of tenant "open", which has no
# settings and therefore no limits (no rate-limit headers, no buckets).
# Gateway CPU per request and saturation throughput, interleaved runs, medians, ratio.
# The goal: everything on costs at most 1.15x the CPU per request of plain proxying.
#
#   bench/everything-on.sh [--runs N] [--requests N] [--sluice PATH]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
die() { echo "everything-on.sh: $*" >&2; exit 1; }
source "$HERE/lib.sh"
bench_args everything-on.sh "$@"
D="$W/data"
mkdir -p "$D" "$W/rel"

# Two upstreams in one pool; mock-a also serves the pass-through model of plain.
start_mock "$SLUICE"; MA=$MOCK_PORT
start_mock "$SLUICE"; MB=$MOCK_PORT
cat > "$W/gw.yaml" <<Y
upstreams:
  - {name: mock-a, url: "http://127.0.0.1:$MA/v1", models: [mock-plain]}
  - {name: mock-b, url: "http://127.0.0.1:$MB/v1"}
pools:
  - {name: mocks, upstreams: [mock-a, mock-b], balance: least_request}
Y
"$SLUICE" config check "$W/gw.yaml" >/dev/null || die "the gateway config is invalid"

# The release route with a rendered prompt, and a running 5 % canary to a second release.
cat > "$W/rel/prompt.yaml" <<'P'
system: "You are a concise assistant for the {{team}} team. Answer in one sentence."
P
for v in 1 2; do
  cat > "$W/rel/tutor-$v.yaml" <<R
route: tutor
model: {upstream: mocks, id: mock-model-v$v}
prompt: {file: prompt.yaml, mode: prepend_system}
params: {temperature: 0, max_tokens: 16}
R
done
STABLE=$("$SLUICE" release create "$W/rel/tutor-1.yaml" --data-dir "$D" | cut -d' ' -f1)
"$SLUICE" route promote tutor "$STABLE" --data-dir "$D" >/dev/null
CAND=$("$SLUICE" release create "$W/rel/tutor-2.yaml" --data-dir "$D" | cut -d' ' -f1)
cat > "$W/spec.yaml" <<'Y'
strategy: canary
steps: [{setWeight: 5}, {pause: 24h}, {setWeight: 100}]
gates: [{check: "error_rate <= stable + 0.01", min_samples: 100}]
Y
"$SLUICE" rollout start tutor --to "$CAND" --spec "$W/spec.yaml" --override --reason bench --data-dir "$D" >/dev/null

# Tenants: "metered" has limits that never refuse here (one worker answers < 100,000 req/s
# = 6M rpm, and a request reserves < 400 tokens = 40M tokens/s at most); "open" has none.
RPM=60000000
TPM=6000000000
"$SLUICE" tenant create metered --rpm "$RPM" --tpm "$TPM" --reason bench --data-dir "$D" >/dev/null
"$SLUICE" tenant create open --reason bench --data-dir "$D" >/dev/null
key_of() { "$SLUICE" key create "$1" --label bench --reason bench --data-dir "$D" | sed -n 's/.*"key":"\([^"]*\)".*/\1/p'; }
KEY_METERED=$(key_of metered)
KEY_OPEN=$(key_of open)
[ -n "$KEY_METERED" ] && [ -n "$KEY_OPEN" ] || die "could not create the tenants' keys"

start_gateway "$SLUICE" --config "$W/gw.yaml"
printf '{"model":"mock-plain","messages":[{"role":"user","content":"Say hi"}],"max_tokens":16}' > "$W/plain.json"
printf '{"model":"tutor","vars":{"team":"platform"},"messages":[{"role":"user","content":"Say hi"}]}' > "$W/everything.json"
AUTH_OPEN=(-H "authorization: Bearer $KEY_OPEN")
AUTH_METERED=(-H "authorization: Bearer $KEY_METERED")
URL="http://127.0.0.1:$GP/v1/chat/completions"
ADMIN=(-H "Authorization: Bearer $(cat "$D/admin.token")")
sleep 0.3

# --- Sanity checks: every piece is really on the path, before anything is measured. ---
rollout_json() { curl -sf "${ADMIN[@]}" "http://127.0.0.1:$AP/admin/v1/rollouts/tutor"; }
R0=$(rollout_json) || die "could not read the rollout's status"
grep -q '"status":"running".*"weight":5' <<<"$R0" || die "the canary is not running at 5 %"
# headers of one request: head BODY [curl args...] -> lower-cased header lines, no CR
head_of() { local b="$1"; shift; curl -s -o /dev/null -D - "$URL" -H 'content-type: application/json' -d @"$W/$b.json" "$@" | tr -d '\r' | tr 'A-Z' 'a-z'; }
H=$(head_of plain)
grep -q '^http/1.1 401' <<<"$H" || die "plain without a key was not refused with a 401 (then plain should send no key): $H"
H=$(head_of plain "${AUTH_OPEN[@]}")
grep -q '^http/1.1 200' <<<"$H" || die "plain: not a 200: $H"
grep -q '^x-sluice-upstream: mock-a$' <<<"$H" || die "plain: not served by mock-a: $H"
! grep -q -e '^x-sluice-release:' -e '^x-ratelimit-' <<<"$H" || die "plain: has release or rate-limit headers: $H"
# 400 sequential requests: P(no canary answer at 5 %) = 0.95^400, about 1e-9.
: > "$W/heads"
for _ in $(seq 400); do head_of everything "${AUTH_METERED[@]}" >> "$W/heads"; done
[ "$(grep -c '^http/1.1 200' "$W/heads")" = 400 ] || die "everything on: not every sanity request got a 200"
[ "$(grep -c "^x-sluice-release: \($STABLE\|$CAND\)$" "$W/heads")" = 400 ] || die "everything on: a response without x-sluice-release $STABLE or $CAND"
[ "$(grep -c '^x-sluice-prompt: p_' "$W/heads")" = 400 ] || die "everything on: a response without x-sluice-prompt"
[ "$(grep -c "^x-ratelimit-limit-requests: $RPM$" "$W/heads")" = 400 ] || die "everything on: a response without x-ratelimit-limit-requests: $RPM"
[ "$(grep -c "^x-ratelimit-limit-tokens: $TPM$" "$W/heads")" = 400 ] || die "everything on: a response without x-ratelimit-limit-tokens: $TPM"
NS=$(grep -c "^x-sluice-release: $STABLE$" "$W/heads" || true)
NC=$(grep -c "^x-sluice-release: $CAND$" "$W/heads" || true)
UA=$(grep -c '^x-sluice-upstream: mock-a$' "$W/heads" || true)
UB=$(grep -c '^x-sluice-upstream: mock-b$' "$W/heads" || true)
[ "$NC" -gt 0 ] && [ "$NS" -gt 0 ] || die "everything on: stable $STABLE answered $NS, canary $CAND answered $NC of 400"
[ "$UA" -gt 0 ] && [ "$UB" -gt 0 ] || die "everything on: mock-a answered $UA, mock-b $UB of 400"
echo "sanity (400 requests, everything on): stable $STABLE $NS, canary $CAND $NC; mock-a $UA, mock-b $UB; rate-limit headers on all"

mock_requests() { curl -sf "http://127.0.0.1:$1/mock/stats" | sed -n 's/.*"requests":\([0-9]*\).*/\1/p'; }
log_lines() { wc -l < "$D/requests.jsonl"; }
check_ok() { [ "$LAST_OK" = "$N" ] || die "$1: only $LAST_OK of $N responses were 2xx (refused by a limit?)"; }

# Warm-up, one run each, also checked: all 2xx, the balancer spreads the load under
# concurrency, plain touches only mock-a, the request log grows.
A0=$(mock_requests "$MA"); B0=$(mock_requests "$MB"); L0=$(log_lines)
measure plain "${AUTH_OPEN[@]}"; check_ok "plain (warm-up)"
A1=$(mock_requests "$MA"); B1=$(mock_requests "$MB")
[ "$((A1 - A0))" -ge "$N" ] && [ "$B1" = "$B0" ] || die "plain: mock-a got $((A1 - A0)), mock-b $((B1 - B0)) of $N"
measure everything "${AUTH_METERED[@]}"; check_ok "everything on (warm-up)"
A2=$(mock_requests "$MA"); B2=$(mock_requests "$MB")
for got in $((A2 - A1)) $((B2 - B1)); do
  [ "$got" -ge "$((N / 10))" ] || die "everything on: the pool is not balanced: mock-a got $((A2 - A1)), mock-b $((B2 - B1)) of $N"
done
sleep 0.5
L1=$(log_lines)
[ "$((L1 - L0))" -gt 0 ] || die "the request log did not grow"
echo "warm-up (everything on, $N requests, 32 clients): mock-a $((A2 - A1)), mock-b $((B2 - B1)); request log +$((L1 - L0)) lines over both warm-ups"

RPS_A=(); RPS_B=(); CPU_A=(); CPU_B=(); OP=(); OE=()
for _ in $(seq "$RUNS"); do
  measure plain "${AUTH_OPEN[@]}"; check_ok plain; RPS_A+=("$LAST_RPS"); CPU_A+=("$LAST_CPU"); OP+=("$LAST_OTHER")
  measure everything "${AUTH_METERED[@]}"; check_ok "everything on"; RPS_B+=("$LAST_RPS"); CPU_B+=("$LAST_CPU"); OE+=("$LAST_OTHER")
done
rollout_json > "$W/rollout.json" || die "could not read the rollout's status"
grep -q '"status":"running".*"weight":5' "$W/rollout.json" || die "the canary is no longer running at 5 % (rolled back during the bench?)"
SHARE=$(python3 -c 'import json,sys; l=json.load(open(sys.argv[1]))["live"]; s,c=l["stable"]["requests"],l["candidate"]["requests"]; print("%.2f %% of %d" % (100*c/(s+c), s+c))' "$W/rollout.json")

compare_report plain "everything on" "plain proxying" "everything on"
awk -v r="$CPU_RATIO" 'BEGIN {printf "goal: CPU per request at most 1.15x plain: %s\n", (r<=1.15)?"met":"NOT met"}'
echo "other work on the machine, % of its CPU per run: plain ${OP[*]}, everything on ${OE[*]}"
printf '%s\n' "${OP[@]}" "${OE[@]}" | awk '$1 > 5 {bad=1} END {exit !bad}' \
  && echo "WARNING: other processes used more than 5 % of the machine during a run: the figures are tainted; re-run on an idle machine"
echo "canary share of the tutor route (rollout's live counts): $SHARE; request log: $(log_lines) lines, $(stat -c %s "$D/requests.jsonl") bytes"
