-- ettin 0.2.0 → 0.3.0: ettin_chunk (long texts into chunks that fit a model), ettin_embed_table that
-- never reads embedded rows again, and syncs (vectors that follow their text: the SQL of
-- sql/sync.sql, verbatim, at the end).
-- Applied by ALTER EXTENSION ettin UPDATE; tests/sql/11_upgrade.sql checks that the result equals a fresh 0.3.0.
\echo Use "ALTER EXTENSION ettin UPDATE TO '0.3.0'" to load this file. \quit
CREATE  FUNCTION "ettin_chunk"(
	"input" TEXT, /* core::option::Option<&str> */
	"model" TEXT DEFAULT NULL, /* core::option::Option<&str> */
	"max_tokens" INT DEFAULT NULL, /* core::option::Option<i32> */
	"overlap" INT DEFAULT 0 /* core::option::Option<i32> */
) RETURNS TABLE (
	"seq" INT,  /* i32 */
	"chunk" TEXT,  /* alloc::string::String */
	"start_char" INT,  /* i32 */
	"end_char" INT  /* i32 */
)
STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'ettin_chunk_wrapper';

CREATE  FUNCTION "ettin_sync_poke"() RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'ettin_sync_poke_wrapper';

CREATE  FUNCTION "ettin_sync_wake"() RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'ettin_sync_wake_wrapper';

CREATE  FUNCTION "ettin_sync_worker_available"() RETURNS bool /* bool */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'ettin_sync_worker_available_wrapper';

-- ettin_embed_table: each batch starts where the last one ended (a TID range scan).
CREATE OR REPLACE PROCEDURE ettin_embed_table(
    tbl regclass, source_column name, target_column name,
    model text DEFAULT NULL, prompt_name text DEFAULT NULL, batch_size int DEFAULT 256)
LANGUAGE plpgsql AS $proc$
DECLARE
  total bigint;
  done bigint := 0;
  n bigint;
  started timestamptz := clock_timestamp();
  after tid := '(0,0)';
  secs float8;
  rate float8;
BEGIN
  IF tbl IS NULL OR source_column IS NULL OR target_column IS NULL THEN
    RAISE EXCEPTION 'ettin_embed_table: tbl, source_column and target_column must not be NULL'
      USING ERRCODE = '22004', HINT = 'CALL ettin_embed_table(''passages'', ''body'', ''embedding'')';
  END IF;
  IF batch_size IS NULL OR batch_size < 1 THEN
    RAISE EXCEPTION 'ettin_embed_table: batch_size must be at least 1, not %', coalesce(batch_size::text, 'NULL')
      USING ERRCODE = '22023', HINT = 'the default, 256, suits most models';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = tbl AND attname = source_column AND attnum > 0 AND NOT attisdropped) THEN
    RAISE EXCEPTION 'ettin_embed_table: table % has no column %', tbl, quote_ident(source_column)
      USING ERRCODE = '42703', HINT = 'source_column names the text column to embed';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = tbl AND attname = target_column AND attnum > 0 AND NOT attisdropped) THEN
    RAISE EXCEPTION 'ettin_embed_table: table % has no column %', tbl, quote_ident(target_column)
      USING ERRCODE = '42703', HINT = 'add it first, e.g. ALTER TABLE ... ADD COLUMN embedding vector(384)';
  END IF;
  IF NOT has_column_privilege(tbl, target_column, 'UPDATE') OR NOT has_column_privilege(tbl, source_column, 'SELECT') THEN
    RAISE EXCEPTION 'ettin_embed_table: permission denied to update %.% from %.%', tbl, quote_ident(target_column), tbl, quote_ident(source_column)
      USING ERRCODE = '42501', HINT = 'the backfill runs with your rights: it needs SELECT on the source column and UPDATE on the target column';
  END IF;
  EXECUTE format('SELECT count(*) FROM %s WHERE %I IS NULL AND %I IS NOT NULL', tbl, target_column, source_column)
    INTO total;
  RAISE NOTICE 'ettin_embed_table: % rows of % to embed into %', total, tbl, quote_ident(target_column);
  LOOP
    -- Each batch starts where the last one ended in the heap (a TID range scan): rows already
    -- embedded are not read again, so the last batch costs what the first did.
    EXECUTE format($q$
      WITH batch AS (
        SELECT ctid AS tid, %1$I::text AS src FROM %2$s
        WHERE ctid > $3 AND %3$I IS NULL AND %1$I IS NOT NULL LIMIT %4$s FOR UPDATE SKIP LOCKED),
      bundle AS (SELECT array_agg(tid) AS tids, array_agg(src) AS srcs FROM batch),
      embedded AS (
        SELECT bundle.tids[e.idx] AS tid, e.embedding
        FROM bundle, @extschema@.ettin_embed(bundle.srcs, $1, $2) AS e),
      written AS (
        UPDATE %2$s AS t SET %3$I = embedded.embedding FROM embedded WHERE t.ctid = embedded.tid
        RETURNING 1)
      SELECT (SELECT count(*) FROM written), (SELECT tid FROM batch ORDER BY tid DESC LIMIT 1)
      $q$, source_column, tbl, target_column, batch_size)
      INTO n, after USING model, prompt_name, after;
    EXIT WHEN after IS NULL;
    done := done + n;
    COMMIT;
    secs := greatest(extract(epoch FROM clock_timestamp() - started), 1e-6);
    rate := done / secs;
    RAISE NOTICE 'ettin_embed_table: % / % rows (% rows/s, % s left)',
      done, total, round(rate::numeric, 1), round((greatest(total - done, 0) / rate)::numeric, 1);
  END LOOP;
  RAISE NOTICE 'ettin_embed_table: done, % rows in % s', done,
    round(extract(epoch FROM clock_timestamp() - started)::numeric, 1);
