-- Retrieve-then-rerank patterns from the README, on the demo corpus (embedded in the database by
-- the random-weight embed-bert fixture, HNSW). Each checks the final order against the model's
-- own scores for the same candidates.
\ir _helpers.sql
SET ettin.embed_model = 'ettin-test/embed-bert';
\ir ../../sql/load_demo_corpus.sql
SET ettin.model = 'ettin-test/modular';

-- The candidates' ids ordered by a separately computed rerank_score must equal the pattern's output.
CREATE FUNCTION pg_temp.expected_order(query text, ids int[]) RETURNS int[] AS $$
  SELECT array_agg(id ORDER BY s DESC, ord)
  FROM (SELECT id, ord, rerank_score(query, (SELECT body FROM passages p WHERE p.id = c.id)) AS s
        FROM unnest(ids) WITH ORDINALITY AS c(id, ord)) x
$$ LANGUAGE sql;

-- 1. KNN candidates from the HNSW index in a CTE, reranked, joined back by array position.
CREATE TEMP TABLE p1 AS
WITH q AS (SELECT query, embedding FROM demo_queries WHERE id = 1),
candidates AS (
  SELECT p.id, p.body FROM passages p ORDER BY p.embedding <=> (SELECT embedding FROM q) LIMIT 30
),
bundle AS (SELECT array_agg(id) AS ids, array_agg(body) AS bodies FROM candidates)
SELECT b.ids[r.idx] AS id, r.score, row_number() OVER () AS rank, b.ids AS candidate_ids
FROM bundle b, q, ettin_rerank(q.query, b.bodies, 10) AS r;
SELECT pg_temp.assert(count(*) = 10, 'pattern 1 returns top 10') FROM p1;
SELECT pg_temp.assert(
  array_agg(id ORDER BY rank) = (pg_temp.expected_order((SELECT query FROM demo_queries WHERE id = 1), min(candidate_ids)))[1:10],
  'pattern 1 order = rerank_score order of the same candidates') FROM p1;
SELECT pg_temp.assert(bool_and(p.id IS NOT NULL), 'pattern 1 ids join back to the table')
FROM p1 LEFT JOIN passages p USING (id);

-- The plan uses the HNSW index.
SELECT pg_temp.assert(pg_temp.plan($$
  WITH q AS (SELECT query, embedding FROM demo_queries WHERE id = 1),
  candidates AS (SELECT p.id, p.body FROM passages p ORDER BY p.embedding <=> (SELECT embedding FROM q) LIMIT 30),
  bundle AS (SELECT array_agg(id) AS ids, array_agg(body) AS bodies FROM candidates)
  SELECT b.ids[r.idx] AS id, r.score FROM bundle b, q, ettin_rerank(q.query, b.bodies, 10) AS r
$$) LIKE '%Index Scan using passages_embedding_idx%', 'the KNN step uses the HNSW index');

-- 2. rerank_score(query, documents[]) zipped back with unnest ... WITH ORDINALITY.
CREATE TEMP TABLE p2 AS
WITH q AS (SELECT query, embedding FROM demo_queries WHERE id = 2),
candidates AS (SELECT p.id, p.body FROM passages p ORDER BY p.embedding <=> (SELECT embedding FROM q) LIMIT 30),
bundle AS (SELECT array_agg(id) AS ids, array_agg(body) AS bodies FROM candidates)
SELECT b.ids[s.ord] AS id, s.score, b.ids AS candidate_ids
FROM bundle b, q, unnest(rerank_score(q.query, b.bodies)) WITH ORDINALITY AS s(score, ord);
SELECT pg_temp.assert(count(*) = 30, 'pattern 2 scores every candidate') FROM p2;
SELECT pg_temp.assert(
  array_agg(id ORDER BY score DESC) = pg_temp.expected_order((SELECT query FROM demo_queries WHERE id = 2), min(candidate_ids)),
  'pattern 2 order') FROM p2;

-- 3. Hybrid candidates: full-text ts_rank ∪ vector KNN, deduplicated, reranked.
CREATE TEMP TABLE p3 AS
WITH q AS (SELECT query, embedding FROM demo_queries WHERE id = 5),
fts AS (
  SELECT p.id FROM passages p, q
  WHERE to_tsvector('english', p.body) @@ websearch_to_tsquery('english', 'warranty or liability')
  ORDER BY ts_rank(to_tsvector('english', p.body), websearch_to_tsquery('english', 'warranty or liability')) DESC
  LIMIT 15
),
knn AS (SELECT p.id FROM passages p ORDER BY p.embedding <=> (SELECT embedding FROM q) LIMIT 15),
candidates AS (SELECT id FROM fts UNION SELECT id FROM knn),
bundle AS (
  SELECT array_agg(p.id ORDER BY p.id) AS ids, array_agg(p.body ORDER BY p.id) AS bodies
  FROM candidates c JOIN passages p USING (id)
)
SELECT b.ids[r.idx] AS id, r.score, row_number() OVER () AS rank, b.ids AS candidate_ids
FROM bundle b, q, ettin_rerank(q.query, b.bodies) AS r;
SELECT pg_temp.assert(count(*) = count(DISTINCT id) AND count(*) BETWEEN 16 AND 30, 'pattern 3 candidates deduplicated and merged') FROM p3;
SELECT pg_temp.assert(
  array_agg(id ORDER BY rank) = pg_temp.expected_order((SELECT query FROM demo_queries WHERE id = 5), min(candidate_ids)),
  'pattern 3 order') FROM p3;

-- 4. Many queries at once: LATERAL candidates per query, top 3 each.
CREATE TEMP TABLE p4 AS
SELECT q.id AS qid, b.ids[r.idx] AS id, r.score, row_number() OVER (PARTITION BY q.id) AS rank, b.ids AS candidate_ids, q.query
FROM demo_queries q
CROSS JOIN LATERAL (
  SELECT array_agg(id ORDER BY d) AS ids, array_agg(body ORDER BY d) AS bodies
  FROM (SELECT id, body, embedding <=> q.embedding AS d FROM passages ORDER BY d LIMIT 20) c
) b
CROSS JOIN LATERAL ettin_rerank(q.query, b.bodies, 3) AS r;
SELECT pg_temp.assert(count(*) = 3 * (SELECT count(*) FROM demo_queries), 'pattern 4: 3 per query') FROM p4;
SELECT pg_temp.assert(bool_and(ok), 'pattern 4 order per query') FROM (
  SELECT array_agg(id ORDER BY rank) = (pg_temp.expected_order(min(query), min(candidate_ids)))[1:3] AS ok
  FROM p4 GROUP BY qid) x;
SELECT pg_temp.assert(pg_temp.plan($$
  SELECT q.id, r.idx FROM demo_queries q
  CROSS JOIN LATERAL (
    SELECT array_agg(body ORDER BY d) AS bodies
    FROM (SELECT body, embedding <=> q.embedding AS d FROM passages ORDER BY d LIMIT 20) c) b
  CROSS JOIN LATERAL ettin_rerank(q.query, b.bodies, 3) AS r
$$) LIKE '%Index Scan using passages_embedding_idx%', 'LATERAL KNN uses the HNSW index');
