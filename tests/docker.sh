#!/usr/bin/env bash
# The Docker image, built from docker/Dockerfile and run with podman (Debian's) on this machine.
# No image registry is reachable here, so the base images are local stand-ins built from a
# debootstrap'ed Debian (tests/docker/*.Dockerfile): rust:1.95-trixie → plain Debian 13 with the
# host's Rust toolchain and caches mounted into the build (podman build -v), postgres:17-trixie →
# Debian's postgresql-17 with an entrypoint doing what the official one does for these checks.
# Proves: the image builds; a container initialises Postgres with vector and ettin; a model mounted
# at the model volume reranks with the fixture's reference scores and embeds with its reference
# vectors; with shared_preload_libraries=ettin and ettin.inference=shared, ettin-inferd runs in the
# container and answers. Prints the image size.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
# With no arguments, the Dockerfile's defaults (Postgres 17 on Debian 13); `tests/docker.sh 15
# bookworm` builds that pair instead.
PG_MAJOR=${1:-$(sed -n 's/^ARG PG_MAJOR=//p' "$repo/docker/Dockerfile")}
DEBIAN=${2:-$(sed -n 's/^ARG DEBIAN=//p' "$repo/docker/Dockerfile")}
build_args=()
what="its defaults: PG_MAJOR=$PG_MAJOR, DEBIAN=$DEBIAN"
if [ -n "${1:-}" ]; then
  build_args=(--build-arg PG_MAJOR="$PG_MAJOR" --build-arg DEBIAN="$DEBIAN"); what="PG_MAJOR=$PG_MAJOR, DEBIAN=$DEBIAN"
fi
PORT=$(python3 "$repo/scripts/ports.py" free)   # published on 127.0.0.1, outside the ephemeral range
IMAGE=localhost/ettin:test

. "$here/podman.sh"
podman_setup
debian_base "$DEBIAN"
log "stand-in base images ($DEBIAN)"
build -f "$here/docker/build-base.Dockerfile" --build-arg DEBIAN="$DEBIAN" -t "localhost/ettin-rust:1.95-$DEBIAN" "$repo"
build -f "$here/docker/postgres-base.Dockerfile" --build-arg DEBIAN="$DEBIAN" --build-arg PG_MAJOR="$PG_MAJOR" \
  -t "localhost/ettin-postgres:$PG_MAJOR-$DEBIAN" "$repo"

log "building docker/Dockerfile ($what)"
t0=$(date +%s)
# A target dir per Debian release: what trixie builds cannot run on the bookworm host.
target=/var/tmp/ettin-target-$DEBIAN
[ "$DEBIAN" != bookworm ] || target=${CARGO_TARGET_DIR:-/var/tmp/ettin-target}
mkdir -p "$target"
build -f "$repo/docker/Dockerfile" "${build_args[@]}" \
  --build-arg BUILD_IMAGE="localhost/ettin-rust:1.95-$DEBIAN" \
  --build-arg BASE_IMAGE="localhost/ettin-postgres:$PG_MAJOR-$DEBIAN" \
  -v "$HOME/.cargo:/root/.cargo" -v "$HOME/.rustup:/root/.rustup" \
  -v /var/cache/ettin/onnxruntime:/var/cache/ettin/onnxruntime \
  -v "$target:/var/tmp/ettin-target" \
  -t "$IMAGE" "$repo"
size=$(podman image inspect "$IMAGE" --format '{{.Size}}')
log "image $IMAGE built in $(( $(date +%s) - t0 )) s, $(( size / 1024 / 1024 )) MB"

