#!/usr/bin/env bash
# Installs everything sluice needs to build, test, benchmark and demo on Debian 12.
# Idempotent: safe to re-run; installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential cmake ninja-build ccache pkg-config git
      libboost-dev libboost-system-dev libssl-dev libsimdjson-dev libyaml-cpp-dev
      libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev libmimalloc-dev
      clang libclang-rt-14-dev python3
      nghttp2-client nginx-light curl procps openssl strace linux-perf
      prometheus postgresql libpq-dev redis-server libhiredis-dev libsqlite3-dev
      nodejs npm chromium)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs may come from outside Debian's package (e.g. NodeSource) on dev machines: accept any node >= 18.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
pkgs_to_install=()
for p in "${missing[@]}"; do [ -n "$p" ] && pkgs_to_install+=("$p"); done
if [ ${#pkgs_to_install[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${pkgs_to_install[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${pkgs_to_install[@]}" >/dev/null
fi
# Debian's nginx package starts a system nginx on port 80; the benchmarks start their own.
if pgrep -x nginx >/dev/null 2>&1 && [ -f /run/nginx.pid ]; then
  (systemctl stop nginx 2>/dev/null || service nginx stop 2>/dev/null || nginx -s stop 2>/dev/null) || true
fi

# Debian's prometheus package starts a system Prometheus on :9090 (and its node exporter on
# :9100); the integration test starts its own on a free port, with its own data.
if pgrep -x prometheus >/dev/null 2>&1 || pgrep -f prometheus-node-exporter >/dev/null 2>&1; then
  for svc in prometheus prometheus-node-exporter; do
    (systemctl stop "$svc" 2>/dev/null || service "$svc" stop 2>/dev/null) || true
  done
fi

# npm packages for the integration tests (the official OpenAI SDK) and the benchmark peer.
if [ ! -d tests/integration/node_modules/openai ] || [ ! -d tests/integration/node_modules/playwright-core ]; then
  (cd tests/integration && npm ci --no-audit --no-fund --loglevel=error 2>/dev/null || npm install --no-audit --no-fund --loglevel=error)
fi
# The dashboard (ui/): built with npm into ui/dist, which cmake embeds in the binary
# (src/ui/CMakeLists.txt), so this runs before any configure. Rebuilt only when missing or
# older than its sources.
if [ ! -d ui/node_modules/uplot ] || [ ! -x ui/node_modules/.bin/esbuild ]; then
  (cd ui && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -f ui/dist/index.html ] || [ -n "$(find ui/src ui/build.mjs ui/package.json ui/package-lock.json -newer ui/dist/index.html 2>/dev/null | head -1)" ]; then
  echo "setup: building the dashboard (ui/dist)"
  (cd ui && npm run --silent build)
fi
# promptfoo (and Node 22, which it needs, as the npm package `node`) for the promptfoo parity test.
if [ ! -x tests/parity/node_modules/.bin/promptfoo ] || [ ! -x tests/parity/node_modules/.bin/node ]; then
  (cd tests/parity && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "setup: ok"
