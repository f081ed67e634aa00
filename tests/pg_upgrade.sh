#!/usr/bin/env bash
# pg_upgrade from Postgres 15 to NEW (default 18) with vector and ettin installed: a table embedded
# by ettin_embed_table with an HNSW index and a view that calls ettin_rerank. Runs `pg_upgrade
# --check`, then the real upgrade, then the same retrieve-then-rerank statement on the new server,
# which must return what the old one did, through the HNSW index. Needs `make install PG=NEW`
# (or NEW_PG_CONFIG naming the new server's pg_config; tests/pg-container.sh runs it for 17).
set -euo pipefail
NEW=${1:-18}
here=$(cd "$(dirname "$0")" && pwd)
old_bin=/usr/lib/postgresql/15/bin
new_bin=$("${NEW_PG_CONFIG:-${ETTIN_PG_ROOT:-/var/cache/ettin/pg}/$NEW/bin/pg_config}" --bindir)
# Both servers listen on Unix sockets only (listen_addresses = ''), in this run's own directory:
# the port numbers only name the socket files, no TCP port is taken.
OLD_PORT=5432 NEW_PORT=5433
root=$(mktemp -d /var/tmp/ettin-upgrade.XXXXXX)
as_server() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  as_server "$old_bin/pg_ctl" -D "$root/old" -m immediate stop >/dev/null 2>&1 || true
  as_server "$new_bin/pg_ctl" -D "$root/new" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$root"
}
trap cleanup EXIT
mkdir -p "$root/models/ettin-test"
cp -r "$here/fixtures/models/modular" "$here/fixtures/models/static" "$root/models/ettin-test/"
chmod -R a+rX "$root/models"
[ "$(id -u)" -ne 0 ] || chown -R postgres:postgres "$root"
settings() { # the settings a node needs (pg_upgrade does not carry postgresql.conf over)
  printf "port = %s\nunix_socket_directories = '%s'\nlisten_addresses = ''\nfsync = off\nettin.model_dir = '%s'\nettin.embed_model = 'ettin-test/static'\nettin.model = 'ettin-test/modular'\n" \
    "$1" "$root" "$root/models" >>"$2/postgresql.conf"
}
export PGHOST=$root PGUSER=postgres

as_server "$old_bin/initdb" -D "$root/old" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
settings "$OLD_PORT" "$root/old"
as_server "$old_bin/pg_ctl" -D "$root/old" -l "$root/old.log" -w start >/dev/null
QUERY="SELECT string_agg(id || ':' || round(score::numeric, 4), ' ') FROM best"
"$old_bin/psql" -Xq -v ON_ERROR_STOP=1 -p "$OLD_PORT" -d postgres <<'SQL'
CREATE DATABASE app;
\c app
CREATE EXTENSION vector;
CREATE EXTENSION ettin;
CREATE TABLE docs (id int PRIMARY KEY, body text NOT NULL, embedding vector(32));
INSERT INTO docs (id, body)
SELECT i, t FROM jsonb_array_elements_text(pg_read_file(current_setting('ettin.model_dir') || '/ettin-test/static/reference.json')::jsonb->'texts') WITH ORDINALITY AS x(t, i)
WHERE trim(t) <> '';
SET client_min_messages = warning;
CALL ettin_embed_table('docs', 'body', 'embedding');
CREATE INDEX docs_embedding_idx ON docs USING hnsw (embedding vector_cosine_ops);
CREATE VIEW best AS
WITH c AS (SELECT id, body FROM docs ORDER BY embedding <=> ettin_embed('free software license')::vector LIMIT 10),
     b AS (SELECT array_agg(id) AS ids, array_agg(body) AS bodies FROM c)