models=$CACHE/models
rm -rf "$models" && mkdir -p "$models/ettin-test"
cp -r "$here/fixtures/models/modular" "$here/fixtures/models/static" "$models/ettin-test/"
chmod -R a+rX "$models"
cleanup() { podman rm -f ettin-docker-test >/dev/null 2>&1 || true; }
trap cleanup EXIT
run() { # run ARGS...: a fresh container on $PORT with the models mounted, ready for connections
  cleanup
  podman run -d --name ettin-docker-test -e POSTGRES_PASSWORD=ettin -p "127.0.0.1:$PORT:5432" \
    -v "$models:/var/lib/postgresql/ettin/models:ro" "$IMAGE" "$@" >/dev/null ||
    { echo "the container did not start; $(python3 "$repo/scripts/ports.py" holder "$PORT")"; exit 1; }
  for _ in $(seq 120); do
    PGPASSWORD=ettin psql -XAtq -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -c "SELECT 1" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  podman logs ettin-docker-test | tail -20; exit 1
}
sql() { PGPASSWORD=ettin psql -XAtq -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres "$@"; }
# The fixture's reference scores for its first ranking, and embed vectors for the first text.
check_models() {
  sql -c "SELECT extname || ' ' || extversion FROM pg_extension WHERE extname IN ('vector', 'ettin') ORDER BY 1" | tr '\n' ' '
  echo
  sql <<'SQL'
\set ON_ERROR_STOP 1
CREATE TEMP TABLE ref AS SELECT pg_read_file('/var/lib/postgresql/ettin/models/ettin-test/modular/reference.json')::jsonb AS r,
  pg_read_file('/var/lib/postgresql/ettin/models/ettin-test/static/reference.json')::jsonb AS s;
DO $$
DECLARE worst float8; sigma float8;
BEGIN
  SELECT stddev_pop(x::float8) INTO sigma FROM ref, jsonb_array_elements_text(r->'rankings'->0->'scores'->'default') x;
  SELECT max(abs(got - (r->'rankings'->0->'scores'->'default'->>(i::int - 1))::float8)) INTO worst
  FROM ref, unnest(rerank_score(r->'rankings'->0->>'query',
         ARRAY(SELECT jsonb_array_elements_text(r->'rankings'->0->'documents')), 'ettin-test/modular')) WITH ORDINALITY AS u(got, i);
  IF worst IS NULL OR worst > 1e-3 * sigma THEN RAISE EXCEPTION 'rerank scores differ from the reference by %', worst; END IF;
  SELECT max(abs(g - (s->'vectors'->'plain'->0->>(i::int - 1))::float8)) INTO worst
  FROM ref, unnest(ettin_embed(s->'texts'->>0, 'ettin-test/static')) WITH ORDINALITY AS v(g, i);
  IF worst IS NULL OR worst > 1e-5 THEN RAISE EXCEPTION 'embedding differs from the reference by %', worst; END IF;
  RAISE NOTICE 'reference scores and vectors reproduced in the container';
END $$;
SQL
}

log "container: backend inference"
run
echo "   $(check_models)"
sql -c "SELECT 'in the container: ' || version() || '; inference ' || (ettin_info()->>'inference') || ', onnxruntime ' || (ettin_info()->>'onnxruntime')"

log "container: shared_preload_libraries = ettin, ettin.inference = shared"
run postgres -c shared_preload_libraries=ettin -c ettin.inference=shared
for _ in $(seq 60); do
  sql -c "SELECT ettin_info()->'worker' ? 'pid'" 2>/dev/null | grep -q t && break
  sleep 0.5
done
check_models >/dev/null
worker=$(sql -c "SELECT ettin_info()->'worker'->>'pid'")
podman exec ettin-docker-test pgrep -f ettin-inferd >/dev/null || { echo "no ettin-inferd process in the container"; exit 1; }
[ -n "$worker" ] || { echo "ettin_info() shows no worker"; exit 1; }
sql -c "SELECT 'shared worker in the container: pid ' || (ettin_info()->'worker'->>'pid') || ', ' || jsonb_array_length(ettin_info()->'worker'->'models') || ' models loaded, ' || (ettin_info()->'worker'->>'requests') || ' requests answered'"
# Every run leaves the previous build's stages untagged; keep the last two hours' (layer cache).
podman image prune -f --filter until=2h >/dev/null
echo "docker: image $IMAGE, $(( size / 1024 / 1024 )) MB; stand-in bases: the entrypoint is a minimal one (initdb, init scripts, postgres), not the official image's"
