#!/usr/bin/env bash
# Scale-out: a primary, two streaming hot standbys and pgpool-II (streaming-replication mode, load
# balancing per statement) on loopback ports, all under one temporary root that is removed at
# the end. Each server has its own ettin.model_dir: the primary and standby 1 get the model files
# copied in place, standby 2 downloads the model on first use from the Hub stand-in.
# tests/python/scaleout_load.py then drives 8 clients through pgpool, writes through it, and
# stops standby 2 in the middle of the load; first with ettin.inference = backend on every node,
# then again with the standbys in shared mode (one inference worker per node).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
PG_BIN=${PG_BIN:-$(dirname "$(readlink -f "${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}")")}
# Five free TCP ports outside the ephemeral range (scripts/ports.py); the Hub stand-in picks its own.
read -r P0 S1 S2 POOL PCP <<<"$(python3 "$repo/scripts/ports.py" free 5 | tr '\n' ' ')"
VENV=${ETTIN_TEST_VENV:-/var/cache/ettin/venv}
MODEL=hubtest/modular
ROOT=$(mktemp -d /var/tmp/ettin-scaleout.XXXXXX)
chmod 755 "$ROOT"
as_server() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" -ne 0 ] || chown postgres:postgres "$ROOT"
command -v pgpool >/dev/null || { echo "pgpool-II is not installed (make test-deps installs Debian's pgpool2)"; exit 1; }

