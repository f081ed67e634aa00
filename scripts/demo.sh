#!/usr/bin/env bash
# The main job: a private Postgres with pgvector and ettin; for each demo query, candidates from an
# HNSW vector search (real all-MiniLM-L6-v2 embeddings, demo/) reranked by a cross-encoder in the
# same statement, printed next to the vector-only ranking with timings. Leaves no server running.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export ETTIN_CLUSTER_ROOT=${ETTIN_CLUSTER_ROOT:-/var/tmp/ettin-demo}
export ETTIN_CLUSTER_PORT=${ETTIN_CLUSTER_PORT:-54330}
models=$ETTIN_CLUSTER_ROOT/models
real_model=${ETTIN_DEMO_MODEL_DIR:-/var/lib/postgresql/ettin/models}/cross-encoder/ettin-reranker-17m-v1

mkdir -p "$models/ettin-test" && chmod a+rx "$ETTIN_CLUSTER_ROOT"
cp -r "$repo/tests/fixtures/models/modular" "$models/ettin-test/" && chmod -R a+rX "$models"
if [ -f "$real_model/onnx/model.onnx" ]; then
  model_dir=$(dirname "$(dirname "$real_model")") model=cross-encoder/ettin-reranker-17m-v1
else
  model_dir=$models model=ettin-test/modular
  printf '\n\033[1;33m*** No Ettin reranker in %s: using the bundled RANDOM-WEIGHT test model.\n*** Its scores are NOT meaningful; they only show the pipeline working.\033[0m\n\n' "$real_model"
fi

trap '"$repo/scripts/cluster.sh" stop' EXIT
"$repo/scripts/cluster.sh" start "ettin.model_dir = '$model_dir'" "ettin.model = '$model'"
eval "$("$repo/scripts/cluster.sh" env)"
psql -Xq -d postgres -c "DROP DATABASE IF EXISTS ettin_demo" -c "CREATE DATABASE ettin_demo" 2>/dev/null
cd "$repo" && psql -X -q -d ettin_demo -v ON_ERROR_STOP=1 -f sql/demo.sql
