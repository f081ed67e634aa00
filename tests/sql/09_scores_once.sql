-- One execution of a documented pattern scores once. Postgres evaluates a STABLE call whose
-- arguments are constants at plan time too (the row estimate of unnest() does), then again in
-- the executor; ettin reuses the first call's scores within the transaction. Counted with
-- ettin_models().calls, for literals, prepared statements (custom and generic plans) and EXPLAIN.
\ir _helpers.sql
SET ettin.model = 'ettin-test/modular';
SELECT rerank_score('warm', 'up') IS NOT NULL AS loaded;
CREATE FUNCTION pg_temp.calls() RETURNS bigint AS $$
  SELECT calls FROM ettin_models() WHERE name = 'ettin-test/modular'
$$ LANGUAGE sql;

-- literals
SELECT pg_temp.calls() AS c0 \gset
SELECT count(*) FROM unnest(rerank_score('free software', ARRAY['the license', 'a module', NULL]));
SELECT pg_temp.assert(pg_temp.calls() - :c0 = 1, 'unnest(rerank_score(literals)) scores once');

SELECT pg_temp.calls() AS c0 \gset
WITH bundle AS (SELECT ARRAY[10, 20] AS ids, ARRAY['the license', 'a module'] AS bodies)
SELECT b.ids[s.ord], s.score FROM bundle b, unnest(rerank_score('free software', b.bodies)) WITH ORDINALITY AS s(score, ord);
SELECT pg_temp.assert(pg_temp.calls() - :c0 = 1, 'the zip pattern over a literal bundle scores once');

SELECT pg_temp.calls() AS c0 \gset
SELECT * FROM ettin_rerank('free software', ARRAY['the license', 'a module'], 1);
SELECT pg_temp.assert(pg_temp.calls() - :c0 = 1, 'ettin_rerank scores once');

-- prepared: 5 custom plans, then generic ones; each execution scores once (12 before the fix)
PREPARE unnest_scores(text, text[]) AS SELECT count(*) FROM unnest(rerank_score($1, $2));
SELECT pg_temp.calls() AS c0 \gset
EXECUTE unnest_scores('free software', ARRAY['the license', 'a module']);
EXECUTE unnest_scores('free software', ARRAY['the license', 'a module']);
EXECUTE unnest_scores('free software', ARRAY['the license', 'a module']);
EXECUTE unnest_scores('free software', ARRAY['the license', 'a module']);
EXECUTE unnest_scores('free software', ARRAY['the license', 'a module']);
EXECUTE unnest_scores('free software', ARRAY['the license', 'a module']);
EXECUTE unnest_scores('free software', ARRAY['the license', 'a module']);
SELECT pg_temp.assert(pg_temp.calls() - :c0 = 7, '7 executions of a prepared statement score 7 times');

-- a new transaction scores again (the reuse never crosses statements of different transactions)
SELECT pg_temp.calls() AS c0 \gset
SELECT rerank_score('free software', ARRAY['the license']);
SELECT rerank_score('free software', ARRAY['the license']);
SELECT pg_temp.assert(pg_temp.calls() - :c0 = 2, 'identical statements in two transactions score twice');

-- a different setting is a different call
BEGIN;
SELECT pg_temp.calls() AS c0 \gset
SELECT rerank_score('free software', ARRAY['the license']);
SET LOCAL ettin.max_length = 16;
SELECT rerank_score('free software', ARRAY['the license']);
SELECT pg_temp.assert(pg_temp.calls() - :c0 = 2, 'a changed max_length scores again');
COMMIT;

-- EXPLAIN: a bare EXPLAIN runs only Postgres' plan-time row estimate (at most one call);
-- EXPLAIN ANALYZE plans and executes: one call.
SELECT pg_temp.calls() AS c0 \gset
EXPLAIN SELECT count(*) FROM unnest(rerank_score('explain me', ARRAY['the license', 'a module']));
SELECT pg_temp.assert(pg_temp.calls() - :c0 <= 1, 'a bare EXPLAIN scores at most once');
SELECT pg_temp.calls() AS c0 \gset
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
  SELECT count(*) FROM unnest(rerank_score('explain analyze me', ARRAY['the license', 'a module']));
SELECT pg_temp.assert(pg_temp.calls() - :c0 = 1, 'EXPLAIN ANALYZE scores once');

-- and the reused scores are the scores
SELECT pg_temp.assert(
  (SELECT array_agg(s ORDER BY o) FROM unnest(rerank_score('free software', ARRAY['the license', 'a module'])) WITH ORDINALITY AS x(s, o))
  = (SELECT rerank_score('free software', ARRAY['the license', 'a module'])),
  'reused scores equal a fresh call');