END
$proc$;
COMMENT ON PROCEDURE ettin_embed_table(regclass, name, name, text, text, int) IS
  'Fill target_column with ettin_embed(source_column) where it is NULL, committing every batch_size rows; re-run to continue.';

-- Embeddings that follow the data (ettin_sync_start / ettin_sync_stop). Included in the
-- extension's install script by src/sync.rs (extension_sql_file!) and, for upgrades, in
-- sql/ettin--0.2.0--0.3.0.sql.
--
-- The guarantee: a row is never served with a vector of text it no longer has. A trigger on the
-- table runs in the writer's transaction: in 'async' mode it clears the target whenever the
-- source text changes (the sync worker fills it later, src/workers/sync.rs); in 'sync' mode it
-- computes the vector there and then. An UPDATE that leaves the source as it was keeps the vector.

-- One row per sync. The extension's own: users read it through ettin_syncs.
CREATE TABLE ettin_sync_config (
  tbl regclass NOT NULL,
  source_column name NOT NULL,
  target_column name NOT NULL,
  model text,
  prompt_name text,
  embed_dim int NOT NULL,                     -- ettin.embed_dim when the sync started
  mode text NOT NULL CHECK (mode IN ('async', 'sync')),
  batch_size int NOT NULL DEFAULT 256,
  started timestamptz NOT NULL DEFAULT now(),
  caught_up timestamptz NOT NULL DEFAULT now(), -- when the worker last found nothing pending
  embedded bigint NOT NULL DEFAULT 0,          -- rows the worker wrote since the start
  last_error text,                            -- the last sync-wide failure (model, library)
  retry_at timestamptz,                       -- its backoff: no batch before then
  errors_in_a_row int NOT NULL DEFAULT 0,
  worker_pid int,
  PRIMARY KEY (tbl, target_column)
);

-- Rows set aside: each failed alone (a batch that fails is split until the failing rows are
-- found). Retried with growing backoff, and at once when their text changes (source_md5).
CREATE TABLE ettin_sync_failures (
  tbl regclass NOT NULL,
  target_column name NOT NULL,
  row_key jsonb NOT NULL,                     -- the row's primary key, {"column": value, ...}
  source_md5 text NOT NULL,
  error text NOT NULL,
  attempts int NOT NULL DEFAULT 1,
  failed_at timestamptz NOT NULL DEFAULT now(),
  next_retry timestamptz NOT NULL,
  PRIMARY KEY (tbl, target_column, row_key)
);
SELECT pg_catalog.pg_extension_config_dump('ettin_sync_config', '');
SELECT pg_catalog.pg_extension_config_dump('ettin_sync_failures', '');
GRANT SELECT ON ettin_sync_failures TO PUBLIC;

