-- ettin_chunk: long texts split on a model's own tokenizer; positions are 1-based characters,
-- inclusive (substr gives the chunk back); chunks cover the text in order, with the overlap
-- asked; argument errors; and the README's chunk-table pattern (a row per chunk, KNN on chunks,
-- best chunk per document, rerank the documents) end to end.
\ir _helpers.sql
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TEMP TABLE docs (id int PRIMARY KEY, body text);
INSERT INTO docs
SELECT d, string_agg(format('Document %s, paragraph %s: the program is free software, naïve café 東京 🍵 %s.',
                            d, p, repeat('you can redistribute it and modify it ', d % 4 + 1)),
                     E'\n\n' ORDER BY p)
FROM generate_series(1, 6) d, generate_series(1, 20) p GROUP BY d;

-- Every chunk is its span, in order, for each tokenizer kind (BPE, WordPiece, static).
SELECT pg_temp.assert(bool_and(substr(d.body, c.start_char, c.end_char - c.start_char + 1) = c.chunk),
                      'substr(body, start_char, end_char - start_char + 1) = chunk: ' || m)
FROM docs d, unnest(ARRAY['ettin-test/embed-modernbert', 'ettin-test/embed-bert', 'ettin-test/static']) m,
     ettin_chunk(d.body, m, 60, 10) c
GROUP BY m;
SELECT pg_temp.assert(array_agg(seq ORDER BY seq) = array_agg(seq ORDER BY start_char)
                      AND min(seq) = 1 AND max(seq) = count(*)
                      AND bool_and(start_char <= end_char), 'seq runs 1..n along the text')
FROM ettin_chunk((SELECT body FROM docs WHERE id = 1), 'ettin-test/embed-bert', 40, 8);

-- Overlap: with it consecutive chunks share text, without it they do not; first and last chunks
-- reach the text's first and last word.
WITH c AS (SELECT *, lead(start_char) OVER (ORDER BY seq) AS next_start
           FROM ettin_chunk((SELECT body FROM docs WHERE id = 2), 'ettin-test/embed-bert', 40, 8))
SELECT pg_temp.assert(bool_and(next_start IS NULL OR next_start <= end_char), 'overlap 8: chunks share text') FROM c;
WITH c AS (SELECT *, lead(start_char) OVER (ORDER BY seq) AS next_start
           FROM ettin_chunk((SELECT body FROM docs WHERE id = 2), 'ettin-test/embed-bert', 40))
SELECT pg_temp.assert(bool_and(next_start IS NULL OR next_start > end_char), 'overlap 0: chunks do not') FROM c;
SELECT pg_temp.assert(min(start_char) = 1 AND max(end_char) = length((SELECT body FROM docs WHERE id = 2)),
                      'the chunks reach both ends of the text')
FROM ettin_chunk((SELECT body FROM docs WHERE id = 2), 'ettin-test/embed-bert', 40);

-- Chunks end at a sentence or paragraph when one is in the second half of the budget: every
-- chunk but the last ends with the paragraphs' final period here (paragraphs are < 60 tokens).
SELECT pg_temp.assert(count(*) FILTER (WHERE chunk NOT LIKE '%.') <= 1, 'chunks end at paragraph ends')
FROM ettin_chunk((SELECT body FROM docs WHERE id = 1), 'ettin-test/embed-bert', 100);

-- The model's own budget by default (embed-modernbert: 96 tokens less [CLS], [SEP] and its default
-- prompt): more, smaller chunks than a budget of 200 gives.
SELECT pg_temp.assert(
  (SELECT count(*) FROM ettin_chunk((SELECT body FROM docs WHERE id = 3), 'ettin-test/embed-modernbert')) >
  (SELECT count(*) FROM ettin_chunk((SELECT body FROM docs WHERE id = 3), 'ettin-test/embed-modernbert', 200)),
  'the default budget is the model''s length');
-- model NULL is ettin.embed_model.
SET ettin.embed_model = 'ettin-test/embed-bert';
SELECT pg_temp.assert(
  (SELECT array_agg(chunk ORDER BY seq) FROM ettin_chunk((SELECT body FROM docs WHERE id = 4))) =
  (SELECT array_agg(chunk ORDER BY seq) FROM ettin_chunk((SELECT body FROM docs WHERE id = 4), 'ettin-test/embed-bert')),
  'model NULL means ettin.embed_model');

-- NULL and empty texts: no rows. Bad arguments: 22023 with a hint; a missing model: 58P01.
SELECT pg_temp.assert(count(*) = 0, 'NULL text: no chunks') FROM ettin_chunk(NULL);
SELECT pg_temp.assert(count(*) = 0, 'empty text: no chunks') FROM ettin_chunk('');
SELECT pg_temp.expect_error($$SELECT * FROM ettin_chunk('a b c', NULL, 0)$$, '22023');
SELECT pg_temp.expect_error($$SELECT * FROM ettin_chunk('a b c', NULL, -5)$$, '22023');
SELECT pg_temp.expect_error($$SELECT * FROM ettin_chunk('a b c', NULL, 10, 10)$$, '22023');
SELECT pg_temp.expect_error($$SELECT * FROM ettin_chunk('a b c', NULL, 10, -1)$$, '22023');
SELECT pg_temp.expect_error($$SELECT * FROM ettin_chunk('a b c', 'ettin-test/no-such-model')$$, '58P01');
SET ettin.max_tokens_per_call = 1024;
SELECT pg_temp.expect_error($$SELECT * FROM ettin_chunk(repeat('word ', 5000), NULL, 100)$$, '54000');
RESET ettin.max_tokens_per_call;

-- The chunk-table pattern: one row per chunk, embedded; KNN over chunks; the best chunk per
-- document; the documents reranked on that chunk.
CREATE TEMP TABLE doc_chunks AS
SELECT d.id AS doc_id, c.seq, c.chunk, ettin_embed(c.chunk)::vector AS embedding
FROM docs d, ettin_chunk(d.body, NULL, 80, 16) c;
SELECT pg_temp.assert(count(DISTINCT doc_id) = 6 AND count(*) > 12, count(*) || ' chunks of 6 documents') FROM doc_chunks;
CREATE TEMP TABLE best AS
WITH hits AS (SELECT doc_id, chunk, embedding <=> ettin_embed('free software you can modify')::vector AS distance
              FROM doc_chunks ORDER BY distance LIMIT 20),
per_doc AS (SELECT DISTINCT ON (doc_id) doc_id, chunk FROM hits ORDER BY doc_id, distance),
bundle AS (SELECT array_agg(doc_id ORDER BY doc_id) AS ids, array_agg(chunk ORDER BY doc_id) AS chunks FROM per_doc)
SELECT b.ids[r.idx] AS doc_id, r.score, b.chunks[r.idx] AS chunk
FROM bundle b, ettin_rerank('free software you can modify', b.chunks, 3, 'ettin-test/modular') r;
SELECT pg_temp.assert(count(*) = 3 AND count(DISTINCT doc_id) = 3, 'three distinct documents reranked') FROM best;
SELECT pg_temp.assert(bool_and(abs(score - rerank_score('free software you can modify', chunk, 'ettin-test/modular')) < 1e-5),
                      'each document''s score is its best chunk''s rerank score') FROM best;
