-- make demo: for each demo question (or the one given with make demo Q="..."), embedded in the
-- database: pgvector-only top 5 vs the top 50 candidates reranked by ettin.
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = notice;
\echo '== loading 3000 passages, embedding them in the database (ettin_embed_table) and building the HNSW index'
\timing on
\i sql/load_demo_corpus.sql
\timing off
SELECT jsonb_pretty(ettin_info() - 'models_loaded') AS ettin_info;

-- One demo query: both rankings side by side, with the time each step took.
CREATE FUNCTION pg_temp.compare(qid int, candidates int DEFAULT 50)
RETURNS TABLE (rank bigint, "pgvector top 5 (cosine)" text, "reranked by ettin (score)" text) AS $$
DECLARE
  q demo_queries;
  t0 timestamptz; t1 timestamptz; t2 timestamptz;
  vector_top int[]; ids int[]; bodies text[]; reranked int[]; scores real[];
BEGIN
  SELECT * INTO q FROM demo_queries WHERE id = qid;
  t0 := clock_timestamp();
  -- The question is embedded in the database, once per statement.
  SELECT array_agg(id ORDER BY d), array_agg(body ORDER BY d) INTO ids, bodies
  FROM (SELECT id, body, embedding <=> ettin_embed(q.query, NULL, 'query')::vector AS d
        FROM passages ORDER BY d LIMIT candidates) c;
  t1 := clock_timestamp();
  SELECT array_agg(ids[r.idx] ORDER BY r.score DESC), array_agg(r.score ORDER BY r.score DESC)
    INTO reranked, scores
  FROM ettin_rerank(q.query, bodies, 5) AS r;
  t2 := clock_timestamp();
  RAISE NOTICE E'\n== "%"\n   ettin_embed + pgvector HNSW top %: % ms; ettin rerank of % candidates: % ms',
    q.query, candidates, round(extract(epoch FROM t1 - t0) * 1000, 1), candidates,
    round(extract(epoch FROM t2 - t1) * 1000, 1);
  RETURN QUERY
  SELECT k, format('%s  %s', (SELECT source FROM passages WHERE id = ids[k]), left((SELECT body FROM passages WHERE id = ids[k]), 60)),
            format('%s  %s  %s', to_char(scores[k], 'S00.00'), (SELECT source FROM passages WHERE id = reranked[k]),
                   left((SELECT body FROM passages WHERE id = reranked[k]), 50))
  FROM generate_series(1::bigint, 5) AS k;
END $$ LANGUAGE plpgsql;

-- make demo Q="your question": that question only.
SELECT coalesce(nullif(:'q', ''), '') AS q \gset
SELECT :'q' <> '' AS one_question \gset
\if :one_question
  DELETE FROM demo_queries;
  INSERT INTO demo_queries (query) VALUES (:'q');
\endif
SELECT format('SELECT * FROM pg_temp.compare(%s)', id) FROM demo_queries ORDER BY id \gexec

\echo '== what this backend loaded'
SELECT name, layout, device, max_length, round(load_ms) AS load_ms FROM ettin_models();
