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
