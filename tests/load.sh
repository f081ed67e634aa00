#!/usr/bin/env bash
# Load: CLIENTS connections reranking 20 candidates each, for DURATION seconds (pgbench). Passes when
# no transaction fails, each backend's private RSS (RssAnon: not the shared buffers it touches)
# stays flat after warm-up and its thread count does not
# grow. Needs the test cluster up (tests/run_sql_tests.sh runs a short form; for the full run:
#   DURATION=300 tests/load.sh   with the cluster started by scripts/cluster.sh).
set -euo pipefail
DURATION=${DURATION:-20}
CLIENTS=${CLIENTS:-8}
DB=${ETTIN_TEST_DB:-ettin_test}
MAX_GROWTH_KB=${MAX_GROWTH_KB:-8192}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/rerank.sql" <<'SQL'
\set n random(1, 100000)
SELECT count(*) FROM ettin_rerank('free software license ' || :n,
  ARRAY(SELECT 'passage ' || g || ' about the warranty of program ' || :n FROM generate_series(1, 20) g),
  5, 'ettin-test/modular');
SQL

sample() {  # pid rss_kb threads, for every pgbench backend
  psql -XAtq -d "$DB" -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench'" |
    while read -r pid; do
      [ -r "/proc/$pid/status" ] || continue
      awk -v pid="$pid" '/^RssAnon:/ {rss=$2} /^Threads:/ {th=$2} END {print pid, rss, th}' "/proc/$pid/status"
    done | sort
}

pgbench -n -c "$CLIENTS" -j 2 -T "$DURATION" -f "$work/rerank.sql" "$DB" >"$work/pgbench.out" 2>&1 &
bench=$!
sleep $(( DURATION / 3 ))
sample > "$work/warm"
sleep $(( DURATION - DURATION / 3 - 2 ))
sample > "$work/end"
wait "$bench" || { cat "$work/pgbench.out"; echo "pgbench failed"; exit 1; }

tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$work/pgbench.out" | head -1)
failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$work/pgbench.out")
processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$work/pgbench.out")
echo "load: $CLIENTS clients x ${DURATION}s: $processed transactions, ${tps} tps, ${failed:-0} failed"
status=0
[ "${failed:-0}" = 0 ] && [ "${processed:-0}" -gt 0 ] || status=1
join "$work/warm" "$work/end" | while read -r pid rss0 th0 rss1 th1; do
  growth=$(( rss1 - rss0 ))
  echo "  backend $pid: private RSS ${rss0} -> ${rss1} kB (${growth:+$growth}), threads $th0 -> $th1"
  if [ "$growth" -gt "$MAX_GROWTH_KB" ] || [ "$th1" -gt "$th0" ]; then echo "  ^ grew"; exit 1; fi
done || status=1
[ -s "$work/warm" ] || { echo "no backends sampled"; status=1; }
exit $status
