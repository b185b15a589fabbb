#!/usr/bin/env bash
# bench/bridge.sh: what the API translations cost. One gateway (one worker), one fast
# upstream (mock-llm, 1-token answers), the same question asked four ways in interleaved runs:
#   chat       - POST /v1/chat/completions, relayed as it is (the baseline)
#   responses  - POST /v1/responses, bridged to chat completions and back (and stored for
#                previous_response_id: the default `store: true`)
#   messages   - POST /v1/messages (Anthropic's API), bridged to chat completions and back
#   anthropic  - POST /v1/chat/completions to an upstream with `api: anthropic`: the request
#                translated to Anthropic's Messages API, its answer back to chat
# Gateway CPU per request (user+system) and saturation throughput, medians; each way's CPU
# per request as a ratio to chat's.
#
#   bench/bridge.sh [--runs N] [--requests N] [--sluice PATH]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
die() { echo "bridge.sh: $*" >&2; exit 1; }
source "$HERE/lib.sh"
bench_args bridge.sh "$@"

start_mock "$SLUICE"; MP=$MOCK_PORT
cat > "$W/gw.yaml" <<Y
upstreams:
  - {name: mock, url: "http://127.0.0.1:$MP/v1"}
  - {name: claude, url: "http://127.0.0.1:$MP/v1", api: anthropic, api_key_env: BENCH_ANTHROPIC_KEY}
routes:
  - {name: bot, upstream: mock, model: mock-model}
  - {name: sonnet, upstream: claude, model: claude-model}
Y
export BENCH_ANTHROPIC_KEY=sk-ant-bench
start_gateway "$SLUICE" --config "$W/gw.yaml"
printf '{"model":"bot","messages":[{"role":"user","content":"Say hi"}],"max_tokens":16}' > "$W/chat.json"
printf '{"model":"bot","input":"Say hi","max_output_tokens":16}' > "$W/responses.json"
printf '{"model":"bot","max_tokens":16,"messages":[{"role":"user","content":"Say hi"}]}' > "$W/messages.json"
printf '{"model":"sonnet","messages":[{"role":"user","content":"Say hi"}],"max_tokens":16}' > "$W/anthropic.json"
declare -A PATH_OF=([chat]=/v1/chat/completions [responses]=/v1/responses [messages]=/v1/messages [anthropic]=/v1/chat/completions)
WAYS=(chat responses messages anthropic)
sleep 0.3

# Sanity: each way answers in its own shape, before anything is measured.
ask() { curl -sf "http://127.0.0.1:$GP${PATH_OF[$1]}" -H 'content-type: application/json' -d @"$W/$1.json"; }
ask chat | grep -q '"object":"chat.completion"' || die "chat: not a chat completion"
ask responses | grep -q '"object":"response"' || die "responses: not a response object"
ask messages | grep -q '"type":"message"' || die "messages: not an Anthropic message"
ask anthropic | grep -q '"model":"claude-model"' || die "anthropic: not answered by the Anthropic upstream"
echo "sanity: every way answers in its own shape"

declare -A RPS CPU
for w in "${WAYS[@]}"; do MEASURE_PATH=${PATH_OF[$w]} measure "$w"; done  # warm-up
for _ in $(seq "$RUNS"); do
  for w in "${WAYS[@]}"; do
    MEASURE_PATH=${PATH_OF[$w]} measure "$w"
    [ "$LAST_OK" = "$N" ] || die "$w: only $LAST_OK of $N responses were 2xx"
    RPS[$w]+="$LAST_RPS "; CPU[$w]+="$LAST_CPU "
  done
done
# shellcheck disable=SC2086
BASE=$(median ${CPU[chat]})
for w in "${WAYS[@]}"; do
  # shellcheck disable=SC2086
  m=$(median ${CPU[$w]}); r=$(median ${RPS[$w]})
  awk -v w="$w" -v m="$m" -v b="$BASE" -v r="$r" -v runs="${CPU[$w]}" \
    'BEGIN {printf "%-10s gateway CPU us/request median %6.2f (runs %s)  %8.0f req/s  ratio to chat %.3f\n", w, m, runs, r, m/b}'
done
