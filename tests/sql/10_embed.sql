-- ettin_embed reproduces SentenceTransformer.encode() for the three embedder layouts (StaticEmbedding,
-- all-MiniLM-style BERT, a ModernBERT saved by sentence-transformers 6), per prompt name and
-- ettin.embed_dim, within 1e-5 per component; casts to pgvector; the KNN pattern embeds once and
-- uses the HNSW index; the backfill commits per batch, resumes, and runs with the caller's rights.
\ir _helpers.sql
CREATE EXTENSION IF NOT EXISTS vector;
SET client_min_messages = notice;

-- Largest |difference| per component between two vectors.
CREATE FUNCTION pg_temp.max_diff(got real[], expected jsonb) RETURNS float8 AS $$
  SELECT CASE WHEN cardinality(got) IS DISTINCT FROM jsonb_array_length(expected) THEN 'infinity'::float8
         ELSE (SELECT max(abs(g - (expected->>(i::int - 1))::float8)) FROM unnest(got) WITH ORDINALITY AS u(g, i)) END
$$ LANGUAGE sql;

CREATE TEMP TABLE cases AS
SELECT model, k AS key, i, t AS text, ref->'vectors'->k->(i::int - 1) AS expected,
       CASE k WHEN 'query' THEN 'query' WHEN 'document' THEN 'document' END AS prompt_name,
       CASE k WHEN 'truncate_dim_8' THEN 8 ELSE 0 END AS dim
FROM (VALUES ('static'), ('embed-bert'), ('embed-modernbert')) AS m(model),
     LATERAL pg_temp.reference(model) AS ref,
     LATERAL jsonb_array_elements_text(ref->'texts') WITH ORDINALITY AS x(t, i),
     unnest(ARRAY['plain', 'query', 'document', 'truncate_dim_8']) AS k;
SELECT pg_temp.assert(count(*) = 3 * 4 * 47, 'reference vectors loaded') FROM cases;

-- One text per call.
DO $$
DECLARE r record; worst float8;
BEGIN
  FOR r IN SELECT DISTINCT model, key, dim FROM cases ORDER BY 1, 2 LOOP
    PERFORM set_config('ettin.embed_dim', r.dim::text, true);
    SELECT max(pg_temp.max_diff(ettin_embed(text, 'ettin-test/' || model, prompt_name), expected)) INTO worst
    FROM cases WHERE model = r.model AND key = r.key;
    RAISE NOTICE 'ettin_embed(text) % %: max |diff| %', r.model, r.key, worst;
    IF worst > 1e-5 THEN RAISE EXCEPTION 'ettin_embed(text) % %: max |diff| %', r.model, r.key, worst; END IF;
  END LOOP;
END $$;

-- Arrays: a row per input with its position, batched (length-sorted) like reranking.
SET ettin.batch_size = 8;
DO $$
DECLARE r record; worst float8; rows int;
BEGIN
  FOR r IN SELECT DISTINCT model, key, dim, prompt_name FROM cases ORDER BY 1, 2 LOOP
    PERFORM set_config('ettin.embed_dim', r.dim::text, true);
    WITH c AS (SELECT array_agg(text ORDER BY i) AS texts, array_agg(expected ORDER BY i) AS ex
               FROM cases WHERE model = r.model AND key = r.key)
    SELECT max(pg_temp.max_diff(e.embedding, c.ex[e.idx])), count(*) INTO worst, rows
    FROM c, ettin_embed(c.texts, 'ettin-test/' || r.model, r.prompt_name) AS e;
    RAISE NOTICE 'ettin_embed(text[]) % %: max |diff| % over % rows', r.model, r.key, worst, rows;
    IF worst > 1e-5 OR rows <> 47 THEN RAISE EXCEPTION 'ettin_embed(text[]) % %: max |diff| %, % rows', r.model, r.key, worst, rows; END IF;
  END LOOP;
END $$;
RESET ettin.batch_size;
RESET ettin.embed_dim;

-- NULLs: NULL text → NULL; NULL array elements get no row, positions stay 1-based in the input.
SELECT pg_temp.assert(ettin_embed(NULL::text, 'ettin-test/embed-bert') IS NULL, 'NULL text gives NULL');
SELECT pg_temp.assert(array_agg(idx ORDER BY idx) = ARRAY[1, 3],
  'NULL elements are skipped, idx is the input position')
FROM ettin_embed(ARRAY['a', NULL, 'c'], 'ettin-test/embed-bert');
SELECT pg_temp.assert(count(*) = 0, 'NULL array gives no rows') FROM ettin_embed(NULL::text[], 'ettin-test/embed-bert');
SELECT pg_temp.assert(count(*) = 0, 'empty array gives no rows') FROM ettin_embed('{}'::text[], 'ettin-test/embed-bert');

