-- make demo: pgvector-only top 5 vs the top 50 candidates reranked by ettin, for each demo query.
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = notice;
\echo '== loading 3000 passages with all-MiniLM-L6-v2 embeddings and building the HNSW index'
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
  SELECT array_agg(id ORDER BY d), array_agg(body ORDER BY d) INTO ids, bodies
  FROM (SELECT id, body, embedding <=> q.embedding AS d FROM passages ORDER BY d LIMIT candidates) c;
  t1 := clock_timestamp();
  SELECT array_agg(ids[r.idx] ORDER BY r.score DESC), array_agg(r.score ORDER BY r.score DESC)
    INTO reranked, scores
  FROM ettin_rerank(q.query, bodies, 5) AS r;
  t2 := clock_timestamp();
  RAISE NOTICE E'\n== "%"\n   pgvector HNSW top %: % ms; ettin rerank of % candidates: % ms',
    q.query, candidates, round(extract(epoch FROM t1 - t0) * 1000, 1), candidates,
    round(extract(epoch FROM t2 - t1) * 1000, 1);
  RETURN QUERY
  SELECT k, format('%s  %s', (SELECT source FROM passages WHERE id = ids[k]), left((SELECT body FROM passages WHERE id = ids[k]), 60)),
            format('%s  %s  %s', to_char(scores[k], 'S00.00'), (SELECT source FROM passages WHERE id = reranked[k]),
                   left((SELECT body FROM passages WHERE id = reranked[k]), 50))
  FROM generate_series(1::bigint, 5) AS k;
END $$ LANGUAGE plpgsql;

SELECT format('SELECT * FROM pg_temp.compare(%s)', id) FROM demo_queries ORDER BY id \gexec

\echo '== what this backend loaded'
SELECT name, layout, device, max_length, round(load_ms) AS load_ms FROM ettin_models();
