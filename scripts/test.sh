#!/usr/bin/env bash
# Sets everything up and runs every test: unit tests and fuzz-corpus regressions under
# ASan+UBSan and TSan, the integration suite (real sockets, official OpenAI SDK) against the
# ASan+UBSan gateway and the TSan gateway, the promptfoo parity test (tests/parity, once,
# ASan+UBSan), and a short libFuzzer run of each fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_DIR="${CCACHE_DIR:-$PWD/build/.ccache}"
JOBS="${JOBS:-$(nproc)}"
FUZZ_SECONDS="${FUZZ_SECONDS:-20}"

step() { printf '\n=== %s ===\n' "$*"; }

step "setup"
scripts/setup.sh

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"

# ASan+UBSan: everything. TSan: the gateway binary (every integration test runs against it)
# and the unit tests of code that runs on several threads; the pure single-threaded modules
# (parsers, statistics, suites) gain nothing from it and would double the build time.
TSAN_TESTS="store_test sharedlimits_test metrics_test pipeline_test gateway_test config_test upstream_test rollout_test admission_test otel_test incident_test alarm_test"
for preset in asan-ubsan tsan; do
  step "build ($preset)"
  cmake --preset "$preset" >/dev/null
  if [ "$preset" = tsan ]; then
    cmake --build "build/$preset" -j"$JOBS" --target sluice $TSAN_TESTS
    step "unit tests ($preset: $TSAN_TESTS)"
    ctest --test-dir "build/$preset" --output-on-failure -j"$JOBS" -L "^($(echo $TSAN_TESTS | tr ' ' '|'))\$"
  else
    cmake --build "build/$preset" -j"$JOBS"
    step "unit tests and fuzz corpus ($preset)"
    ctest --test-dir "build/$preset" --output-on-failure -j"$JOBS"
  fi
  step "integration tests ($preset gateway, official OpenAI SDK)"
  (cd tests/integration && SLUICE_BIN="$PWD/../../build/$preset/sluice" SLUICE_SANITIZER="$preset" npm test)
  if [ "$preset" = asan-ubsan ]; then
    # Once (not under TSan): the same suite run by promptfoo and by `sluice eval run`.
    step "promptfoo parity ($preset gateway and eval)"
    (cd tests/parity && SLUICE_BIN="$PWD/../../build/$preset/sluice" SLUICE_SANITIZER="$preset" npm test)
    # The Helm chart (Helm is not installed): its flags, variables, probes and config against the binary.
    step "deployment chart lint ($preset binary)"
    SLUICE_BIN="$PWD/build/$preset/sluice" node --test tests/deploy/helm_chart.test.mjs
  fi
done

if command -v clang++ >/dev/null 2>&1; then
  step "libFuzzer (${FUZZ_SECONDS}s per target)"
  cmake --preset fuzz >/dev/null
  cmake --build build/fuzz -j"$JOBS"
  for t in request sse answer rollout bridge flags pii; do
    mkdir -p "build/fuzz/corpus-$t"
    "build/fuzz/fuzz/${t}_fuzz" -max_total_time="$FUZZ_SECONDS" -max_len=4096 "build/fuzz/corpus-$t" "fuzz/corpus/$t" 2>&1 | tail -2
  done
fi

step "all tests passed"