-- Defaults: ettin.embed_model, and the model's default_prompt_name when prompt_name is NULL.
SET ettin.embed_model = 'ettin-test/embed-modernbert';
SELECT pg_temp.assert(ettin_embed('free software') = ettin_embed('free software', NULL, 'document')
  AND ettin_embed('free software') <> ettin_embed('free software', NULL, 'query'),
  'NULL prompt_name uses the model''s default_prompt_name');
SET ettin.embed_dim = 4;
SELECT pg_temp.assert(cardinality(ettin_embed('x')) = 4, 'ettin.embed_dim truncates');
RESET ettin.embed_dim;
SELECT pg_temp.assert(vector_dims(ettin_embed('x')::vector) = 16, 'casts to vector');

-- Errors: unknown prompt names list the model's; cross-encoders and embedders name the function that fits.
SELECT pg_temp.assert(pg_temp.expect_error($$SELECT ettin_embed('x', 'ettin-test/embed-bert', 'passage')$$, '22023') LIKE '%no prompt named%',
  'unknown prompt name');
SELECT pg_temp.assert(hint LIKE '%document, query%', 'the hint lists the prompt names: ' || hint)
FROM pg_temp.caught($$SELECT ettin_embed('x', 'ettin-test/embed-bert', 'passage')$$);
SELECT pg_temp.assert(pg_temp.expect_error($$SELECT ettin_embed('x', 'ettin-test/modular')$$, '0A000') LIKE '%is a cross-encoder%', 'reranker in ettin_embed');
SELECT pg_temp.assert(pg_temp.expect_error($$SELECT ettin_embed('x', 'ettin-test/classic')$$, '0A000') LIKE '%is a cross-encoder%', 'classic reranker in ettin_embed');
SELECT pg_temp.assert(pg_temp.expect_error($$SELECT rerank_score('q', 'd', 'ettin-test/embed-bert')$$, '0A000') LIKE '%embedding model%', 'embedder in rerank_score');
SELECT pg_temp.assert(pg_temp.expect_error($$SELECT * FROM ettin_rerank('q', ARRAY['d'], 1, 'ettin-test/static')$$, '0A000') LIKE '%StaticEmbedding%', 'static model in ettin_rerank');
SELECT pg_temp.assert(state = '0A000' AND hint LIKE '%ettin_embed%', 'the hint names ettin_embed: ' || coalesce(hint, '(none)'))
FROM pg_temp.caught($$SELECT rerank_score('q', 'd', 'ettin-test/static')$$);

-- Cancel between batches (transformer) and between chunks of texts (StaticEmbedding): a long call
-- stops at statement_timeout with 57014, well before it would finish.
CREATE TEMP TABLE big AS
  SELECT (SELECT array_agg('passage number ' || i) FROM generate_series(1, 200000) i) AS transformer_texts,
         (SELECT array_agg('passage number ' || i) FROM generate_series(1, 500000) i) AS static_texts;
SET ettin.batch_size = 4;
SET statement_timeout = '300ms';
SELECT clock_timestamp() AS t0 \gset
DO $$ BEGIN
  PERFORM count(*) FROM ettin_embed((SELECT transformer_texts FROM big), 'ettin-test/embed-bert');
  RAISE EXCEPTION 'ettin_embed (transformer) was not cancelled';
EXCEPTION WHEN query_canceled THEN NULL;
END $$;
DO $$ BEGIN
  PERFORM count(*) FROM ettin_embed((SELECT static_texts FROM big), 'ettin-test/static');
  RAISE EXCEPTION 'ettin_embed (static) was not cancelled';
EXCEPTION WHEN query_canceled THEN NULL;
END $$;
RESET statement_timeout;
RESET ettin.batch_size;
SELECT pg_temp.assert(clock_timestamp() - :'t0'::timestamptz < interval '3 s', 'both cancelled within a batch of the timeout');
DROP TABLE big;

-- ettin_models() lists embedders with their own max length (0: a StaticEmbedding model has none).
SELECT pg_temp.assert(layout = 'embedding' AND max_length = 128 AND calls > 0, 'embed-bert in ettin_models()')
FROM ettin_models() WHERE name = 'ettin-test/embed-bert';
SELECT pg_temp.assert(layout = 'static' AND max_length = 0 AND onnx_file = '' AND pairs > 0, 'static in ettin_models()')
FROM ettin_models() WHERE name = 'ettin-test/static';

-- The one-statement pipeline: KNN with an HNSW index on ettin_embed($1), then ettin_rerank.
CREATE TABLE docs (id int PRIMARY KEY, body text NOT NULL, embedding vector(16));
INSERT INTO docs (id, body) SELECT i, text FROM cases WHERE model = 'static' AND key = 'plain' AND trim(text) <> '';
SET ettin.embed_model = 'ettin-test/embed-modernbert';
CALL ettin_embed_table('docs', 'body', 'embedding', batch_size => 10);
SET client_min_messages = warning;
SELECT pg_temp.assert(count(*) = 0, 'backfill filled every row') FROM docs WHERE embedding IS NULL;
SELECT pg_temp.assert(bool_and(pg_temp.max_diff(embedding::real[], c.expected) <= 1e-5), 'backfilled vectors equal encode()')
FROM docs JOIN cases c ON c.i = docs.id AND c.model = 'embed-modernbert' AND c.key = 'plain';
CREATE INDEX ON docs USING hnsw (embedding vector_cosine_ops);
ANALYZE docs;
SET enable_seqscan = off;
SELECT pg_temp.assert(pg_temp.plan($$SELECT id FROM docs ORDER BY embedding <=> ettin_embed('free software', NULL, 'query')::vector LIMIT 5$$)
  LIKE '%Index Scan using docs_embedding_idx%', 'KNN on ettin_embed uses the HNSW index');
