-- Load the demo corpus (demo/passages.csv.gz: passages with all-MiniLM-L6-v2 embeddings) into
-- `passages` with an HNSW index, and the demo queries into `demo_queries`. Run from the repo root.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS ettin;
DROP TABLE IF EXISTS passages, demo_queries;
CREATE TABLE passages (
  id        int PRIMARY KEY,
  source    text NOT NULL,
  body      text NOT NULL,
  embedding vector(384) NOT NULL
);
\copy passages FROM PROGRAM 'gzip -dc demo/passages.csv.gz' WITH (FORMAT csv, HEADER true)
CREATE INDEX passages_embedding_idx ON passages USING hnsw (embedding vector_cosine_ops);
CREATE INDEX passages_fts_idx ON passages USING gin (to_tsvector('english', body));
CREATE TABLE demo_queries (id serial PRIMARY KEY, query text NOT NULL, embedding vector(384) NOT NULL);
\copy demo_queries (query, embedding) FROM 'demo/queries.csv' WITH (FORMAT csv, HEADER true)
ANALYZE passages, demo_queries;
