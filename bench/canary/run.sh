#!/usr/bin/env bash
# bench/canary/run.sh: build canary_sim (release preset, through the shared build lock) and run
# it. Writes bench/canary/results/<date>.md (the Markdown tables) and <date>.json.
# Arguments go to canary_sim, e.g. `bench/canary/run.sh --aa-runs 5000 --reg-runs 1000`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
flock /tmp/sluice-build.lock cmake --build build/release --target canary_sim
out=bench/canary/results
mkdir -p "$out"
stamp="$(date -u +%Y-%m-%d)"
{
  echo "# canary_sim, $stamp"
  echo
  echo "Command: \`bench/canary/run.sh $*\` (working tree at commit $(git rev-parse --short HEAD); $(nproc) cores, one used)."
  echo
  build/release/src/stats/canary_sim --json "$out/$stamp.json" "$@"
} | tee "$out/$stamp.md"
