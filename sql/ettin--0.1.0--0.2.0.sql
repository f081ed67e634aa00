-- ettin 0.1.0 → 0.2.0: embeddings (ettin_embed, ettin_embed_table). Nothing of 0.1.0 changes.
-- Applied by ALTER EXTENSION ettin UPDATE; tests/sql/11_upgrade.sql checks that the result equals a fresh 0.2.0.
\echo Use "ALTER EXTENSION ettin UPDATE TO '0.2.0'" to load this file. \quit
/* <begin connected objects> */
-- ettin::embed::ettin_embed
CREATE  FUNCTION "ettin_embed"(
	"inputs" TEXT[], /* :: std :: option :: Option < Array < & str > > */
	"model" TEXT DEFAULT NULL, /* Option < & str > */
	"prompt_name" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS TABLE (
	"idx" INT,  /* i32 */
	"embedding" real[]  /* Embedding */
)
STABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'ettin_embed_many_wrapper';
/* </end connected objects> */

/* <begin connected objects> */
-- requires:
--   ettin_embed_many


CREATE PROCEDURE ettin_embed_table(
    tbl regclass, source_column name, target_column name,
    model text DEFAULT NULL, prompt_name text DEFAULT NULL, batch_size int DEFAULT 256)
LANGUAGE plpgsql AS $proc$
DECLARE
  total bigint;
  done bigint := 0;
  n bigint;
  started timestamptz := clock_timestamp();
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
    EXECUTE format($q$
      WITH batch AS (
        SELECT ctid AS tid, %1$I::text AS src FROM %2$s
        WHERE %3$I IS NULL AND %1$I IS NOT NULL LIMIT %4$s FOR UPDATE SKIP LOCKED),
      bundle AS (SELECT array_agg(tid) AS tids, array_agg(src) AS srcs FROM batch),
      embedded AS (
        SELECT bundle.tids[e.idx] AS tid, e.embedding
        FROM bundle, @extschema@.ettin_embed(bundle.srcs, $1, $2) AS e)
      UPDATE %2$s AS t SET %3$I = embedded.embedding FROM embedded WHERE t.ctid = embedded.tid
      $q$, source_column, tbl, target_column, batch_size)
      USING model, prompt_name;
    GET DIAGNOSTICS n = ROW_COUNT;
    EXIT WHEN n = 0;
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
/* </end connected objects> */

/* <begin connected objects> */
-- ettin::embed::ettin_embed
CREATE  FUNCTION "ettin_embed"(
	"input" TEXT, /* Option < & str > */
	"model" TEXT DEFAULT NULL, /* Option < & str > */
	"prompt_name" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS real[] /* Option < Embedding > */
STABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'ettin_embed_one_wrapper';
/* </end connected objects> */
