#!/usr/bin/env bash
# A throwaway PostgreSQL on loopback for tests: no system service, no fixed port.
#   scripts/pg-test-server.sh start DIR   initdb in DIR, start on a free port, print the port
#   scripts/pg-test-server.sh stop DIR    stop it (immediate: tests do not need a clean stop)
#   scripts/pg-test-server.sh restart DIR start it again on its port (after a crash: crash recovery)
# As root, the server runs as the `postgres` user (initdb refuses root).
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?directory}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 2; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case $cmd in
start)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1
  for _ in $(seq 1 20); do
    port=$((20000 + RANDOM % 30000))
    if as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null 2>&1; then
      echo "$port" >"$dir/port"
      echo "$port"
      exit 0
    fi
  done
  echo "could not start PostgreSQL (see $dir/server.log)" >&2
  exit 1
  ;;
stop)
  as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  ;;
restart)
  port=$(cat "$dir/port")
  # After kill -9 of the postmaster its backends exit on their own; until they have, the
  # old shared memory is still attached and a new postmaster refuses to start.
  for _ in $(seq 1 50); do
    if as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null 2>&1; then
      echo "$port"
      exit 0
    fi
    sleep 0.2
  done
  echo "could not restart PostgreSQL (see $dir/server.log)" >&2
  exit 1
  ;;
esac
