-- Big and odd inputs: each works (documented result) or fails cleanly; then parallel workers.
\ir _helpers.sql
SET ettin.model = 'ettin-test/modular';
-- 10 000 documents in one call
SELECT pg_temp.assert(cardinality(s) = 10000 AND array_position(s, NULL) IS NULL, '10 000 documents scored')
FROM rerank_score('free software', ARRAY(SELECT 'document number ' || g FROM generate_series(1, 10000) g)) AS s;
SELECT pg_temp.assert(count(*) = 5, '10 000 documents ranked, top 5')
FROM ettin_rerank('free software', ARRAY(SELECT 'document number ' || g FROM generate_series(1, 10000) g), 5);
-- A 1 MB document is truncated (longest side first) like any other: only its first tokens count.
SELECT pg_temp.assert(rerank_score('license', repeat('free software ', 75000)) = rerank_score('license', repeat('free software ', 1000)),
  '1 MB document scores as its truncated prefix');
-- A 100 000-character query is truncated too.
SELECT pg_temp.assert(rerank_score(repeat('warranty ', 11112), 'the program is provided without warranty') IS NOT NULL,
  '100 000-character query');
SELECT pg_temp.assert(rerank_score('', '') IS NOT NULL AND rerank_score('a', '') IS NOT NULL, 'empty strings are text, not NULL');
-- Control characters and invalid-looking Unicode are just text.
SELECT pg_temp.assert(rerank_score(E'tab\there', E'line\nbreak \u2028 \uFEFF zero\u200Bwidth') IS NOT NULL, 'odd Unicode');

-- Long inputs: by default a pair is cut at the model's own length (modular: 1024 tokens), and a
-- batch of long pairs gives its memory back: the backend's RSS returns within 100 MB of what it
-- was (ONNX Runtime's arena would otherwise keep its high-water mark for the connection's life).
CREATE FUNCTION pg_temp.backend_mb(key text) RETURNS int AS $$
  SELECT (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), key || ':\s+(\d+) kB'))[1]::int / 1024
$$ LANGUAGE sql;
SELECT rerank_score('free software', 'a short document');
SELECT pg_temp.backend_mb('VmRSS') AS rss_before \gset
SET ettin.batch_tokens = 8192;
SELECT pg_temp.assert(cardinality(rerank_score('free software', array_fill(repeat('the license and its warranty ', 500), ARRAY[8]))) = 8,
  'eight 1024-token pairs in one batch');
RESET ettin.batch_tokens;
SELECT pg_temp.assert(pg_temp.backend_mb('VmHWM') > :rss_before + 150,
  format('the batch was big: peak %s MB, %s MB before', pg_temp.backend_mb('VmHWM'), :rss_before));
SELECT pg_temp.assert(pg_temp.backend_mb('VmRSS') < :rss_before + 100,
  format('memory given back: %s MB after, %s MB before', pg_temp.backend_mb('VmRSS'), :rss_before));
-- ettin.max_batch_memory: batches are planned under it; one pair that alone needs more (a
-- 1024-token pair of this model: ~71 MB) is 54000 naming the setting, before any work.
SET ettin.max_batch_memory = '64MB';
SELECT pg_temp.expect_error($$SELECT rerank_score('free software', repeat('the license and its warranty ', 500))$$, '54000');
SELECT pg_temp.assert(msg LIKE '%ettin.max_batch_memory (64 MB)%' AND hint LIKE '%ettin_chunk%', 'the error names the setting: ' || msg)
FROM pg_temp.caught($$SELECT rerank_score('free software', repeat('the license and its warranty ', 500))$$);
SET ettin.max_length = 512;
SELECT pg_temp.assert(rerank_score('free software', repeat('the license and its warranty ', 500)) IS NOT NULL,
  'the same pair cut at 512 tokens fits 64 MB');
RESET ettin.max_length;
RESET ettin.max_batch_memory;

-- PARALLEL SAFE: a query Postgres runs with parallel workers gives the serial answer.
CREATE TEMP TABLE docs AS SELECT g AS id, 'passage ' || g || ' about free software and warranties' AS body
FROM generate_series(1, 2000) g;
CREATE TABLE parallel_docs AS SELECT * FROM docs;
ANALYZE parallel_docs;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
ALTER TABLE parallel_docs SET (parallel_workers = 2);
SELECT pg_temp.assert(pg_temp.plan($$SELECT sum(rerank_score('warranty', body)) FROM parallel_docs$$) LIKE '%Workers Planned: 2%',
  'the planner runs rerank_score in parallel workers');
CREATE TEMP TABLE parallel_result AS SELECT sum(rerank_score('warranty', body)::float8) AS s FROM parallel_docs;
SET max_parallel_workers_per_gather = 0;
SELECT pg_temp.assert(abs(s - (SELECT sum(rerank_score('warranty', body)::float8) FROM parallel_docs)) < 1e-3,
  'parallel and serial sums agree') FROM parallel_result;
DROP TABLE parallel_docs;
