#!/usr/bin/env bash
# A private Postgres 15 cluster for tests and the demo: its own data directory, port and socket
# directory, never the system one. Postgres refuses to run as root, so as root the server runs
# as the `postgres` user.
#   scripts/cluster.sh start [name=value ...]   initdb if needed, write settings, start
#   scripts/cluster.sh stop | status | env | port
# The port: ETTIN_CLUSTER_PORT if set, else the one this cluster last ran on ($ROOT/port) while it
# is still free, else a free one outside the ephemeral range (scripts/ports.py). `env` and `port`
# tell clients which.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PG_BIN=${PG_BIN:-$(dirname "$(readlink -f "${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}")")}
ROOT=${ETTIN_CLUSTER_ROOT:-/var/tmp/ettin-cluster}
DATA=$ROOT/data
PORT=${ETTIN_CLUSTER_PORT:-$(cat "$ROOT/port" 2>/dev/null || true)}

as_server() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

running() { as_server "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

write_settings() { # the port and the caller's settings, included from postgresql.conf
  {
      echo "port = $PORT"
      echo "listen_addresses = '127.0.0.1'"
      echo "unix_socket_directories = '$ROOT'"
      echo "fsync = off"
      echo "logging_collector = off"
      for setting in "$@"; do echo "$setting"; done
  } > "$ROOT/ettin-test.conf"
  echo "$PORT" > "$ROOT/port"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$ROOT/ettin-test.conf"
  grep -q "include = '$ROOT/ettin-test.conf'" "$DATA/postgresql.conf" ||
    echo "include = '$ROOT/ettin-test.conf'" | as_server tee -a "$DATA/postgresql.conf" >/dev/null
}

case "${1:-}" in
  start)
    shift
    mkdir -p "$ROOT"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$ROOT"
    if [ ! -f "$DATA/PG_VERSION" ]; then
      as_server "$PG_BIN/initdb" -D "$DATA" -U postgres --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    if running; then   # a restart keeps the port it runs on (postmaster.pid's fourth line)
      PORT=$(sed -n 4p "$DATA/postmaster.pid")
      write_settings "$@"
      as_server "$PG_BIN/pg_ctl" -D "$DATA" restart -w -l "$ROOT/server.log" >/dev/null
    else
      # A port taken between the check and the bind (or a fixed one in use) gets a second draw,
      # unless the caller fixed it; the last failure names who holds it.
      for attempt in 1 2 3; do
        if [ -z "${ETTIN_CLUSTER_PORT:-}" ] && { [ -z "$PORT" ] || ! python3 "$here/ports.py" is-free "$PORT"; }; then
          PORT=$(python3 "$here/ports.py" free)
        fi
        write_settings "$@"
        as_server "$PG_BIN/pg_ctl" -D "$DATA" start -w -l "$ROOT/server.log" >/dev/null 2>&1 && break
        if [ "$attempt" -eq 3 ] || [ -n "${ETTIN_CLUSTER_PORT:-}" ] ||
           ! tail -5 "$ROOT/server.log" | grep -q "Address already in use"; then
          echo "cluster: the server did not start; $(python3 "$here/ports.py" holder "$PORT")" >&2
          tail -5 "$ROOT/server.log" >&2
          exit 1
        fi
        PORT=""
      done
    fi
    echo "cluster up: port $PORT, socket $ROOT, log $ROOT/server.log"
    ;;
  stop)
    if [ -f "$DATA/postmaster.pid" ]; then as_server "$PG_BIN/pg_ctl" -D "$DATA" stop -m fast -w >/dev/null; fi
    ;;
  status)
    as_server "$PG_BIN/pg_ctl" -D "$DATA" status
    ;;
  env)
    echo "export PGHOST=$ROOT PGPORT=$PORT PGUSER=postgres"
    ;;
  port)
    echo "$PORT"
    ;;
  *)
    echo "usage: $0 start [setting ...] | stop | status | env | port" >&2
    exit 2
    ;;
esac
