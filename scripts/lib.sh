# Shared by the install scripts (sourced, not run).
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

log() { printf '\033[1m== %s\033[0m\n' "$*"; }

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
