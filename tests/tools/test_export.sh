#!/usr/bin/env bash
# The export tool on the fixture generator's models, both layouts and the 8K-token fixture (its
# long graph): it must verify its own output (exit 0), and ettin's engine must reproduce the
# sentence-transformers reference scores from the
# exported directories. Needs torch & co (pip install -r tools/requirements.txt); run with
#   make test-tools PYTHON=/path/to/venv/bin/python
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
PYTHON=${PYTHON:-python3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for layout in modular modular-long classic; do
  "$PYTHON" "$repo/tools/export_model.py" "$repo/tests/fixtures/models/$layout" "$out/$layout" --fp16 --int8 2>&1 |
    grep -E "^model|ready" | sed "s/^/$layout: /"
  cp "$repo/tests/fixtures/models/$layout/reference.json" "$out/$layout/"
done
cd "$repo" && ETTIN_FIXTURES="$out" cargo test -q -p ettin-engine --test parity matches_sentence_transformers
# Embedders: --embedder must verify its graph (exit 0), and ettin must reproduce encode() from it.
for fixture in embed-bert embed-modernbert; do
  "$PYTHON" "$repo/tools/export_model.py" --embedder "$repo/tests/fixtures/models/$fixture" "$out/$fixture" --int8 2>&1 |
    grep -E "^model|ready" | sed "s/^/$fixture: /"
  cp "$repo/tests/fixtures/models/$fixture/reference.json" "$out/$fixture/"
done
cd "$repo" && ETTIN_FIXTURES="$out" cargo test -q -p ettin-engine --test embed embedder_