-- Rows of a table whose target is NULL and source is not: what the worker has left to do.
CREATE FUNCTION ettin_sync_pending(tbl regclass, source_column name, target_column name) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE n bigint;
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_class WHERE oid = tbl) THEN
    RETURN NULL;  -- dropped in this very transaction
  END IF;
  EXECUTE format('SELECT count(*) FROM %s WHERE %I IS NULL AND %I IS NOT NULL', tbl, target_column, source_column)
    INTO n;
  RETURN n;
EXCEPTION WHEN insufficient_privilege THEN
  RETURN NULL;  -- not this viewer's to count
END $$;

-- lag: an upper bound on the age of the oldest pending change (the worker last found nothing
-- pending at caught_up, so every pending change is younger than that).
CREATE VIEW ettin_syncs AS
SELECT c.tbl AS "table", c.source_column, c.target_column, c.model, c.prompt_name, c.mode,
       p.n AS pending,
       c.embedded,
       (SELECT count(*) FROM @extschema@.ettin_sync_failures f
        WHERE f.tbl = c.tbl AND f.target_column = c.target_column) AS failed,
       c.last_error,
       CASE WHEN p.n > 0 THEN now() - c.caught_up END AS lag,
       c.worker_pid AS pid
FROM @extschema@.ettin_sync_config c,
     LATERAL (SELECT @extschema@.ettin_sync_pending(c.tbl, c.source_column, c.target_column) AS n) p;
GRANT SELECT ON ettin_syncs TO PUBLIC;

-- Bookkeeping the worker does while acting as the table's owner, who has no rights on the
-- extension's tables: SECURITY DEFINER, and only for a table the caller owns.
CREATE FUNCTION ettin_sync_owned(tbl regclass) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF NOT pg_catalog.pg_has_role(current_user,
       (SELECT relowner FROM pg_catalog.pg_class WHERE oid = tbl), 'MEMBER') THEN
    RAISE EXCEPTION 'must be the owner of table %', tbl USING ERRCODE = '42501',
      HINT = 'syncs are started, stopped and run by the table''s owner';
  END IF;
END $$;

CREATE FUNCTION ettin_sync_settings(tbl regclass, target_column name) RETURNS ettin_sync_config
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE c @extschema@.ettin_sync_config;
BEGIN
  PERFORM @extschema@.ettin_sync_owned(tbl);
  SELECT * INTO c FROM @extschema@.ettin_sync_config s WHERE s.tbl = $1 AND s.target_column = $2;
  RETURN c;
END $$;

-- Rows in backoff (their key and the md5 of the text that failed).
CREATE FUNCTION ettin_sync_backoff(tbl regclass, target_column name, OUT keys jsonb[], OUT md5s text[])
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM @extschema@.ettin_sync_owned(tbl);
  SELECT coalesce(array_agg(f.row_key), '{}'), coalesce(array_agg(f.source_md5), '{}') INTO keys, md5s
  FROM @extschema@.ettin_sync_failures f
  WHERE f.tbl = $1 AND f.target_column = $2 AND f.next_retry > now();
END $$;

