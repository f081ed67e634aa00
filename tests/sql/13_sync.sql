-- ettin_sync_start / ettin_sync_stop in 'sync' mode (the trigger embeds in the writing
-- transaction; the test cluster has no sync worker: 'async' is refused with a hint), the checks
-- a start makes up front, and what a sync leaves behind. The worker is tested by tests/sync.sh.
\ir _helpers.sql
CREATE EXTENSION IF NOT EXISTS vector;
SET ettin.embed_model = 'ettin-test/static';
CREATE FUNCTION pg_temp.static_calls() RETURNS bigint AS $$
  SELECT coalesce(sum(calls), 0) FROM ettin_models() WHERE name = 'ettin-test/static'
$$ LANGUAGE sql;

DROP TABLE IF EXISTS synced, nokey, wrongdim;
CREATE TABLE synced (id int PRIMARY KEY, body text, tag text, embedding vector(32));
INSERT INTO synced SELECT g, 'existing passage ' || g, 'a' FROM generate_series(1, 50) g;

-- Up-front checks: each a clear ERROR before anything changes.
CREATE TABLE nokey (body text, embedding vector(32));
SELECT pg_temp.expect_error($$SELECT ettin_sync_start('nokey', 'body', 'embedding', NULL, NULL, 'sync')$$, '55000');
SELECT pg_temp.expect_error($$SELECT ettin_sync_start('synced', 'tag2', 'embedding', NULL, NULL, 'sync')$$, '42703');
SELECT pg_temp.expect_error($$SELECT ettin_sync_start('synced', 'id', 'embedding', NULL, NULL, 'sync')$$, '42804');
SELECT pg_temp.expect_error($$SELECT ettin_sync_start('synced', 'body', 'tag', NULL, NULL, 'sync')$$, '42804');
SELECT pg_temp.expect_error($$SELECT ettin_sync_start('synced', 'body', 'embedding', NULL, NULL, 'sometimes')$$, '22023');
SELECT pg_temp.expect_error($$SELECT ettin_sync_start('synced', 'body', 'embedding', 'ettin-test/no-such-model', NULL, 'sync')$$, '58P01');
SELECT pg_temp.expect_error($$SELECT ettin_sync_start('synced', 'body', 'embedding', NULL, 'no-such-prompt', 'sync')$$, '22023');
CREATE TABLE wrongdim (id int PRIMARY KEY, body text, embedding vector(384));
SELECT pg_temp.assert(msg LIKE '%gives 32 dimensions%vector(384)%' AND hint LIKE '%vector(32)%', 'dimension mismatch: ' || msg)
FROM pg_temp.caught($$SELECT ettin_sync_start('wrongdim', 'body', 'embedding', NULL, NULL, 'sync')$$);
-- async needs the worker, which needs shared_preload_libraries (this cluster has none).
SELECT pg_temp.assert(state = '55000' AND hint LIKE '%shared_preload_libraries%' AND hint LIKE '%sync%', 'async without the worker: ' || msg)
FROM pg_temp.caught($$SELECT ettin_sync_start('synced', 'body', 'embedding')$$);
SELECT pg_temp.assert(NOT EXISTS (SELECT FROM ettin_syncs), 'failed starts leave no sync');
SELECT pg_temp.assert(NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = 'synced'::regclass), 'and no trigger');

-- Only the table's owner may start a sync (as for CREATE TRIGGER).
DROP ROLE IF EXISTS ettin_sync_other;
CREATE ROLE ettin_sync_other;
GRANT ALL ON synced TO ettin_sync_other;
SET ROLE ettin_sync_other;
SELECT pg_temp.expect_error($$SELECT ettin_sync_start('synced', 'body', 'embedding', NULL, NULL, 'sync')$$, '42501');
RESET ROLE;

-- sync mode: existing rows are embedded at start; every write that changes the text embeds it
-- in the writing transaction, and only then.
SELECT ettin_sync_start('synced', 'body', 'embedding', NULL, NULL, 'sync');
SELECT pg_temp.assert(count(*) = 50 AND bool_and(embedding = ettin_embed(body)::vector), 'existing rows embedded at start')
FROM synced;
SELECT pg_temp.assert("table" = 'synced'::regclass AND mode = 'sync' AND pending = 0 AND failed = 0 AND lag IS NULL,
  'ettin_syncs shows the sync') FROM ettin_syncs;