SELECT b.ids[r.idx] AS id, r.score FROM b, ettin_rerank('free software license', b.bodies, 5) AS r;
SQL
before=$("$old_bin/psql" -XAtq -p "$OLD_PORT" -d app -c "SET enable_seqscan = off" -c "$QUERY")
# Debian's 15.20 (bookworm-security) stamps an attribute option `pg_attver` on every column it
# creates or alters (RESET puts it back), which the 16.2 and 18.6 servers here do not know: pg_upgrade's schema restore stops on it ("unrecognized parameter"). Remove
# it from the old cluster's catalog right before the upgrade (superuser), and say how many.
attver=$("$old_bin/psql" -XAtq -v ON_ERROR_STOP=1 -p "$OLD_PORT" -d app <<'SQL'
WITH cleaned AS (
  UPDATE pg_attribute a
  SET attoptions = (SELECT array_agg(o) FROM unnest(a.attoptions) AS o WHERE o NOT LIKE 'pg_attver=%')
  FROM pg_class c
  WHERE c.oid = a.attrelid AND array_to_string(a.attoptions, ',') LIKE '%pg_attver=%'
    AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace, 'pg_toast'::regnamespace)
  RETURNING 1)
SELECT count(*) FROM cleaned;
SQL
)
[ "$attver" = 0 ] || echo "pg_upgrade: removed the Debian-15.20-only attribute option pg_attver from $attver columns first"
as_server "$old_bin/pg_ctl" -D "$root/old" -w stop >/dev/null

# Postgres 18's initdb turns data checksums on by default; pg_upgrade needs them to match.
checksums=""
[ "$NEW" -lt 18 ] || checksums=--no-data-checksums
as_server "$new_bin/initdb" -D "$root/new" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync $checksums >/dev/null
settings "$NEW_PORT" "$root/new"
cd "$root"   # pg_upgrade writes its logs into the current directory
upgrade() { as_server "$new_bin/pg_upgrade" -b "$old_bin" -B "$new_bin" -d "$root/old" -D "$root/new" \
  -p "$OLD_PORT" -P "$NEW_PORT" -U postgres "$@"; }
if ! upgrade --check >"$root/check.out" 2>&1; then cat "$root/check.out"; exit 1; fi
echo "pg_upgrade: --check from 15 to $NEW passed ($(grep -c '^Checking' "$root/check.out") checks)"
if ! upgrade >"$root/upgrade.out" 2>&1; then
  tail -5 "$root/upgrade.out"; grep -h -B2 -A8 'ERROR' $(find "$root/new" -path '*pg_upgrade_output.d*' -name 'pg_upgrade_dump_*.log') | head -40; exit 1
fi
echo "pg_upgrade: upgraded 15 → $NEW"
as_server "$new_bin/pg_ctl" -D "$root/new" -l "$root/new.log" -w start >/dev/null
after=$("$new_bin/psql" -XAtq -v ON_ERROR_STOP=1 -p "$NEW_PORT" -d app -c "SET enable_seqscan = off" -c "$QUERY")
plan=$("$new_bin/psql" -XAtq -p "$NEW_PORT" -d app -c "SET enable_seqscan = off" \
  -c "EXPLAIN SELECT id FROM docs ORDER BY embedding <=> ettin_embed('x')::vector LIMIT 3")
versions=$("$new_bin/psql" -XAtq -p "$NEW_PORT" -d app -c "SELECT string_agg(extname || ' ' || extversion, ', ' ORDER BY extname) FROM pg_extension WHERE extname IN ('ettin', 'vector')")
server=$("$new_bin/psql" -XAtq -p "$NEW_PORT" -d app -c "SHOW server_version")
[ -n "$before" ] && [ "$before" = "$after" ] || { echo "results differ: before [$before], after [$after]"; exit 1; }
echo "$plan" | grep -q "Index Scan using docs_embedding_idx" || { echo "no HNSW index scan after the upgrade:"; echo "$plan"; exit 1; }
echo "pg_upgrade: on $server ($versions) the view over ettin_embed + HNSW + ettin_rerank returns what 15 did: $after"
