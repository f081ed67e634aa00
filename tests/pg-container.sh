#!/usr/bin/env bash
# A Postgres major that only a newer Debian packages, tested in a container of that release:
#   tests/pg-container.sh 17     Debian 13 (trixie): postgresql-17 17.12 and postgresql-17-pgvector
# The container (tests/docker/pg-trixie.Dockerfile, from a debootstrap'ed trixie) gets this checkout
# at the same path, the host's Rust toolchain, caches and a target dir of its own (trixie's glibc is
# newer: what it builds cannot run on the host). Inside (`--inside`): `make install PG=17` against
# Debian's pg_config, then what the host's other majors run, tests/major.sh: the SQL suite with
# its clients, hub, load, standby, sync and shared worker, and pg_upgrade 17 from Debian 12's
# postgresql-15, which the container also carries, with ettin as the host built it for 15.
# Prints the server's version; exits 0 when every suite passed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

if [ "${1:-}" = --inside ]; then
  MAJOR=$2
  pg_config=/usr/lib/postgresql/$MAJOR/bin/pg_config
  cd "$repo"
  echo "server: $("$pg_config" --version) from Debian's postgresql-$MAJOR, $(. /etc/os-release && echo "$PRETTY_NAME") container"
  t0=$(date +%s)
  if ! make install PG="$MAJOR" >/var/tmp/install.log 2>&1; then
    echo "FAIL make install PG=$MAJOR in the container"; tail -30 /var/tmp/install.log; exit 1
  fi
  echo "ok   make install PG=$MAJOR ($(( $(date +%s) - t0 ))s)"
  bash scripts/test-deps.sh >/var/tmp/test-deps.log 2>&1 || { echo "FAIL test dependencies"; tail -20 /var/tmp/test-deps.log; exit 1; }
  # pg_upgrade's old side: Debian 12's 15 (the same package as the host's) with ettin and vector
  # as the host's `make install` left them.
  cp /host/pg15/lib/{ettin.so,vector.so,libonnxruntime.so.1.31.1,ettin-inferd} /usr/lib/postgresql/15/lib/
  cp /host/pg15/extension/ettin* /host/pg15/extension/vector* /usr/share/postgresql/15/extension/
  PG_CONFIG=$pg_config exec bash tests/major.sh "$MAJOR"
fi

MAJOR=${1:?usage: tests/pg-container.sh 17}
case $MAJOR in
  17) codename=trixie ;;
  *) echo "Postgres $MAJOR is not tested in a container: 15 is the host's, 16 and 18 are built on it (make install PG=N)" >&2; exit 2 ;;
esac
. "$here/podman.sh"
podman_setup
debian_base "$codename"
image=localhost/ettin-pg:$MAJOR-$codename
# An empty build context: the Containerfile copies nothing.
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
build -f "$here/docker/pg-$codename.Dockerfile" -t "$image" "$context"
target=${ETTIN_CONTAINER_TARGET_DIR:-/var/tmp/ettin-target-$codename}
mkdir -p "$target" /var/cache/ettin
# --network=host: test servers draw free ports on the host as they do outside (scripts/ports.py).
# The host's CA bundle: pip and cargo inside trust what they trust outside (a proxy's CA included).
ca=/etc/ssl/certs/ca-certificates.crt
# SYS_PTRACE: the shared-worker test reads backends' /proc/PID/maps, as root may outside.
podman run --rm --network=host --shm-size=1g --cap-add=SYS_PTRACE \
  -v "$ca:/etc/ssl/host-ca.crt:ro" -e PIP_CERT=/etc/ssl/host-ca.crt -e SSL_CERT_FILE=/etc/ssl/host-ca.crt \
  -e CARGO_HTTP_CAINFO=/etc/ssl/host-ca.crt \
  -v "$repo:$repo" -v "$HOME/.cargo:/root/.cargo" -v "$HOME/.rustup:/root/.rustup" \
  -v /var/cache/ettin:/var/cache/ettin -v "$target:/var/tmp/ettin-target" \
  -v /usr/lib/postgresql/15/lib:/host/pg15/lib:ro -v /usr/share/postgresql/15/extension:/host/pg15/extension:ro \
  -e CARGO_TARGET_DIR=/var/tmp/ettin-target -e PGRX_HOME=/var/cache/ettin/pgrx-$codename \
  -e ETTIN_TEST_VENV=/var/cache/ettin/venv-$codename -e BUILD_DIR=/var/cache/ettin/build-$codename \
  "$image" bash "$here/pg-container.sh" --inside "$MAJOR"
