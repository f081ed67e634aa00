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
