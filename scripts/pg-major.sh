#!/usr/bin/env bash
# Another Postgres major for ettin (idempotent; `make deps PG=18`): built from Debian's source
# package into a cache directory, registered with pgrx, with pgvector built against it.
#   scripts/pg-major.sh MAJOR   → ${ETTIN_PG_ROOT:-/var/cache/ettin/pg}/MAJOR/bin/pg_config
# 15 is Debian 12's own package (scripts/deps.sh). 17 comes from Debian 13 (trixie), 18 from
# Debian unstable (sid): Debian's archive keeps their sources (.dsc, .orig.tar.bz2); bookworm has
# no binaries. A few minutes on 2 cores. 16 is the relocatable build (server headers included)
# that PyPI's pgserver 0.1.4 wheel carries: Postgres 16.2. With PG_CONFIG naming a server installed any other way
# (PGDG packages, your own build), nothing is built: it is registered with pgrx and gets pgvector.
# Prints the pg_config path last.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# Run from `make install PG=18` inside `make test`, the outer make's MAKEFLAGS would carry its
# command-line variables (PG_CONFIG=...) and jobserver into Postgres' own build, which then breaks.
unset MAKEFLAGS MFLAGS MAKELEVEL
if [ -n "${PG_CONFIG:-}" ] && [ -x "$PG_CONFIG" ]; then
  MAJOR=$("$PG_CONFIG" --version | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')
else
  MAJOR=${1:?usage: scripts/pg-major.sh MAJOR (17 or 18), or PG_CONFIG=/path/to/pg_config scripts/pg-major.sh}
  PG_CONFIG=${ETTIN_PG_ROOT:-/var/cache/ettin/pg}/$MAJOR/bin/pg_config
fi
PREFIX=$(dirname "$(dirname "$PG_CONFIG")")
BUILD_ROOT=${BUILD_DIR:-/var/cache/ettin/build}
BUILD_DIR=$BUILD_ROOT/pg$MAJOR

case $MAJOR in
  15) suites=() ;;
  16) suites=(pypi) ;;
  17) suites=("debian trixie" "debian-security trixie-security") ;;
  18) suites=("debian sid") ;;
  *) suites=() ;;
esac

if [ ! -x "$PG_CONFIG" ]; then
  if [ ${#suites[@]} -eq 0 ]; then
    echo "no Postgres $MAJOR at $PG_CONFIG; ettin fetches only 16, 17 and 18 itself" >&2
    exit 2
  fi
  if [ "${suites[0]}" = pypi ]; then
    log "Postgres 16: the relocatable build in PyPI's pgserver 0.1.4 wheel, into $PREFIX"
    rm -rf "$BUILD_DIR" && mkdir -p "$BUILD_DIR"
    python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
      --python-version 3.11 pgserver==0.1.4 -d "$BUILD_DIR"
    unzip -q "$BUILD_DIR"/pgserver-0.1.4-*.whl 'pgserver/pginstall/*' 'pgserver.libs/*' -d "$BUILD_DIR"
    chmod +x "$BUILD_DIR"/pgserver/pginstall/bin/*
    $SUDO mkdir -p "$(dirname "$PREFIX")" && $SUDO rm -rf "$PREFIX" && $SUDO mv "$BUILD_DIR/pgserver/pginstall" "$PREFIX"
    # Its programs find their libpq (renamed by auditwheel) at $ORIGIN/../../../pgserver.libs.
    libs=$(cd "$PREFIX/../.." && pwd)/pgserver.libs
    $SUDO rm -rf "$libs" && $SUDO mv "$BUILD_DIR/pgserver.libs" "$libs" && $SUDO chmod -R a+rX "$libs" "$PREFIX"
    # Its bundled pgvector predates 0.8; ours replaces it below.
    $SUDO rm -f "$PREFIX"/share/postgresql/extension/vector* "$PREFIX"/lib/postgresql/vector.so
  fi
fi
if [ ! -x "$PG_CONFIG" ]; then
  log "Postgres $MAJOR: building from Debian's source package into $PREFIX"
  for s in "${suites[@]}"; do
    list=/etc/apt/sources.list.d/ettin-${s#* }-src.list
    [ -f "$list" ] || echo "deb-src http://deb.debian.org/${s% *} ${s#* } main" | $SUDO tee "$list" >/dev/null
  done
  $SUDO apt-get update -q >/dev/null
  for p in bison flex libreadline-dev zlib1g-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$p" >/dev/null
  done
  rm -rf "$BUILD_DIR" && mkdir -p "$BUILD_DIR"
  if ! (cd "$BUILD_DIR" && apt-get source -q --download-only "postgresql-$MAJOR" >apt-source.log 2>&1); then
    echo "Postgres $MAJOR: Debian's archive did not serve the source package:" >&2
    grep -E "^(E|W):" "$BUILD_DIR/apt-source.log" >&2 || true
    exit 1
  fi
  # Upstream's source as released (Debian's patches would move $libdir to /usr/lib/postgresql/N).
  (cd "$BUILD_DIR" && dpkg-source -x --no-check --skip-patches ./*.dsc src >/dev/null)
  (cd "$BUILD_DIR/src" && ./configure -q --prefix="$PREFIX" --without-icu --without-llvm --with-readline --with-zlib >/dev/null)
  make -s -j"$(nproc)" -C "$BUILD_DIR/src" >/dev/null
  $SUDO make -s -C "$BUILD_DIR/src" install >/dev/null
  rm -rf "$BUILD_DIR/src"
fi
log "Postgres $MAJOR: $("$PG_CONFIG" --version) at $PREFIX"

# pgrx builds against it by its pgNN feature; cargo pgrx install finds the version's config here.
pgrx_register "$MAJOR" "$PG_CONFIG"

# pgvector from trixie's source package (0.8.0; lib.sh pgvector_source). Postgres 18
# changed two calls it makes; the newer releases that know this (0.8.1+) are not in Debian's archive
# here, so apply the same two changes upstream made: vacuum_delay_point(false), and TupleDescAttr()
# instead of the `attrs` array Postgres 18 removed.
if [ ! -f "$("$PG_CONFIG" --sharedir)/extension/vector.control" ]; then
  [ -d "$BUILD_ROOT/pgvector/src" ] || pgvector_source "$BUILD_ROOT" >/dev/null
  rm -rf "$BUILD_DIR/pgvector" && cp -r "$BUILD_ROOT/pgvector/src" "$BUILD_DIR/pgvector"
  make -s -C "$BUILD_DIR/pgvector" clean >/dev/null 2>&1 || true
  sed -i 's/buildstate->tupdesc->attrs\[0\]\.atttypid/TupleDescAttr(buildstate->tupdesc, 0)->atttypid/' "$BUILD_DIR/pgvector/src/ivfbuild.c"
  if [ "$MAJOR" -ge 18 ]; then
    sed -i 's/vacuum_delay_point();/vacuum_delay_point(false);/' "$BUILD_DIR"/pgvector/src/*.c
  fi
  make -s -C "$BUILD_DIR/pgvector" PG_CONFIG="$PG_CONFIG" OPTFLAGS="" >/dev/null
  $SUDO make -s -C "$BUILD_DIR/pgvector" PG_CONFIG="$PG_CONFIG" install >/dev/null
fi
log "pgvector for Postgres $MAJOR: $(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$("$PG_CONFIG" --sharedir)/extension/vector.control")"
echo "$PG_CONFIG"
