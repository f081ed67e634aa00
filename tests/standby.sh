#!/usr/bin/env bash
# Scale-out: a streaming hot standby of the test cluster (own data dir and port on localhost)
# answers ettin_rerank. Needs the test cluster up; leaves no standby running.
set -euo pipefail
ROOT=${ETTIN_CLUSTER_ROOT:-/var/tmp/ettin-test}
repo=$(cd "$(dirname "$0")/.." && pwd)
PRIMARY_PORT=$("$repo/scripts/cluster.sh" port)
PORT=$(python3 "$repo/scripts/ports.py" free)
PG_BIN=${PG_BIN:-$(dirname "$(readlink -f "${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}")")}
DATA=$ROOT/standby
as_server() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

stop() { [ -f "$DATA/postmaster.pid" ] && as_server "$PG_BIN/pg_ctl" -D "$DATA" stop -m fast -w >/dev/null || true; }
stop
rm -rf "$DATA"
as_server "$PG_BIN/pg_basebackup" -h "$ROOT" -p "$PRIMARY_PORT" -U postgres -D "$DATA" -R -X stream --no-sync --checkpoint=fast
trap stop EXIT
# Command-line options override the port and socket the primary's included config sets.
as_server "$PG_BIN/pg_ctl" -D "$DATA" start -w -l "$ROOT/standby.log" -o "-p $PORT -k $ROOT -c hot_standby=on" >/dev/null ||
  { echo "standby: did not start; $(python3 "$repo/scripts/ports.py" holder "$PORT")"; tail -5 "$ROOT/standby.log"; exit 1; }
psql -XAtq -h "$ROOT" -p "$PRIMARY_PORT" -d ettin_test -c "CREATE TABLE IF NOT EXISTS replicated_docs AS SELECT 'the program is free software' AS body; SELECT pg_sleep(0.5)" >/dev/null
# A few tries: in shared mode the standby's inference worker may still be starting (57P03).
for _ in $(seq 20); do
  result=$(psql -XAtq -h "$ROOT" -p "$PORT" -d ettin_test -v ON_ERROR_STOP=1 -c "
    SELECT pg_is_in_recovery(),
           (SELECT count(*) FROM ettin_rerank('free software', ARRAY(SELECT body FROM replicated_docs) || ARRAY['x', 'y'], 2, 'ettin-test/modular'))" 2>&1) && break
  sleep 0.5
done
if [ "$result" = "t|2" ]; then
  echo "standby: hot standby on port $PORT answers ettin_rerank (in recovery: yes)"
else
  echo "standby: unexpected result '$result'"; exit 1
fi
