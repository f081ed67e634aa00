#!/usr/bin/env bash
# SQL-level tests against the installed extension in a private cluster (scripts/cluster.sh):
# copies the fixture models (and deliberately broken variants) into the cluster's model dir,
# runs every tests/sql/[0-9]*.sql with psql, stops the cluster, and fails on the first error.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
export ETTIN_CLUSTER_ROOT=${ETTIN_CLUSTER_ROOT:-/var/tmp/ettin-test}
# psql, pgbench and pg_basebackup of the server's own major (PG_CONFIG picks it; 15 by default).
PATH="$(dirname "$(readlink -f "${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}")"):$PATH"
models=$ETTIN_CLUSTER_ROOT/models
cluster="$repo/scripts/cluster.sh"

rm -rf "$models" && mkdir -p "$models/ettin-test" "$models/broken"
for fixture in modular modular-long classic classic-st6 static embed-bert embed-modernbert; do
  cp -r "$here/fixtures/models/$fixture" "$models/ettin-test/"
done
broken() { cp -r "$here/fixtures/models/$1" "$models/broken/$2"; }
broken modular no-tokenizer && rm "$models/broken/no-tokenizer/tokenizer.json"
broken modular no-onnx && rm -r "$models/broken/no-onnx/onnx"
broken modular random-onnx && head -c 65536 /dev/urandom > "$models/broken/random-onnx/onnx/model.onnx"
broken modular wrong-head-shape && sed -i 's/"in_features": 64/"in_features": 32/' "$models/broken/wrong-head-shape/2_Dense/config.json"
broken modular bad-tokenizer && echo '{"version": "1.0", "model": ' > "$models/broken/bad-tokenizer/tokenizer.json"
broken modular unknown-module && sed -i 's/"sentence_transformers.sentence_transformer.modules.layer_norm.LayerNorm"/"my_package.modules.Whitening"/' "$models/broken/unknown-module/modules.json"
broken classic classic-as-backbone && cp -r "$here/fixtures/models/modular/"{modules.json,1_Pooling,2_Dense,3_LayerNorm,4_Dense} "$models/broken/classic-as-backbone/"
mkdir -p "$ETTIN_CLUSTER_ROOT" && chmod a+rx "$ETTIN_CLUSTER_ROOT" && chmod -R a+rX "$models"
[ "$(id -u)" -ne 0 ] || chown postgres:postgres "$models"   # downloads write here

# A local stand-in for the Hugging Face Hub serving copies of the fixtures.
hub=$ETTIN_CLUSTER_ROOT/hub
rm -rf "$hub" && mkdir -p "$hub/hubtest"
for hub_repo in modular classic concurrent classic-two no-onnx corrupt; do
  case $hub_repo in classic*) src=classic ;; *) src=modular ;; esac
  cp -r "$here/fixtures/models/$src" "$hub/hubtest/$hub_repo"
done
rm -r "$hub/hubtest/no-onnx/onnx"
# Embedders as the Hub ships them: static-retrieval-mrl-en-v1 (0_StaticEmbedding/, no config.json)
# and all-MiniLM-L6-v2 (a Normalize module whose folder does not exist).
mkdir -p "$hub/hubtest/static/0_StaticEmbedding"
cp "$here/fixtures/models/static/"{tokenizer.json,model.safetensors} "$hub/hubtest/static/0_StaticEmbedding/"
cp "$here/fixtures/models/static/config_sentence_transformers.json" "$hub/hubtest/static/"
echo '[{"idx": 0, "name": "0", "path": "0_StaticEmbedding", "type": "sentence_transformers.models.StaticEmbedding"}]' \
  > "$hub/hubtest/static/modules.json"
cp -r "$here/fixtures/models/embed-bert" "$hub/hubtest/embed-bert" && rm -rf "$hub/hubtest/embed-bert/2_Normalize"
. "$here/hub_start.sh"
start_hub "$hub" "$ETTIN_CLUSTER_ROOT/hub_server.log" || exit 1

trap '"$cluster" stop; kill $HUB_PID 2>/dev/null || true' EXIT
settings="\"ettin.model_dir = '$models'\" \"ettin.hub_endpoint = 'http://127.0.0.1:$HUB_PORT'\""
eval "\"\$cluster\" start $settings"
eval "$("$cluster" env)"
started=$(psql -XAtq -d postgres -c "SELECT pg_postmaster_start_time()")
# The log carries earlier runs (pg_ctl appends): these checks read what this run wrote.
log_from=$(( $(stat -c %s "$ETTIN_CLUSTER_ROOT/server.log") + 1 ))
this_run_log() { tail -c "+$log_from" "$ETTIN_CLUSTER_ROOT/server.log"; }
psql -Xq -d postgres -c "DROP DATABASE IF EXISTS ettin_test" -c "CREATE DATABASE ettin_test"

