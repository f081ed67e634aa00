#!/usr/bin/env bash
# What `make test` runs on a major other than the host's 15, wherever that server is (this host,
# or a container: tests/pg-container.sh): the SQL suite with its clients, cancel, hub, load,
# standby, sync and shared-worker checks in a cluster of that major, then pg_upgrade from 15.
#   PG_CONFIG=/path/to/pg_config tests/major.sh MAJOR
# Prints "ok"/"FAIL" lines as tests/run_all.sh counts them; exits 0 when all passed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
MAJOR=${1:?usage: PG_CONFIG=... tests/major.sh MAJOR}
: "${PG_CONFIG:?PG_CONFIG must name the pg_config of the server to test}"
status=0
ETTIN_CLUSTER_ROOT=/var/tmp/ettin-test-$MAJOR bash "$here/run_sql_tests.sh" || status=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if NEW_PG_CONFIG=$PG_CONFIG bash "$here/pg_upgrade.sh" "$MAJOR" >"$log" 2>&1; then
  echo "ok   pg_upgrade 15 → $MAJOR"; sed 's/^/     /' "$log"
else
  echo "FAIL pg_upgrade 15 → $MAJOR"; tail -30 "$log" | sed 's/^/     /'; status=1
fi
exit $status
