#!/usr/bin/env bash
# ettin.inference = shared: restart the test cluster with the supervisor preloaded, rerun the
# parity suite (same scores as backend mode), then the worker checks in tests/python/test_shared.py
# (no ONNX Runtime in backends, cross-connection batching, cancel, kill -9 under load) and a hot
# standby answering through its own worker.
# Needs the settings run_sql_tests.sh starts the cluster with in ETTIN_TEST_SETTINGS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
cluster="$repo/scripts/cluster.sh"
# shellcheck disable=SC2086
eval "set -- $ETTIN_TEST_SETTINGS"
"$cluster" start "$@" "shared_preload_libraries = 'ettin'" "ettin.inference = 'shared'" >/dev/null
eval "$("$cluster" env)"
for _ in $(seq 100); do
  psql -XAtq -d "$ETTIN_TEST_DB" -c "SELECT ettin_info()->'worker' ? 'pid'" 2>/dev/null | grep -q t && break
  sleep 0.2
done
(cd "$repo" && psql -X -q -v ON_ERROR_STOP=1 -d "$ETTIN_TEST_DB" -f tests/sql/02_parity.sql >/dev/null)
echo "shared: parity suite (tests/sql/02_parity.sql) passes through the worker"
(cd "$repo" && psql -X -q -v ON_ERROR_STOP=1 -d "$ETTIN_TEST_DB" -f tests/sql/10_embed.sql >/dev/null 2>"$ETTIN_CLUSTER_ROOT/shared-embed.err") ||
  { tail -20 "$ETTIN_CLUSTER_ROOT/shared-embed.err"; exit 1; }
psql -XAtq -d "$ETTIN_TEST_DB" -c "SELECT ettin_info()->'worker'->'models'" | grep -q '"layout": "static"' ||
  { echo "shared: the worker does not list the StaticEmbedding model"; exit 1; }
echo "shared: embedding suite (tests/sql/10_embed.sql) passes through the worker"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if "${ETTIN_TEST_VENV:-/var/cache/ettin/venv}/bin/python" "$here/python/test_shared.py" >"$out" 2>&1; then
  grep -oE "(cross-connection batching|shared cancel|shared embed cancel|worker killed).*" "$out" || true
else
  tail -40 "$out"; exit 1
fi
# The sync worker embeds through the inference worker too.
ETTIN_SYNC_QUICK=1 "${ETTIN_TEST_VENV:-/var/cache/ettin/venv}/bin/python" "$here/python/test_sync.py" >"$out" 2>&1 ||
  { tail -30 "$out"; exit 1; }
grep -E "^sync backfill" "$out" | sed 's/^sync/shared sync/'
# A hot standby of the shared-mode cluster starts its own worker (the supervisor starts at a
# consistent state, not at the end of recovery, which a standby never reaches).
ETTIN_TEST_DB=$ETTIN_TEST_DB bash "$here/standby.sh" | sed 's/^standby:/shared standby:/'
