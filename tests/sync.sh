#!/usr/bin/env bash
# The sync worker: restart the test cluster with ettin in shared_preload_libraries (backend
# inference), then tests/python/test_sync.py. Needs the settings run_sql_tests.sh starts the
# cluster with in ETTIN_TEST_SETTINGS; leaves the cluster running with the preload.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
cluster="$repo/scripts/cluster.sh"
# shellcheck disable=SC2086
eval "set -- $ETTIN_TEST_SETTINGS"
"$cluster" start "$@" "shared_preload_libraries = 'ettin'" >/dev/null
eval "$("$cluster" env)"
for _ in $(seq 100); do
  [ "$(psql -XAtq -d "$ETTIN_TEST_DB" -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ettin sync launcher'" 2>/dev/null)" = 1 ] && break
  sleep 0.1
done
out=$(mktemp)
trap 'rm -f "$out"' EXIT
PG_BIN=$(dirname "$(readlink -f "${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}")")
if ETTIN_SYNC_PGDATA="$ETTIN_CLUSTER_ROOT/data" ETTIN_SYNC_PG_BIN="$PG_BIN" \
   "${ETTIN_TEST_VENV:-/var/cache/ettin/venv}/bin/python" "$here/python/test_sync.py" >"$out" 2>&1; then
  grep -E "^sync " "$out" || true
else
  tail -40 "$out"; exit 1
fi
