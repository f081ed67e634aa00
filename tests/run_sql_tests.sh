#!/usr/bin/env bash
# SQL-level tests against the installed extension in a private cluster (scripts/cluster.sh):
# copies the fixture models (and deliberately broken variants) into the cluster's model dir,
# runs every tests/sql/[0-9]*.sql with psql, stops the cluster, and fails on the first error.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
export ETTIN_CLUSTER_ROOT=${ETTIN_CLUSTER_ROOT:-/var/tmp/ettin-test}
models=$ETTIN_CLUSTER_ROOT/models
cluster="$repo/scripts/cluster.sh"

rm -rf "$models" && mkdir -p "$models/ettin-test" "$models/broken"
cp -r "$here/fixtures/models/modular" "$here/fixtures/models/classic" "$models/ettin-test/"
broken() { cp -r "$here/fixtures/models/$1" "$models/broken/$2"; }
broken modular no-tokenizer && rm "$models/broken/no-tokenizer/tokenizer.json"
broken modular no-onnx && rm -r "$models/broken/no-onnx/onnx"
broken modular random-onnx && head -c 65536 /dev/urandom > "$models/broken/random-onnx/onnx/model.onnx"
broken modular wrong-head-shape && sed -i 's/"in_features": 64/"in_features": 32/' "$models/broken/wrong-head-shape/2_Dense/config.json"
broken modular bad-tokenizer && echo '{"version": "1.0", "model": ' > "$models/broken/bad-tokenizer/tokenizer.json"
broken modular unknown-module && sed -i 's/"sentence_transformers.sentence_transformer.modules.layer_norm.LayerNorm"/"my_package.modules.Whitening"/' "$models/broken/unknown-module/modules.json"
broken classic classic-as-backbone && cp -r "$here/fixtures/models/modular/"{modules.json,1_Pooling,2_Dense,3_LayerNorm,4_Dense} "$models/broken/classic-as-backbone/"
mkdir -p "$ETTIN_CLUSTER_ROOT" && chmod a+rx "$ETTIN_CLUSTER_ROOT" && chmod -R a+rX "$models"

trap '"$cluster" stop' EXIT
"$cluster" start "ettin.model_dir = '$models'"
eval "$("$cluster" env)"
started=$(psql -XAtq -d postgres -c "SELECT pg_postmaster_start_time()")
psql -Xq -d postgres -c "DROP DATABASE IF EXISTS ettin_test" -c "CREATE DATABASE ettin_test"

status=0
for test in "$here"/sql/[0-9]*.sql; do
  name=$(basename "$test" .sql)
  if (cd "$repo" && psql -X -q -v ON_ERROR_STOP=1 -d ettin_test -f "$test" >"$ETTIN_CLUSTER_ROOT/$name.out" 2>&1); then
    echo "ok   $name"
  else
    echo "FAIL $name"; sed 's/^/     /' "$ETTIN_CLUSTER_ROOT/$name.out" | tail -20; status=1
  fi
done

# Application clients (psycopg 3, SQLAlchemy) against the same cluster.
venv=${ETTIN_TEST_VENV:-/var/cache/ettin/venv}
if ETTIN_TEST_DB=ettin_test "$venv/bin/python" "$here/python/test_clients.py" >"$ETTIN_CLUSTER_ROOT/python.out" 2>&1; then
  echo "ok   python clients ($(grep -c ' ok$' "$ETTIN_CLUSTER_ROOT/python.out") tests)"
else
  echo "FAIL python clients"; sed 's/^/     /' "$ETTIN_CLUSTER_ROOT/python.out" | tail -30; status=1
fi

# No test may have crashed a backend: the postmaster never restarted, and nothing died by signal.
if [ "$(psql -XAtq -d postgres -c "SELECT pg_postmaster_start_time()")" != "$started" ] ||
   grep -q "terminated by signal" "$ETTIN_CLUSTER_ROOT/server.log"; then
  echo "FAIL a backend crashed; see $ETTIN_CLUSTER_ROOT/server.log"; status=1
else
  echo "ok   no backend crashed"
fi
exit $status
