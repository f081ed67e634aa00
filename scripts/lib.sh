# Shared by the install scripts (sourced, not run).
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

log() { printf '\033[1m== %s\033[0m\n' "$*"; }

# The Postgres major this Debian release packages itself (/usr/lib/postgresql/N), and its pgvector
# package when that is one ettin can use (>= 0.8: trixie's 0.8.0; bookworm's 0.4 is not, so
# scripts/deps.sh builds trixie's source there). Other systems: 15, with PG_CONFIG for the rest.
case $(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release 2>/dev/null) in
  trixie) SYSTEM_PG=17 SYSTEM_PGVECTOR=postgresql-17-pgvector ;;
  *) SYSTEM_PG=15 SYSTEM_PGVECTOR="" ;;
esac

# pgrx_register MAJOR PG_CONFIG: `cargo pgrx install` builds with feature pgMAJOR against the
# pg_config named in $PGRX_HOME/config.toml; other majors' lines stay (cargo pgrx init would drop them).
pgrx_register() {
  local major=$1 pg_config=$2 config=${PGRX_HOME:-$HOME/.pgrx}/config.toml
  mkdir -p "$(dirname "$config")"
  [ -f "$config" ] || echo "[configs]" >"$config"
  grep -qs "^pg$major *= *\"$pg_config\"" "$config" && return 0
  sed -i "/^pg$major *=/d" "$config"
  sed -i "/^\[configs\]/a pg$major = \"$pg_config\"" "$config"
  log "pgrx: registered pg$major ($pg_config)"
}

# pgvector_source BUILD_DIR: Debian trixie's pgvector source package (0.8.0), unpacked in
# BUILD_DIR/pgvector/src (scripts/deps.sh builds it for 15 on bookworm, pg-major.sh for 16/18).
pgvector_source() {
  local dir=$1/pgvector list=/etc/apt/sources.list.d/ettin-trixie-src.list
  [ -f "$list" ] || echo "deb-src http://deb.debian.org/debian trixie main" | $SUDO tee "$list" >/dev/null
  $SUDO apt-get update -q
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$dir" && apt-get source -q --download-only pgvector/trixie && dpkg-source -x --no-check ./*.dsc src >/dev/null)
}

# onnxruntime_from_wheel VERSION PLATFORM DIR: put libonnxruntime.so.VERSION from the PyPI
# onnxruntime wheel into DIR, unless it is there. pip checks the wheel's hash against the index.
onnxruntime_from_wheel() {
  local version=$1 platform=$2 dir=$3 tmp
  [ -f "$dir/libonnxruntime.so.$version" ] && return 0
  log "ONNX Runtime $version: extracting libonnxruntime.so from the PyPI wheel"
  $SUDO mkdir -p "$dir" && $SUDO chown "$(id -u)" "$dir"
  tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary=:all: --platform "$platform" \
    --python-version 3.11 "onnxruntime==$version" -d "$tmp"
  unzip -q -j -o "$tmp"/onnxruntime-*.whl "onnxruntime/capi/libonnxruntime.so.$version" -d "$dir"
  rm -rf "$tmp"
}
