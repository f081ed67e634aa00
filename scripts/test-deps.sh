#!/usr/bin/env bash
# What only the tests need: Python clients for the ORM tests (psycopg 3, SQLAlchemy) in their own
# virtualenv, so the system Python stays untouched. Idempotent.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
log() { printf '\033[1m== %s\033[0m\n' "$*"; }

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
OLD_ORT_DIR=${ETTIN_OLD_ORT_DIR:-/var/cache/ettin/onnxruntime-1.20.1}
if [ ! -f "$OLD_ORT_DIR/libonnxruntime.so.1.20.1" ]; then
  log "ONNX Runtime 1.20.1 (for the version-refusal test)"
  $SUDO mkdir -p "$OLD_ORT_DIR" && $SUDO chown "$(id -u)" "$OLD_ORT_DIR"
  tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_27_x86_64 \
    --python-version 3.11 "onnxruntime==1.20.1" -d "$tmp"
  unzip -q -j -o "$tmp"/onnxruntime-*.whl "onnxruntime/capi/libonnxruntime.so.1.20.1" -d "$OLD_ORT_DIR"
  rm -rf "$tmp"
fi