-- After a batch: rows written (their failures cleared), or, with written NULL, a sync-wide
-- failure (error) or success (error NULL) and whether anything was left pending.
CREATE FUNCTION ettin_sync_record(tbl regclass, target_column name, written jsonb[], error text, caught_up boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM @extschema@.ettin_sync_owned(tbl);
  IF error IS NOT NULL THEN
    UPDATE @extschema@.ettin_sync_config c SET last_error = error, errors_in_a_row = errors_in_a_row + 1,
      retry_at = now() + least(interval '1 second' * 2 ^ least(errors_in_a_row, 12), interval '10 minutes'),
      worker_pid = pg_backend_pid()
    WHERE c.tbl = $1 AND c.target_column = $2;
    RETURN;
  END IF;
  UPDATE @extschema@.ettin_sync_config c SET embedded = embedded + coalesce(cardinality(written), 0),
    errors_in_a_row = 0, retry_at = NULL, worker_pid = pg_backend_pid(),
    caught_up = CASE WHEN $5 THEN now() ELSE c.caught_up END
  WHERE c.tbl = $1 AND c.target_column = $2;
  IF written IS NOT NULL THEN
    DELETE FROM @extschema@.ettin_sync_failures f
    WHERE f.tbl = $1 AND f.target_column = $2 AND f.row_key = ANY (written);
  END IF;
END $$;

-- One row that failed alone: set aside, retried after 2^attempts seconds (at most an hour).
CREATE FUNCTION ettin_sync_fail_row(tbl regclass, target_column name, row_key jsonb, source_md5 text, error text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM @extschema@.ettin_sync_owned(tbl);
  INSERT INTO @extschema@.ettin_sync_failures AS f (tbl, target_column, row_key, source_md5, error, next_retry)
  VALUES ($1, $2, $3, $4, $5, now() + interval '2 seconds')
  ON CONFLICT ON CONSTRAINT ettin_sync_failures_pkey DO UPDATE SET
    source_md5 = excluded.source_md5, error = excluded.error, attempts = f.attempts + 1, failed_at = now(),
    next_retry = now() + least(interval '1 second' * 2 ^ least(f.attempts + 1, 12), interval '1 hour');
END $$;

-- Embed and write one set of rows (locked by the caller); a failure splits it until the rows
-- that fail alone are found and set aside. Returns the keys written. The write is a
-- compare-and-set: only where the source is still the text that was embedded.
CREATE FUNCTION ettin_sync_write(c ettin_sync_config, keys jsonb[], texts text[])
RETURNS jsonb[]
LANGUAGE plpgsql VOLATILE AS $$
DECLARE written jsonb[]; half int;
BEGIN
  -- Rows are found by their primary key columns, typed back from the key (the index is used).
  EXECUTE format($q$
    WITH e AS (SELECT idx, embedding FROM @extschema@.ettin_embed($1, $2, $3)),
    w AS (SELECT $4[e.idx] AS k, $1[e.idx] AS s, e.embedding FROM e),
    u AS (UPDATE %1$s AS t SET %2$I = w.embedding
          FROM w CROSS JOIN LATERAL jsonb_populate_record(NULL::%1$s, w.k) AS r
          WHERE %3$s AND t.%4$I::text = w.s AND t.%2$I IS NULL
          RETURNING w.k)
    SELECT coalesce(array_agg(k), '{}') FROM u$q$, c.tbl, c.target_column,
    (SELECT string_agg(format('t.%I = r.%I', a.attname, a.attname), ' AND ')
     FROM pg_catalog.pg_index i CROSS JOIN LATERAL unnest(i.indkey) AS k(attnum)
     JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
     WHERE i.indrelid = c.tbl AND i.indisprimary),
    c.source_column)
    INTO written USING texts, c.model, c.prompt_name, keys;
  RETURN written;
EXCEPTION WHEN OTHERS THEN
  IF cardinality(keys) = 1 THEN
    PERFORM @extschema@.ettin_sync_fail_row(c.tbl, c.target_column, keys[1], md5(texts[1]), SQLERRM);
    RETURN '{}';
  END IF;
  half := cardinality(keys) / 2;
  RETURN @extschema@.ettin_sync_write(c, keys[1:half], texts[1:half])
      || @extschema@.ettin_sync_write(c, keys[half + 1:], texts[half + 1:]);
END $$;

-- One batch of one sync, run by the worker as the table's owner: up to batch_size pending rows
-- (primary key order: the oldest rows of a backfill first), locked with SKIP LOCKED, embedded in
-- one call, written, counted. Returns how many were written; -1 after a sync-wide failure.
-- Batches go through the pending rows in primary-key order and each resumes after the last key
-- of the one before (kept in this session's setting ettin_sync.after_<table oid>_<column number>):
-- a batch that started from the first key again would walk the index entries of every row done
-- since the last VACUUM, and a backfill would slow down as it goes. A pass that finds nothing
-- after its key starts again from the first one, which picks up rows changed behind it.
CREATE FUNCTION ettin_sync_batch(tbl regclass, target_column name) RETURNS int
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  c @extschema@.ettin_sync_config;
  k record;
  b record;
  resume_setting text;
  after jsonb;
  planner_was text[];
  keys jsonb[];
  texts text[];
  written jsonb[];
BEGIN
  c := @extschema@.ettin_sync_settings(tbl, target_column);
  IF c.tbl IS NULL THEN
    RETURN 0;  -- stopped meanwhile
  END IF;
  PERFORM pg_catalog.set_config('ettin.embed_dim', c.embed_dim::text, true);
  BEGIN
    -- The model loads and the prompt exists: else the whole sync waits, no row is set aside.
    PERFORM @extschema@.ettin_embed('', c.model, c.prompt_name);
  EXCEPTION WHEN OTHERS THEN
    PERFORM @extschema@.ettin_sync_record(tbl, target_column, NULL, SQLERRM, false);
    RETURN -1;
  END;
  -- The primary key: as jsonb (k.json), its columns in order (k.cols) and the same columns read
  -- back from a jsonb key $3 (k.vals), for ORDER BY cols and ROW(cols) > ROW(vals).
  SELECT 'jsonb_build_object(' || string_agg(format('%L, t.%I', a.attname, a.attname), ', ' ORDER BY i.ord) || ')' AS json,
         string_agg(format('t.%I', a.attname), ', ' ORDER BY i.ord) AS cols,
         'ROW(' || string_agg(format('($3->>%L)::%s', a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY i.ord) || ')' AS vals
  INTO k
  FROM pg_catalog.pg_index x CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS i(attnum, ord)
  JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = i.attnum
  WHERE x.indrelid = tbl AND x.indisprimary;
  resume_setting := format('ettin_sync.after_%s_%s', tbl::oid,
    (SELECT a.attnum FROM pg_catalog.pg_attribute a WHERE a.attrelid = tbl AND a.attname = target_column));
  after := nullif(pg_catalog.current_setting(resume_setting, true), '')::jsonb;
  b := @extschema@.ettin_sync_backoff(tbl, target_column);
  -- The pending-rows index in key order, stopping at batch_size rows, is the plan: without
  -- statistics (a table filled just now) the planner guesses few rows after the key and reads
  -- them all through a bitmap and a sort instead (measured: 49 ms vs 2 ms a batch at 100,000 rows).
  planner_was := ARRAY[pg_catalog.current_setting('enable_sort'), pg_catalog.current_setting('enable_bitmapscan')];
  PERFORM pg_catalog.set_config('enable_sort', 'off', true), pg_catalog.set_config('enable_bitmapscan', 'off', true);
  LOOP
    EXECUTE format($q$
      SELECT array_agg(k), array_agg(s) FROM (
        SELECT %1$s AS k, t.%2$I::text AS s FROM %3$s AS t
        WHERE t.%4$I IS NULL AND t.%2$I IS NOT NULL %7$s
          AND NOT EXISTS (SELECT FROM unnest($1::jsonb[], $2::text[]) f(k, m)
                          WHERE f.k = %1$s AND f.m = md5(t.%2$I::text))
        ORDER BY %5$s
        LIMIT %6$s FOR UPDATE OF t SKIP LOCKED) p$q$,
      k.json, c.source_column, tbl, target_column, k.cols, c.batch_size,
      CASE WHEN after IS NOT NULL THEN format('AND ROW(%s) > %s', k.cols, k.vals) ELSE '' END)
      INTO keys, texts USING b.keys, b.md5s, after;
    EXIT WHEN keys IS NOT NULL OR after IS NULL;
    after := NULL;  -- nothing after the key: from the first one again
  END LOOP;
  PERFORM pg_catalog.set_config('enable_sort', planner_was[1], true),
          pg_catalog.set_config('enable_bitmapscan', planner_was[2], true);
  -- A full batch: the next resumes after its last key; a short one ended the pass.
  PERFORM pg_catalog.set_config(resume_setting,
    CASE WHEN cardinality(keys) = c.batch_size THEN keys[cardinality(keys)]::text ELSE '' END, false);
  IF keys IS NULL THEN
    PERFORM @extschema@.ettin_sync_record(tbl, target_column, '{}', NULL, true);
    RETURN 0;
  END IF;
  written := @extschema@.ettin_sync_write(c, keys, texts);
  PERFORM @extschema@.ettin_sync_record(tbl, target_column, written, NULL, false);
  RETURN cardinality(written);
EXCEPTION WHEN OTHERS THEN
  -- Anything else (the table's columns changed, a lock timeout): the sync waits, visibly.
  PERFORM @extschema@.ettin_sync_record(tbl, target_column, NULL, SQLERRM, false);
  RETURN -1;
END $$;

-- A dropped table takes its syncs and set-aside rows with it.
CREATE FUNCTION ettin_sync_dropped() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  DELETE FROM @extschema@.ettin_sync_failures f WHERE NOT EXISTS (SELECT FROM pg_class r WHERE r.oid = f.tbl);
  DELETE FROM @extschema@.ettin_sync_config s WHERE NOT EXISTS (SELECT FROM pg_class r WHERE r.oid = s.tbl);
END $$;
CREATE EVENT TRIGGER ettin_sync_dropped ON sql_drop
  WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA', 'DROP OWNED')
  EXECUTE FUNCTION ettin_sync_dropped();

-- The trigger of a synced table (fires last among BEFORE triggers, by its name, so that no other
-- trigger changes the text after it). Arguments: source, target, mode, model, prompt_name (''
-- for NULL), embed_dim.
CREATE FUNCTION ettin_sync_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  src text := to_jsonb(NEW) ->> TG_ARGV[0];
  v real[];
  dim text;
BEGIN
  IF TG_OP = 'UPDATE' AND src IS NOT DISTINCT FROM (to_jsonb(OLD) ->> TG_ARGV[0]) THEN
    RETURN NEW;  -- the text did not change: the vector stays, no model call
  END IF;
  IF src IS NOT NULL AND TG_ARGV[2] = 'sync' THEN
    PERFORM @extschema@.ettin_sync_worker_available();  -- loads the library: its settings exist
    dim := current_setting('ettin.embed_dim');
    PERFORM pg_catalog.set_config('ettin.embed_dim', TG_ARGV[5], true);
    v := @extschema@.ettin_embed(src, nullif(TG_ARGV[3], ''), nullif(TG_ARGV[4], ''));
    PERFORM pg_catalog.set_config('ettin.embed_dim', dim, true);
  ELSIF src IS NOT NULL THEN
    PERFORM @extschema@.ettin_sync_wake();  -- the worker fills it once this transaction commits
  END IF;
  RETURN jsonb_populate_record(NEW, jsonb_build_object(TG_ARGV[1], v));
END $$;

CREATE FUNCTION ettin_sync_trigger_name(target_column name) RETURNS name
LANGUAGE sql IMMUTABLE AS $$ SELECT left('zz_ettin_sync_' || target_column, 63)::name $$;

CREATE FUNCTION ettin_sync_index_name(tbl regclass, target_column name) RETURNS name
LANGUAGE sql STABLE AS $$
  SELECT left('ettin_pending_' || c.relname || '_' || target_column, 54) || '_' || substr(md5(tbl::oid::text || target_column), 1, 8)
  FROM pg_catalog.pg_class c WHERE c.oid = tbl
$$;

-- Writing the catalog row of a sync (the caller owns the table; ettin_sync_start checked it).
CREATE FUNCTION ettin_sync_register(c ettin_sync_config, drop_it boolean) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM @extschema@.ettin_sync_owned(c.tbl);
  DELETE FROM @extschema@.ettin_sync_failures f WHERE f.tbl = c.tbl AND f.target_column = c.target_column;
  DELETE FROM @extschema@.ettin_sync_config s WHERE s.tbl = c.tbl AND s.target_column = c.target_column;
  IF NOT drop_it THEN
    INSERT INTO @extschema@.ettin_sync_config SELECT c.*;
  END IF;
END $$;

CREATE FUNCTION ettin_sync_start(tbl regclass, source_column name, target_column name,
    model text DEFAULT NULL, prompt_name text DEFAULT NULL, mode text DEFAULT 'async')
RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  src_type regtype;
  dst_type regtype;
  dst_typmod int;
  dims int;
  embed_dim int;
  old @extschema@.ettin_sync_config;
  c @extschema@.ettin_sync_config;
  key_cols text;
  pending bigint;
BEGIN
  IF tbl IS NULL OR source_column IS NULL OR target_column IS NULL OR mode IS NULL THEN
    RAISE EXCEPTION 'ettin_sync_start: tbl, source_column, target_column and mode must not be NULL'
      USING ERRCODE = '22004', HINT = 'SELECT ettin_sync_start(''passages'', ''body'', ''embedding'')';
  END IF;
  IF mode NOT IN ('async', 'sync') THEN
    RAISE EXCEPTION 'ettin_sync_start: mode must be ''async'' or ''sync'', not %', quote_literal(mode)
      USING ERRCODE = '22023', HINT = 'async: a worker fills vectors after commit; sync: computed in the writing transaction';
  END IF;
  PERFORM @extschema@.ettin_sync_owned(tbl);
  PERFORM @extschema@.ettin_sync_worker_available();  -- loads the library: its settings exist
  embed_dim := current_setting('ettin.embed_dim')::int;
  IF (SELECT relkind FROM pg_catalog.pg_class WHERE oid = tbl) NOT IN ('r', 'p') THEN
    RAISE EXCEPTION 'ettin_sync_start: % is not a table', tbl USING ERRCODE = '42809',
      HINT = 'sync a table; a view''s or foreign table''s rows cannot carry the trigger';
  END IF;
  key_cols := (SELECT string_agg(format('%I', a.attname), ', ' ORDER BY k.ord)
               FROM pg_catalog.pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
               WHERE i.indrelid = tbl AND i.indisprimary);
  IF key_cols IS NULL THEN
    RAISE EXCEPTION 'ettin_sync_start: table % has no primary key', tbl USING ERRCODE = '55000',
      HINT = 'a sync names the rows it sets aside by their primary key: ALTER TABLE ... ADD PRIMARY KEY';
  END IF;
  SELECT a.atttypid::regtype INTO src_type FROM pg_catalog.pg_attribute a
  WHERE a.attrelid = tbl AND a.attname = source_column AND a.attnum > 0 AND NOT a.attisdropped;
  IF src_type IS NULL THEN
    RAISE EXCEPTION 'ettin_sync_start: table % has no column %', tbl, quote_ident(source_column)
      USING ERRCODE = '42703', HINT = 'source_column names the text column to embed';
  END IF;
  IF (SELECT typcategory FROM pg_catalog.pg_type WHERE oid = src_type) <> 'S' THEN  -- text, varchar, a domain over them
    RAISE EXCEPTION 'ettin_sync_start: source column % is %, not text', quote_ident(source_column), src_type
      USING ERRCODE = '42804', HINT = 'sync a text (or varchar) column';
  END IF;
  SELECT a.atttypid::regtype, a.atttypmod INTO dst_type, dst_typmod FROM pg_catalog.pg_attribute a
  WHERE a.attrelid = tbl AND a.attname = target_column AND a.attnum > 0 AND NOT a.attisdropped;
  IF dst_type IS NULL THEN
    RAISE EXCEPTION 'ettin_sync_start: table % has no column %', tbl, quote_ident(target_column)
      USING ERRCODE = '42703', HINT = 'add it first, e.g. ALTER TABLE ... ADD COLUMN embedding vector(384)';
  END IF;
  IF NOT (dst_type = 'real[]'::regtype OR (SELECT typname FROM pg_catalog.pg_type WHERE oid = dst_type) = 'vector') THEN
    RAISE EXCEPTION 'ettin_sync_start: target column % is %, not vector or real[]', quote_ident(target_column), dst_type
      USING ERRCODE = '42804', HINT = 'use pgvector''s vector(n), or real[]';
  END IF;
  IF mode = 'async' AND NOT @extschema@.ettin_sync_worker_available() THEN
    RAISE EXCEPTION 'ettin_sync_start: mode ''async'' needs the sync worker, which runs only when ettin is in shared_preload_libraries'
      USING ERRCODE = '55000',
      HINT = 'add ettin to shared_preload_libraries and restart the server, or start the sync with mode => ''sync''';
  END IF;
  -- The model loads, the prompt exists, and its vectors fit the column: checked once, here.
  dims := cardinality(@extschema@.ettin_embed('ettin_sync_start dimension check', model, prompt_name));
  IF dst_typmod > 0 AND dst_typmod <> dims THEN
    RAISE EXCEPTION 'ettin_sync_start: the model gives % dimensions, but column % is %', dims, quote_ident(target_column),
        format_type(dst_type, dst_typmod)
      USING ERRCODE = '42804',
      HINT = format('ALTER TABLE %s ALTER COLUMN %I TYPE vector(%s), or SET ettin.embed_dim for a Matryoshka model', tbl, target_column, dims);
  END IF;

  old := @extschema@.ettin_sync_settings(tbl, target_column);
  c := ROW(tbl, source_column, target_column, model, prompt_name, embed_dim, mode, 256, now(), now(), 0, NULL, NULL, 0, NULL);
  IF old.tbl IS NOT NULL AND (old.model, old.prompt_name, old.embed_dim, old.source_column)
                              IS DISTINCT FROM (model, prompt_name, embed_dim, source_column) THEN
    -- Another model, prompt, size or text: every vector is re-embedded.
    EXECUTE format('UPDATE %s SET %I = NULL WHERE %I IS NOT NULL', tbl, target_column, target_column);
    RAISE NOTICE 'ettin_sync_start: % now syncs with another model, prompt or source: its vectors are re-embedded', tbl;
  ELSIF old.tbl IS NOT NULL THEN
    c.started := old.started; c.caught_up := old.caught_up; c.embedded := old.embedded;
  END IF;
  PERFORM @extschema@.ettin_sync_register(c, false);
  EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', @extschema@.ettin_sync_trigger_name(target_column), tbl);
  EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE OF %I ON %s FOR EACH ROW EXECUTE FUNCTION @extschema@.ettin_sync_trigger(%L, %L, %L, %L, %L, %L)',
    @extschema@.ettin_sync_trigger_name(target_column), source_column, tbl,
    source_column, target_column, mode, coalesce(model, ''), coalesce(prompt_name, ''), embed_dim);
  -- The pending rows through an index of their own: a batch never reads embedded rows.
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s (%s) WHERE %I IS NULL AND %I IS NOT NULL',
    @extschema@.ettin_sync_index_name(tbl, target_column), tbl, key_cols, target_column, source_column);
  IF mode = 'sync' THEN
    -- Existing rows now, in this transaction: sync mode has no worker.
    PERFORM pg_catalog.set_config('ettin.embed_dim', embed_dim::text, true);
    EXECUTE format('UPDATE %s SET %I = @extschema@.ettin_embed(%I, $1, $2) WHERE %I IS NULL AND %I IS NOT NULL',
      tbl, target_column, source_column, target_column, source_column) USING model, prompt_name;
  ELSE
    PERFORM @extschema@.ettin_sync_poke();
  END IF;
  pending := @extschema@.ettin_sync_pending(tbl, source_column, target_column);
  RAISE NOTICE 'ettin_sync_start: % syncs %.% from %.% (%), % rows pending', tbl, tbl, quote_ident(target_column),
    tbl, quote_ident(source_column), mode, pending;
END $$;

CREATE FUNCTION ettin_sync_stop(tbl regclass, target_column name) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE c @extschema@.ettin_sync_config;
BEGIN
  PERFORM @extschema@.ettin_sync_owned(tbl);
  c := @extschema@.ettin_sync_settings(tbl, target_column);
  EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', @extschema@.ettin_sync_trigger_name(target_column), tbl);
  EXECUTE format('DROP INDEX IF EXISTS %s', (SELECT format('%I.%I', n.nspname, @extschema@.ettin_sync_index_name(tbl, target_column))
    FROM pg_catalog.pg_class r JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace WHERE r.oid = tbl));
  IF c.tbl IS NULL THEN
    RAISE NOTICE 'ettin_sync_stop: % had no sync of %', tbl, quote_ident(target_column);
    RETURN;
  END IF;
  PERFORM @extschema@.ettin_sync_register(c, true);
  RAISE NOTICE 'ettin_sync_stop: % no longer syncs %; its vectors stay as they are', tbl, quote_ident(target_column);
END $$;

COMMENT ON FUNCTION ettin_sync_start(regclass, name, name, text, text, text) IS
  'Keep target_column = ettin_embed(source_column) on every write: async (a worker fills it after commit) or sync (in the writing transaction).';
COMMENT ON FUNCTION ettin_sync_stop(regclass, name) IS 'Stop a sync: the trigger and the pending-rows index go; the vectors stay.';
