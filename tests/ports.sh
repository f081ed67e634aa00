#!/usr/bin/env bash
# Test servers never depend on a fixed free port: scripts/ports.py draws ports outside the
# ephemeral range that are free; a cluster whose remembered port was taken meanwhile starts on
# another; a port fixed by the caller and taken fails with the holder's name and pid.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
ports="python3 $repo/scripts/ports.py"
ROOT=$(mktemp -d /var/tmp/ettin-ports.XXXXXX)
chmod 755 "$ROOT"
export ETTIN_CLUSTER_ROOT=$ROOT/cluster
holder_pid=
cleanup() {
  "$repo/scripts/cluster.sh" stop >/dev/null 2>&1 || true
  [ -n "$holder_pid" ] && kill "$holder_pid" 2>/dev/null || true
  rm -rf "$ROOT"
}
trap cleanup EXIT
fail() { echo "ports: $*"; exit 1; }

read -r low high < /proc/sys/net/ipv4/ip_local_port_range
drawn=$($ports free 20)
[ "$(sort -u <<<"$drawn" | wc -l)" -eq 20 ] || fail "free 20 gave repeated ports: $drawn"
for p in $drawn; do
  { [ "$p" -ge "$low" ] && [ "$p" -le "$high" ]; } && fail "port $p is inside the ephemeral range $low-$high"
  $ports is-free "$p" || fail "drawn port $p is not free"
done
echo "ports: 20 drawn ports, distinct, free, none in the ephemeral range $low-$high"

# Another process takes a port (as a leftover server or a client's connection would).
held=$($ports free)
python3 -c "import socket, time; s = socket.socket(); s.bind(('127.0.0.1', $held)); s.listen(); time.sleep(600)" &
holder_pid=$!
for _ in $(seq 50); do $ports is-free "$held" || break; sleep 0.1; done
! $ports is-free "$held" || fail "port $held still free after it was taken"
$ports holder "$held" | grep -q "pid=$holder_pid" || fail "holder of $held does not name pid $holder_pid: $($ports holder "$held")"

# The cluster last ran on that port: it starts on another one and says which.
mkdir -p "$ETTIN_CLUSTER_ROOT" && echo "$held" > "$ETTIN_CLUSTER_ROOT/port"
[ "$(id -u)" -ne 0 ] || chown -R postgres:postgres "$ETTIN_CLUSTER_ROOT"
"$repo/scripts/cluster.sh" start >/dev/null
got=$("$repo/scripts/cluster.sh" port)
[ "$got" != "$held" ] || fail "the cluster claims the taken port $held"
eval "$("$repo/scripts/cluster.sh" env)"
[ "$(psql -XAtq -d postgres -c 'SHOW port')" = "$got" ] || fail "the server does not listen on $got"
"$repo/scripts/cluster.sh" stop
echo "ports: a cluster whose port $held was taken started on $got"

# A port the caller fixed, taken: a clear failure naming the holder.
if out=$(ETTIN_CLUSTER_PORT=$held "$repo/scripts/cluster.sh" start 2>&1); then
  fail "the cluster started on the taken port $held"
fi
grep -q "port $held is held by: .*pid=$holder_pid" <<<"$out" || fail "the failure does not name the holder: $out"
echo "ports: a fixed, taken port fails naming its holder (pid $holder_pid)"