INSERT INTO synced VALUES (100, 'a new passage about free software', 'b');
SELECT pg_temp.assert(embedding = ettin_embed('a new passage about free software')::vector, 'INSERT embeds') FROM synced WHERE id = 100;
UPDATE synced SET body = 'the license, rewritten' WHERE id = 100;
SELECT pg_temp.assert(embedding = ettin_embed('the license, rewritten')::vector, 'UPDATE of the text re-embeds') FROM synced WHERE id = 100;
SELECT pg_temp.static_calls() AS c0 \gset
UPDATE synced SET tag = 'c' WHERE id <= 50;
UPDATE synced SET body = body WHERE id <= 50;
SELECT pg_temp.assert(pg_temp.static_calls() = :c0, 'updates that leave the text unchanged make no model call');
SELECT pg_temp.assert(bool_and(embedding = ettin_embed(body)::vector), 'and keep the vectors') FROM synced;
UPDATE synced SET body = NULL WHERE id = 1;
SELECT pg_temp.assert(embedding IS NULL, 'no text, no vector') FROM synced WHERE id = 1;
-- A vector written with a changed text is replaced by the text's own.
UPDATE synced SET body = 'fresh words', embedding = (SELECT embedding FROM synced WHERE id = 2) WHERE id = 3;
SELECT pg_temp.assert(embedding = ettin_embed('fresh words')::vector, 'a stale vector cannot be written with new text') FROM synced WHERE id = 3;
COPY synced (id, body, tag) FROM STDIN;
200	copied passage one	x
201	copied passage two	x
\.
SELECT pg_temp.assert(count(*) = 2 AND bool_and(embedding = ettin_embed(body)::vector), 'COPY embeds') FROM synced WHERE id >= 200;
-- The trigger fires after every other BEFORE trigger (by its name): a trigger that rewrites the
-- text still gets the vector of what is stored.
CREATE FUNCTION pg_temp.shout() RETURNS trigger AS $$ BEGIN NEW.body := upper(NEW.body); RETURN NEW; END $$ LANGUAGE plpgsql;
CREATE TRIGGER shout BEFORE INSERT ON synced FOR EACH ROW EXECUTE FUNCTION pg_temp.shout();
INSERT INTO synced VALUES (300, 'quiet words', 'y');
SELECT pg_temp.assert(body = 'QUIET WORDS' AND embedding = ettin_embed('QUIET WORDS')::vector, 'the vector of the stored text')
FROM synced WHERE id = 300;
DROP TRIGGER shout ON synced;

-- Starting again is idempotent; with another prompt every vector is re-embedded.
SELECT ettin_sync_start('synced', 'body', 'embedding', NULL, NULL, 'sync');
SELECT pg_temp.assert(count(*) = 1, 'one sync after two starts') FROM ettin_syncs;
SELECT ettin_sync_start('synced', 'body', 'embedding', NULL, 'query', 'sync');
SELECT pg_temp.assert(bool_and(embedding = ettin_embed(body, NULL, 'query')::vector), 're-embedded with the prompt')
FROM synced WHERE body IS NOT NULL;

-- real[] targets work too; a sync is per (table, target column).
ALTER TABLE synced ADD COLUMN v2 real[];
SET ettin.embed_dim = 8;
SELECT ettin_sync_start('synced', 'body', 'v2', NULL, NULL, 'sync');
RESET ettin.embed_dim;
SELECT pg_temp.assert(bool_and(v2 = (ettin_embed(body))[1:8]) AND bool_and(cardinality(v2) = 8),
  'a second sync, real[], with the embed_dim of its start') FROM synced WHERE body IS NOT NULL;
UPDATE synced SET body = 'both follow' WHERE id = 4;
SELECT pg_temp.assert(embedding = ettin_embed('both follow', NULL, 'query')::vector AND cardinality(v2) = 8,
  'both syncs follow one write, each with its own settings') FROM synced WHERE id = 4;

-- Stop: the trigger and the pending-rows index go, the vectors stay.
SELECT ettin_sync_stop('synced', 'v2');
SELECT ettin_sync_stop('synced', 'embedding');
SELECT pg_temp.assert(NOT EXISTS (SELECT FROM ettin_syncs), 'no syncs after stop');
SELECT pg_temp.assert(NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = 'synced'::regclass AND NOT tgisinternal), 'no trigger after stop');
SELECT pg_temp.assert(NOT EXISTS (SELECT FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  WHERE i.indrelid = 'synced'::regclass AND c.relname LIKE 'ettin_pending%'), 'no pending-rows index after stop');
UPDATE synced SET body = 'no longer followed' WHERE id = 5;
SELECT pg_temp.assert(embedding IS NOT NULL AND embedding <> ettin_embed('no longer followed')::vector, 'stopped: writes are not followed')
FROM synced WHERE id = 5;

DROP TABLE synced, nokey, wrongdim;
DROP OWNED BY ettin_sync_other;
DROP ROLE ettin_sync_other;
