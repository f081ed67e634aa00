#!/usr/bin/env bash
# Every suite `make test` runs, one after another even when one fails, then one line that counts
# them: "ettin: N passed, M failed". A suite is a cargo test binary (engine, no Postgres), the
# format check, or one line of tests/run_sql_tests.sh (a SQL file, a client suite, a script).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
log=$(mktemp)
trap 'rm -f "$log"' EXIT
passed=0 failed=0
count() { # count LOG: add its "ok"/"FAIL" suite lines to the totals
  passed=$((passed + $(grep -cE '^(ok   |test result: ok\.)' "$1")))
  failed=$((failed + $(grep -cE '^(FAIL |test result: FAILED\.)' "$1")))
}

cd "$repo"
if cargo fmt --all --check >"$log" 2>&1; then echo "ok   cargo fmt"; passed=$((passed + 1))
else echo "FAIL cargo fmt"; head -20 "$log"; failed=$((failed + 1)); fi

# No two modules of a crate import each other (a circle means none of them can be read alone).
if python3 "$here/import_circles.py" engine/src src >"$log" 2>&1; then echo "ok   import circles"; passed=$((passed + 1))
else echo "FAIL import circles"; failed=$((failed + 1)); fi
sed 's/^/     /' "$log"

cargo test -p ettin-engine 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
count "$log"
if [ "$status" -ne 0 ] && ! grep -q '^test result: FAILED\.' "$log"; then
  failed=$((failed + 1)); echo "FAIL engine tests did not build or run"
fi

# Test servers take drawn ports, and say who holds a port they cannot take.
if bash "$here/ports.sh" >"$log" 2>&1; then echo "ok   ports"; passed=$((passed + 1))
else echo "FAIL ports"; failed=$((failed + 1)); fi
sed 's/^/     /' "$log"

bash "$here/run_sql_tests.sh" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
count "$log"
if [ "$status" -ne 0 ] && ! grep -q '^FAIL ' "$log"; then
  failed=$((failed + 1)); echo "FAIL SQL tests stopped early"
fi

# Scale-out: primary, two standbys and pgpool-II under load, a standby stopped mid-way.
if bash "$here/scaleout.sh" >"$log" 2>&1; then
  echo "ok   scaleout"; passed=$((passed + 1)); grep "scaleout\[" "$log" | sed 's/^/     /'
else
  echo "FAIL scaleout"; failed=$((failed + 1))
  # What the load script said first (an assertion, an error), then the nodes' logs.
  grep -E "scaleout\[|Error|assert" "$log" | grep -v "unable to get password" | tail -12 | sed 's/^/     /'
  tail -40 "$log" | sed 's/^/     /'
fi

# Other majors: the SQL suite with its clients, load, standby, sync and shared-worker checks in a
# cluster of that major, then pg_upgrade from 15 (tests/major.sh) — on this host for TEST_MAJORS
# (e.g. "16 18"; `make install PG=18` first), in a container of the Debian release that packages
# them for CONTAINER_MAJORS ("17": tests/pg-container.sh).
major() { # major M COMMAND...: run it, its lines marked [pgM], and count them
  local m=$1; shift
  "$@" 2>&1 | sed -u "s/^\(ok   \|FAIL \)/\1[pg$m] /" | tee "$log"
  local status=${PIPESTATUS[0]}
  count "$log"
  if [ "$status" -ne 0 ] && ! grep -q '^FAIL ' "$log"; then
    failed=$((failed + 1)); echo "FAIL [pg$m] stopped early"
  fi
}
for m in ${TEST_MAJORS:-}; do
  pg_config=${ETTIN_PG_ROOT:-/var/cache/ettin/pg}/$m/bin/pg_config
  if [ ! -x "$pg_config" ]; then
    echo "FAIL [pg$m] not installed: make install PG=$m"; failed=$((failed + 1)); continue
  fi
  major "$m" env PG_CONFIG="$pg_config" bash "$here/major.sh" "$m"
done
for m in ${CONTAINER_MAJORS:-}; do
  major "$m" bash "$here/pg-container.sh" "$m"
done

# The Docker image, built and run with podman (tests/docker.sh; ETTIN_SKIP_DOCKER=1 skips it).
if [ -z "${ETTIN_SKIP_DOCKER:-}" ]; then
  if bash "$here/docker.sh" >"$log" 2>&1; then
    echo "ok   docker"; passed=$((passed + 1)); grep -vE "^(debconf|W: |Getting|Copying|Writing|Storing)" "$log" | sed 's/^/     /'
  else
    echo "FAIL docker"; failed=$((failed + 1)); tail -30 "$log" | sed 's/^/     /'
  fi
fi

echo "ettin: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
