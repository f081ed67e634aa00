#!/usr/bin/env bash
# Install everything ettin needs to build, install and test, skipping what is already there:
# Debian packages, cargo-pgrx (pinned), pgrx's config for the system's own Postgres (15 on Debian
# 12, 17 on Debian 13), pgvector (trixie's package; on bookworm, which has none new enough, built
# from trixie's source package) and ONNX Runtime's shared library (taken from the PyPI onnxruntime
# wheel, which is what this offline-but-for-registries machine can reach).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$SYSTEM_PG/bin/pg_config}
PGRX_VERSION=0.18.1
ORT_VERSION=1.31.1
ORT_DIR=${ORT_DIR:-/var/cache/ettin/onnxruntime}
BUILD_DIR=${BUILD_DIR:-/var/cache/ettin/build}

apt_packages=(postgresql-$SYSTEM_PG postgresql-server-dev-$SYSTEM_PG $SYSTEM_PGVECTOR libclang-dev clang pkg-config libssl-dev sudo
  dpkg-dev build-essential unzip ca-certificates python3 zstd)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  log "apt: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  log "apt: all packages present"
fi

if [ "$(cargo pgrx --version 2>/dev/null | awk '{print $2}')" != "$PGRX_VERSION" ]; then
  log "cargo-pgrx $PGRX_VERSION: installing (about 10 minutes on 2 cores)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
else
  log "cargo-pgrx $PGRX_VERSION: present"
fi

pgrx_register "$SYSTEM_PG" "$PG_CONFIG"

sharedir=$("$PG_CONFIG" --sharedir)
vector_version=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$sharedir/extension/vector.control" 2>/dev/null || true)
if [ -z "$vector_version" ] || ! printf '0.8.0\n%s\n' "$vector_version" | sort -V -C; then
  log "pgvector: building from Debian trixie's source package"
  pgvector_source "$BUILD_DIR"
  make -s -C "$BUILD_DIR/pgvector/src" PG_CONFIG="$PG_CONFIG" OPTFLAGS=""
  $SUDO make -s -C "$BUILD_DIR/pgvector/src" PG_CONFIG="$PG_CONFIG" install
  vector_version=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$sharedir/extension/vector.control")
fi
log "pgvector: $vector_version"

onnxruntime_from_wheel "$ORT_VERSION" manylinux_2_28_x86_64 "$ORT_DIR"
log "ONNX Runtime: $ORT_DIR/libonnxruntime.so.$ORT_VERSION"

