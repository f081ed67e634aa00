#!/usr/bin/env bash
# Hub downloads across backends: concurrent first use downloads once (per-model lock), and a
# downloaded model keeps working with the hub server stopped. Needs the test cluster and
# tests/hub_server.py (HUB_PID, HUB_PORT) up; stops the hub server.
set -euo pipefail
DB=${ETTIN_TEST_DB:-ettin_test}
: "${HUB_PID:?}" "${HUB_PORT:?}"
pids=()
for i in 1 2 3 4; do
  psql -XAtq -d "$DB" -v ON_ERROR_STOP=1 -c "SELECT rerank_score('q', 'doc $i', 'hubtest/concurrent') IS NOT NULL" >"/tmp/ettin-hub-$i.out" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
for i in 1 2 3 4; do grep -qx t "/tmp/ettin-hub-$i.out" || { cat "/tmp/ettin-hub-$i.out"; exit 1; }; done
onnx_downloads=$(python3 -c "import json,urllib.request; s=json.load(urllib.request.urlopen('http://127.0.0.1:$HUB_PORT/_stats')); print(s.get('hubtest/concurrent/onnx/model.onnx', 0))")
[ "$onnx_downloads" = 1 ] || { echo "4 concurrent first uses downloaded the ONNX $onnx_downloads times"; exit 1; }
echo "hub: 4 concurrent first uses, 1 download"
kill "$HUB_PID"; wait "$HUB_PID" 2>/dev/null || true
out=$(psql -XAtq -d "$DB" -v ON_ERROR_STOP=1 -c "SELECT rerank_score('q', 'd', 'hubtest/concurrent') = rerank_score('q', 'd', 'ettin-test/modular'), ettin_download('hubtest/modular') LIKE '%hubtest/modular'")
[ "$out" = "t|t" ] || { echo "offline reuse failed: $out"; exit 1; }
echo "hub: server stopped, downloaded models still load and score"