old_ort=${ETTIN_OLD_ORT_DIR:-/var/cache/ettin/onnxruntime-1.20.1}/libonnxruntime.so.1.20.1
[ "$(id -u)" -ne 0 ] || chmod a+rx "$(dirname "$old_ort")"
status=0
for test in "$here"/sql/[0-9]*.sql; do
  name=$(basename "$test" .sql)
  t0=$(date +%s)
  if (cd "$repo" && psql -X -q -v ON_ERROR_STOP=1 -v old_ort="$old_ort" -d ettin_test -f "$test" >"$ETTIN_CLUSTER_ROOT/$name.out" 2>&1); then
    echo "ok   $name ($(( $(date +%s) - t0 ))s)"
  else
    echo "FAIL $name"; sed 's/^/     /' "$ETTIN_CLUSTER_ROOT/$name.out" | tail -20; status=1
  fi
done

# Application clients (psycopg 3, SQLAlchemy) against the same cluster.
venv=${ETTIN_TEST_VENV:-/var/cache/ettin/venv}
for suite in test_clients test_cancel; do
  if ETTIN_TEST_DB=ettin_test "$venv/bin/python" "$here/python/$suite.py" >"$ETTIN_CLUSTER_ROOT/$suite.out" 2>&1; then
    echo "ok   $suite ($(sed -n 's/^Ran \([0-9]*\) tests.*/\1/p' "$ETTIN_CLUSTER_ROOT/$suite.out") tests)"
    grep -E "^(statement_timeout|pg_cancel_backend)" "$ETTIN_CLUSTER_ROOT/$suite.out" | sed 's/^/     /' || true
  else
    echo "FAIL $suite"; sed 's/^/     /' "$ETTIN_CLUSTER_ROOT/$suite.out" | tail -30; status=1
  fi
done

# Short load (the full 8 clients x 5 minutes: DURATION=300 tests/load.sh) and a hot standby.
for check in hub load standby; do
  if ETTIN_TEST_DB=ettin_test bash "$here/$check.sh" >"$ETTIN_CLUSTER_ROOT/$check.out" 2>&1; then
    echo "ok   $check"; sed 's/^/     /' "$ETTIN_CLUSTER_ROOT/$check.out" | grep -v "^     *$" | head -12
  else
    echo "FAIL $check"; sed 's/^/     /' "$ETTIN_CLUSTER_ROOT/$check.out" | tail -20; status=1
  fi
done

# The hub stand-in stays quiet about clients the tests cut off on purpose; anything it did log
# is a real error in it or in a request.
if grep -q "Traceback" "$ETTIN_CLUSTER_ROOT/hub_server.log"; then
  echo "FAIL hub stand-in logged errors"; tail -20 "$ETTIN_CLUSTER_ROOT/hub_server.log" | sed 's/^/     /'; status=1
else
  echo "ok   hub stand-in logged no errors"
fi

# 04_errors passes 100000-character names: errors quote them at a bounded length, so the server
# log never holds them whole either.
if this_run_log | grep -qE 'x{1000}|y{1000}|z{1000}'; then
  echo "FAIL the server log holds a user-supplied name whole"; status=1
else
  echo "ok   the server log quotes user-supplied names at a bounded length"
fi

# No test may have crashed a backend: the postmaster never restarted, and nothing died by signal.
if [ "$(psql -XAtq -d postgres -c "SELECT pg_postmaster_start_time()")" != "$started" ] ||
   this_run_log | grep -q "terminated by signal"; then
  echo "FAIL a backend crashed; see $ETTIN_CLUSTER_ROOT/server.log"; status=1
else
  echo "ok   no backend crashed"
fi

# The sync worker (it restarts the cluster with ettin preloaded): backfill, writers, failures,
# rights, a crash.
if ETTIN_TEST_DB=ettin_test ETTIN_TEST_SETTINGS="$settings" bash "$here/sync.sh" >"$ETTIN_CLUSTER_ROOT/sync.out" 2>&1; then
  echo "ok   sync"; sed 's/^/     /' "$ETTIN_CLUSTER_ROOT/sync.out"
else
  echo "FAIL sync"; sed 's/^/     /' "$ETTIN_CLUSTER_ROOT/sync.out" | tail -40; status=1
fi

# Last, as it restarts the cluster: ettin.inference = shared (parity, batching, cancel, kill -9).
if ETTIN_TEST_DB=ettin_test ETTIN_TEST_SETTINGS="$settings" bash "$here/shared.sh" >"$ETTIN_CLUSTER_ROOT/shared.out" 2>&1; then
  echo "ok   shared"; sed 's/^/     /' "$ETTIN_CLUSTER_ROOT/shared.out"
else
  echo "FAIL shared"; sed 's/^/     /' "$ETTIN_CLUSTER_ROOT/shared.out" | tail -40; status=1
fi
exit $status
