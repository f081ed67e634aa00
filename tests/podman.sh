# Containers with podman (Debian's) on a machine without an image registry; sourced by
# tests/docker.sh and tests/pg-container.sh. Base images are debootstrap'ed Debian, imported.
#   podman_setup                  packages and a containers.conf that works on this kernel
#   debian_base CODENAME          localhost/ettin-debian:CODENAME (minbase), made once
#   build ARGS...                 podman build, quiet; its log shown only when it fails
CACHE=${ETTIN_DOCKER_CACHE:-/var/cache/ettin/docker}
log() { printf '== %s\n' "$*"; }

# runc, because crun fails on this kernel's hybrid cgroups; default ulimits above what root may
# set here: both in one containers.conf.
podman_setup() {
  local missing=() p
  for p in podman runc debootstrap uidmap; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt: installing ${missing[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  fi
  mkdir -p "$CACHE"
  export CONTAINERS_CONF=$CACHE/containers.conf
  cat >"$CONTAINERS_CONF" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
CONF
}

debian_base() {
  local codename=$1 rootfs=$CACHE/rootfs-$1
  podman image exists "localhost/ettin-debian:$codename" && return 0
  log "base: debootstrap --variant=minbase $codename"
  rm -rf "$rootfs"
  debootstrap --variant=minbase "$codename" "$rootfs" http://deb.debian.org/debian >"$CACHE/debootstrap-$codename.log" 2>&1 ||
    { tail -20 "$CACHE/debootstrap-$codename.log"; return 1; }
  tar -C "$rootfs" -c . | podman import - "localhost/ettin-debian:$codename" >/dev/null
  rm -rf "$rootfs"
}

build() {
  podman build -q --network=host "$@" >/dev/null 2>"$CACHE/build.log" || { tail -40 "$CACHE/build.log"; return 1; }
}
