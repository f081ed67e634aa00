-- Retrieve with pgvector, rerank with ettin, in one statement.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS ettin;
\echo '== ettin_info()'
SELECT jsonb_pretty(ettin_info());

\echo '== a small corpus with an HNSW index (toy 3-d embeddings; a later demo uses real ones)'
CREATE TABLE passages (id bigserial PRIMARY KEY, body text NOT NULL, embedding vector(3) NOT NULL);
INSERT INTO passages (body, embedding) VALUES
  ('PostgreSQL is an open source relational database.', '[0.9,0.1,0.0]'),
  ('pgvector adds vector similarity search to Postgres.', '[0.8,0.3,0.1]'),
  ('Cross-encoders score a query and a document together.', '[0.2,0.9,0.1]'),
  ('The GNU General Public License is a free software license.', '[0.1,0.1,0.9]'),
  ('Rerankers reorder the candidates a vector search returns.', '[0.5,0.7,0.2]');
CREATE INDEX ON passages USING hnsw (embedding vector_cosine_ops);

\echo '== top 3 by vector distance, reranked by the cross-encoder'
\timing on
WITH candidates AS (
  SELECT id, body FROM passages ORDER BY embedding <=> '[0.7,0.5,0.1]' LIMIT 3
), ranked AS (
  SELECT array_agg(id ORDER BY id) AS ids, array_agg(body ORDER BY id) AS bodies FROM candidates
)
SELECT r.score, ranked.bodies[r.idx] AS passage
FROM ranked, ettin_rerank('how do I rerank vector search results?', ranked.bodies) AS r
ORDER BY r.score DESC;
\timing off
\echo '== models loaded by this backend'
SELECT * FROM ettin_models();
