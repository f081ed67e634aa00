-- Load the demo corpus (demo/passages.csv.gz) into `passages`, embed it in the database with the
-- embedding model (ettin.embed_model, ettin_embed_table: a NOTICE per batch), index it with HNSW,
-- and load the demo questions into `demo_queries`, embedded in the database too (for patterns
-- that take stored query vectors). Run from the repo root.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS ettin;
DROP TABLE IF EXISTS passages, demo_queries;
CREATE TABLE passages (
  id     int PRIMARY KEY,
  source text NOT NULL,
  body   text NOT NULL
);
\copy passages FROM PROGRAM 'gzip -dc demo/passages.csv.gz' WITH (FORMAT csv, HEADER true)
-- The vector column's width is the embedding model's (384 for all-MiniLM-L6-v2, 1024 for
-- static-retrieval-mrl-en-v1; ettin.embed_dim truncates).
SELECT format('ALTER TABLE passages ADD COLUMN embedding vector(%s)', cardinality(ettin_embed('dimension probe'))) \gexec
CALL ettin_embed_table('passages', 'body', 'embedding', batch_size => 500);
CREATE INDEX passages_embedding_idx ON passages USING hnsw (embedding vector_cosine_ops);
CREATE TABLE demo_queries (id serial PRIMARY KEY, query text NOT NULL);
\copy demo_queries (query) FROM 'demo/queries.csv' WITH (FORMAT csv, HEADER true)
ALTER TABLE demo_queries ADD COLUMN embedding vector;
UPDATE demo_queries SET embedding = ettin_embed(query, NULL, 'query')::vector;
ANALYZE passages, demo_queries;