node_stop() { [ -f "$ROOT/$1/postmaster.pid" ] && as_server "$PG_BIN/pg_ctl" -D "$ROOT/$1" stop -m "${2:-fast}" -w >/dev/null 2>&1 || true; }
pool_stop() { # fast shutdown (SIGINT: no waiting for clients), then make sure it is gone
  local pid
  pid=$(cat "$ROOT/pgpool.pid" 2>/dev/null) || return 0
  kill -INT "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  pkill -KILL -f "pgpool -n -D -f $ROOT/" 2>/dev/null || true
  rm -f "$ROOT/pgpool.pid"
}
cleanup() {
  status=$?
  pool_stop
  for n in s2 s1 p0; do node_stop $n immediate; done
  [ -n "${HUB_PID:-}" ] && kill "$HUB_PID" 2>/dev/null || true
  if [ $status -ne 0 ]; then
    for log in "$ROOT"/*.log; do echo "--- $log"; tail -15 "$log"; done
  fi
  if [ -n "${ETTIN_SCALEOUT_KEEP:-}" ]; then echo "kept $ROOT"; else rm -rf "$ROOT"; fi
}
trap cleanup EXIT

# Models: copied in place on the primary and standby 1; standby 2 fetches from the Hub stand-in.
for n in p0 s1 s2; do mkdir -p "$ROOT/models-$n"; done
for n in p0 s1; do mkdir -p "$ROOT/models-$n/hubtest" && cp -r "$here/fixtures/models/modular" "$ROOT/models-$n/$MODEL"; done
mkdir -p "$ROOT/hub/hubtest" && cp -r "$here/fixtures/models/modular" "$ROOT/hub/$MODEL"
chmod -R a+rX "$ROOT"/models-*
[ "$(id -u)" -ne 0 ] || chown -R postgres:postgres "$ROOT/models-s2"   # standby 2 downloads here
. "$here/hub_start.sh"
start_hub "$ROOT/hub" "$ROOT/hub.log"

node_start() { # node port model_dir [extra -c settings]
  local n=$1 port=$2 models=$3; shift 3
  as_server "$PG_BIN/pg_ctl" -D "$ROOT/$n" start -w -l "$ROOT/$n.log" \
    -o "-p $port -k $ROOT -c listen_addresses=127.0.0.1 -c ettin.model_dir=$models $*" >/dev/null ||
    { echo "node $n did not start; $(python3 "$repo/scripts/ports.py" holder "$port")"; exit 1; }
}

as_server "$PG_BIN/initdb" -D "$ROOT/p0" -U postgres --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
cat >>"$ROOT/p0/postgresql.conf" <<EOF
fsync = off
wal_level = replica
max_wal_senders = 10
hot_standby = on
track_functions = all
EOF
echo "host replication all 127.0.0.1/32 trust" >>"$ROOT/p0/pg_hba.conf"
node_start p0 "$P0" "$ROOT/models-p0"
export PGHOST=$ROOT PGUSER=postgres
psql -Xq -p "$P0" -d postgres -c "CREATE DATABASE ettin_scale"
# The demo corpus, embedded on the primary by the static fixture (standbys rerank stored vectors).
mkdir -p "$ROOT/models-p0/ettin-test" && cp -r "$here/fixtures/models/static" "$ROOT/models-p0/ettin-test/"
chmod -R a+rX "$ROOT/models-p0"
(cd "$repo" && PGOPTIONS="-c ettin.embed_model=ettin-test/static" \
  psql -Xq -v ON_ERROR_STOP=1 -p "$P0" -d ettin_scale -f sql/load_demo_corpus.sql >/dev/null 2>&1)
for n in s1 s2; do
  as_server "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$P0" -U postgres -D "$ROOT/$n" -R -X stream --no-sync --checkpoint=fast
done
standby_settings=""
start_standbys() {
  node_start s1 "$S1" "$ROOT/models-s1" "$standby_settings"
  node_start s2 "$S2" "$ROOT/models-s2" "-c ettin.allow_download=all -c ettin.hub_endpoint=http://127.0.0.1:$HUB_PORT $standby_settings"
}
start_standbys

cat >"$ROOT/pgpool.conf" <<EOF
backend_clustering_mode = 'streaming_replication'
listen_addresses = '127.0.0.1'
port = $POOL
socket_dir = '$ROOT'
pcp_listen_addresses = '127.0.0.1'
pcp_port = $PCP
pcp_socket_dir = '$ROOT'
wd_ipc_socket_dir = '$ROOT'
pid_file_name = '$ROOT/pgpool.pid'
logdir = '$ROOT'
backend_hostname0 = '127.0.0.1'
backend_port0 = $P0
backend_weight0 = 0
backend_flag0 = 'ALLOW_TO_FAILOVER'
backend_hostname1 = '127.0.0.1'
backend_port1 = $S1
backend_weight1 = 1
backend_flag1 = 'ALLOW_TO_FAILOVER'
backend_hostname2 = '127.0.0.1'
backend_port2 = $S2
backend_weight2 = 1
backend_flag2 = 'ALLOW_TO_FAILOVER'
num_init_children = 16
max_pool = 2
enable_pool_hba = off
pool_passwd = ''
load_balance_mode = on
statement_level_load_balance = on
disable_load_balance_on_write = 'transaction'
sr_check_period = 1
sr_check_user = 'postgres'
health_check_period = 1
health_check_timeout = 5
health_check_user = 'postgres'
health_check_max_retries = 0
failover_on_backend_error = on
failover_command = ''
search_primary_node_timeout = 10
use_watchdog = off
log_destination = 'stderr'
EOF
touch "$ROOT/pcp.conf" "$ROOT/pool_hba.conf"
pool_start() {
  pgpool -n -D -f "$ROOT/pgpool.conf" -F "$ROOT/pcp.conf" -a "$ROOT/pool_hba.conf" >>"$ROOT/pgpool.log" 2>&1 &
  for _ in $(seq 100); do psql -XAtq -h 127.0.0.1 -p "$POOL" -d ettin_scale -c "SELECT 1" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "pgpool did not start; $(python3 "$repo/scripts/ports.py" holder "$POOL"); $(python3 "$repo/scripts/ports.py" holder "$PCP")"; exit 1
}
pool_start

load() { # mode label
  ETTIN_SCALEOUT_ROOT=$ROOT ETTIN_SCALEOUT_PORTS="$P0,$S1,$S2,$POOL" ETTIN_SCALEOUT_MODEL=$MODEL \
    ETTIN_SCALEOUT_PG_BIN=$PG_BIN ETTIN_SCALEOUT_MODE=$1 timeout 120 "$VENV/bin/python" "$here/python/scaleout_load.py"
}
load backend

# Again with one inference worker per standby: stop pgpool, restart the standbys preloaded in
# shared mode (standby 2 was stopped by the failover test), start pgpool with a fresh node status.
pool_stop
node_stop s1
node_stop s2
standby_settings="-c shared_preload_libraries=ettin -c ettin.inference=shared"
start_standbys
pool_start
load shared