CREATE FUNCTION pg_temp.embed_calls() RETURNS bigint AS $$
  SELECT calls FROM ettin_models() WHERE name = 'ettin-test/embed-modernbert'
$$ LANGUAGE sql;
SELECT pg_temp.embed_calls() AS c0 \gset
SELECT id FROM docs ORDER BY embedding <=> ettin_embed('free software', NULL, 'query')::vector LIMIT 5;
SELECT pg_temp.assert(pg_temp.embed_calls() - :c0 = 1, 'the KNN statement embeds once (literal)');
PREPARE knn(text) AS SELECT id FROM docs ORDER BY embedding <=> ettin_embed($1, NULL, 'query')::vector LIMIT 5;
SELECT pg_temp.embed_calls() AS c0 \gset
EXECUTE knn('free software'); EXECUTE knn('free software'); EXECUTE knn('free software');
EXECUTE knn('free software'); EXECUTE knn('free software'); EXECUTE knn('free software'); EXECUTE knn('warranty');
SELECT pg_temp.assert(pg_temp.embed_calls() - :c0 = 7, 'each prepared KNN execution embeds once (custom and generic plans)');
RESET enable_seqscan;
-- Without the index (a sequential scan and a sort), the embedding is still computed once.
SET enable_indexscan = off;
SELECT pg_temp.assert(pg_temp.plan($$SELECT id FROM docs ORDER BY embedding <=> ettin_embed('free software', NULL, 'query')::vector LIMIT 5$$)
  LIKE '%Seq Scan on docs%', 'plan without the index');
SELECT pg_temp.embed_calls() AS c0 \gset
EXECUTE knn('license');
SELECT pg_temp.assert(pg_temp.embed_calls() - :c0 = 1, 'a sequential-scan KNN embeds once per statement, not per row (memo within a transaction)');
RESET enable_indexscan;
-- The issue's statement: retrieve with pgvector, rerank with ettin, in one SQL statement.
SELECT pg_temp.assert(count(*) = 3 AND count(DISTINCT id) = 3, 'embed + KNN + rerank in one statement')
FROM (
  WITH c AS (SELECT id, body FROM docs ORDER BY embedding <=> ettin_embed('free software', NULL, 'query')::vector LIMIT 10),
       b AS (SELECT array_agg(id) AS ids, array_agg(body) AS bodies FROM c)
  SELECT b.ids[r.idx] AS id, r.score FROM b, ettin_rerank('free software', b.bodies, 3, 'ettin-test/modular') r
) AS pipeline;

-- Backfill: resumes (only NULL targets are filled), checks its arguments and the caller's rights.
UPDATE docs SET embedding = NULL WHERE id % 3 = 0;
SELECT count(*) AS nulls FROM docs WHERE embedding IS NULL \gset
SELECT pairs AS p0 FROM ettin_models() WHERE name = 'ettin-test/embed-modernbert' \gset
CALL ettin_embed_table('docs', 'body', 'embedding');
SELECT pg_temp.assert(pairs - :p0 = :nulls, 'a re-run embeds only the rows still NULL')
FROM ettin_models() WHERE name = 'ettin-test/embed-modernbert';
SELECT pg_temp.expect_error($$CALL ettin_embed_table('docs', 'nope', 'embedding')$$, '42703');
SELECT pg_temp.expect_error($$CALL ettin_embed_table('docs', 'body', 'embedding', batch_size => 0)$$, '22023');
UPDATE docs SET embedding = NULL WHERE id = 2;
SELECT pg_temp.expect_error($$CALL ettin_embed_table('docs', 'body', 'embedding', 'ettin-test/modular')$$, '0A000');
SELECT pg_temp.assert(embedding IS NULL, 'a failed batch leaves its rows NULL') FROM docs WHERE id = 2;
CREATE ROLE ettin_reader;
GRANT SELECT ON docs TO ettin_reader;
UPDATE docs SET embedding = NULL WHERE id = 1;
SET ROLE ettin_reader;
SELECT pg_temp.expect_error($$CALL ettin_embed_table('docs', 'body', 'embedding')$$, '42501');
RESET ROLE;
SELECT pg_temp.assert(embedding IS NULL, 'no UPDATE privilege, no backfill') FROM docs WHERE id = 1;
DROP TABLE docs;
DROP ROLE ettin_reader;
