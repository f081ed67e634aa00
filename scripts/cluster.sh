#!/usr/bin/env bash
# A private Postgres 15 cluster for tests and the demo: its own data directory, port and socket
# directory, never the system one. Postgres refuses to run as root, so as root the server runs
# as the `postgres` user.
#   scripts/cluster.sh start [name=value ...]   initdb if needed, write settings, start
#   scripts/cluster.sh stop | status | env
set -euo pipefail
PG_BIN=${PG_BIN:-$(dirname "$(readlink -f "${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}")")}
ROOT=${ETTIN_CLUSTER_ROOT:-/var/tmp/ettin-cluster}
PORT=${ETTIN_CLUSTER_PORT:-54329}
DATA=$ROOT/data

as_server() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
  start)
    shift
    mkdir -p "$ROOT"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$ROOT"
    if [ ! -f "$DATA/PG_VERSION" ]; then
      as_server "$PG_BIN/initdb" -D "$DATA" -U postgres --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    {
      echo "port = $PORT"
      echo "listen_addresses = '127.0.0.1'"
      echo "unix_socket_directories = '$ROOT'"
      echo "fsync = off"
      echo "logging_collector = off"
      for setting in "$@"; do echo "$setting"; done
    } > "$ROOT/ettin-test.conf"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$ROOT/ettin-test.conf"
    grep -q "include = '$ROOT/ettin-test.conf'" "$DATA/postgresql.conf" ||
      echo "include = '$ROOT/ettin-test.conf'" | as_server tee -a "$DATA/postgresql.conf" >/dev/null
    if as_server "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
      as_server "$PG_BIN/pg_ctl" -D "$DATA" restart -w -l "$ROOT/server.log" >/dev/null
    else
      as_server "$PG_BIN/pg_ctl" -D "$DATA" start -w -l "$ROOT/server.log" >/dev/null
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
  *)
    echo "usage: $0 start [setting ...] | stop | status | env" >&2
    exit 2
    ;;
esac
