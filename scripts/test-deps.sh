#!/usr/bin/env bash
# What only the tests need: Python clients for the ORM tests (psycopg 3, SQLAlchemy) in their own
# virtualenv, so the system Python stays untouched, and an old ONNX Runtime to be refused. Idempotent.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# Python clients for the ORM tests (psycopg 3, SQLAlchemy), in their own virtualenv.
VENV=${ETTIN_TEST_VENV:-/var/cache/ettin/venv}
if ! "$VENV/bin/python" -c 'import psycopg, sqlalchemy' >/dev/null 2>&1; then
  log "test clients: psycopg 3 and SQLAlchemy into $VENV"
  $SUDO mkdir -p "$(dirname "$VENV")" && $SUDO chown "$(id -u)" "$(dirname "$VENV")"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'psycopg[binary]>=3.2,<4' 'sqlalchemy>=2,<3'
fi
log "test clients: $VENV"

# An ONNX Runtime older than 1.31, to test that ettin refuses it cleanly (no abort).
onnxruntime_from_wheel 1.20.1 manylinux_2_27_x86_64 "${ETTIN_OLD_ORT_DIR:-/var/cache/ettin/onnxruntime-1.20.1}"

# pgpool-II for the scale-out test (tests/scaleout.sh): Debian's package, its service not used.
if ! command -v pgpool >/dev/null; then
  log "pgpool-II: installing Debian's pgpool2"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends pgpool2
fi
log "pgpool-II: $(pgpool --version 2>&1 | head -1)"
