#!/usr/bin/env bash
# Build ettin (release) and install it into the Postgres that PG_CONFIG names, with ONNX Runtime's
# library next to it in $libdir, where the extension looks by default.
set -euo pipefail
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
ORT_VERSION=1.31.1
ORT_DIR=${ORT_DIR:-/var/cache/ettin/onnxruntime}
MODEL_DIR=${MODEL_DIR:-/var/lib/postgresql/ettin/models}
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."

echo "== building and installing ettin (release) into $("$PG_CONFIG" --pkglibdir)"
if [ -z "$SUDO" ]; then
  cargo pgrx install --release --pg-config "$PG_CONFIG"
else
  cargo pgrx install --release --sudo --pg-config "$PG_CONFIG"
fi
pkglibdir=$("$PG_CONFIG" --pkglibdir)
# The shared inference worker (ettin.inference = shared) runs ONNX Runtime outside Postgres.
cargo build --release -p ettin-engine --bin ettin-inferd
$SUDO install -m 0755 "${CARGO_TARGET_DIR:-target}/release/ettin-inferd" "$pkglibdir/ettin-inferd"
echo "== inference worker: $pkglibdir/ettin-inferd"
$SUDO install -m 0755 "$ORT_DIR/libonnxruntime.so.$ORT_VERSION" "$pkglibdir/libonnxruntime.so.$ORT_VERSION"
echo "== ONNX Runtime: $pkglibdir/libonnxruntime.so.$ORT_VERSION"
# Earlier releases' install scripts, so `CREATE EXTENSION ettin VERSION '0.1.0'` (or '0.2.0') and
# then ALTER EXTENSION ettin UPDATE work (cargo pgrx install copies the upgrade scripts themselves).
for old in 0.1.0 0.2.0; do
  $SUDO install -m 0644 "sql/ettin--$old.sql" "$("$PG_CONFIG" --sharedir)/extension/ettin--$old.sql"
done
# The default ettin.model_dir; owned by postgres so the server can read (and later download) models.
if id postgres >/dev/null 2>&1 && [ ! -d "$MODEL_DIR" ]; then
  $SUDO install -d -o postgres -g postgres -m 0755 "$MODEL_DIR"
fi
