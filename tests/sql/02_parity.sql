-- Every form of the API reproduces sentence-transformers' CrossEncoder.predict() scores for both
-- model layouts at max_length 512 and 64, and under the default ettin.max_length what predict()
-- gives with its own defaults (the model's max length: 1024 for modular, 512 for classic), within
-- 1e-3 × σ of the reference scores.
\ir _helpers.sql
CREATE TEMP TABLE pairs AS
SELECT model, i, pair->>0 AS query, pair->>1 AS document,
       (ref->'scores'->'512'->>(i::int - 1))::float8 AS s512,
       (ref->'scores'->'64'->>(i::int - 1))::float8 AS s64,
       (ref->'scores'->'default'->>(i::int - 1))::float8 AS s_default
FROM (VALUES ('modular'), ('classic')) AS m(model),
     LATERAL pg_temp.reference(model) AS ref,
     LATERAL jsonb_array_elements(ref->'pairs') WITH ORDINALITY AS p(pair, i);

CREATE TEMP TABLE rankings AS
SELECT model, r.n,
       rk->>'query' AS query,
       ARRAY(SELECT jsonb_array_elements_text(rk->'documents')) AS documents,
       ARRAY(SELECT jsonb_array_elements_text(rk->'scores'->'512')::float8) AS s512,
       ARRAY(SELECT jsonb_array_elements_text(rk->'scores'->'64')::float8) AS s64,
       ARRAY(SELECT jsonb_array_elements_text(rk->'scores'->'default')::float8) AS s_default
FROM (VALUES ('modular'), ('classic')) AS m(model),
     LATERAL pg_temp.reference(model) AS ref,
     LATERAL jsonb_array_elements(ref->'rankings') WITH ORDINALITY AS r(rk, n);

SELECT pg_temp.assert(count(*) > 600, 'reference pairs loaded') FROM pairs;

-- rerank_score(query, document), one call per pair
SET ettin.max_length = 512;
SELECT pg_temp.assert_close('one pair, ' || model || ' @512',
  array_agg(rerank_score(query, document, 'ettin-test/' || model)::float8 ORDER BY i), array_agg(s512 ORDER BY i))
FROM pairs GROUP BY model;
SET ettin.max_length = 64;
SELECT pg_temp.assert_close('one pair, ' || model || ' @64',
  array_agg(rerank_score(query, document, 'ettin-test/' || model)::float8 ORDER BY i), array_agg(s64 ORDER BY i))
FROM pairs GROUP BY model;

RESET ettin.max_length;
SELECT pg_temp.assert_close('one pair, ' || model || ' @default',
  array_agg(rerank_score(query, document, 'ettin-test/' || model)::float8 ORDER BY i), array_agg(s_default ORDER BY i))
FROM pairs GROUP BY model;
SELECT pg_temp.assert(count(*) FILTER (WHERE abs(s_default - s512) > 1e-3) > 10,
  'the modular fixture has pairs over 512 tokens, where the default differs from 512')
FROM pairs WHERE model = 'modular';

-- rerank_score(query, documents[]): scores in input order
SET ettin.max_length = 512;
SELECT pg_temp.assert_close('array, ' || model || ' #' || n || ' @512',
  rerank_score(query, documents, 'ettin-test/' || model)::float8[], s512) FROM rankings;
SET ettin.max_length = 64;
SELECT pg_temp.assert_close('array, ' || model || ' #' || n || ' @64',
  rerank_score(query, documents, 'ettin-test/' || model)::float8[], s64) FROM rankings;
RESET ettin.max_length;
SELECT pg_temp.assert_close('array, ' || model || ' #' || n || ' @default',
  rerank_score(query, documents, 'ettin-test/' || model)::float8[], s_default) FROM rankings;

-- ettin_rerank: the order is the reference order (best first) and the scores are the reference's.
CREATE FUNCTION pg_temp.check_rerank(label text, query text, documents text[], expected float8[], model text)
RETURNS text AS $$
DECLARE got_idx int[]; got_scores float8[]; sigma float8;
BEGIN
  SELECT array_agg(idx ORDER BY ord), array_agg(score::float8 ORDER BY ord) INTO got_idx, got_scores
  FROM ettin_rerank(query, documents, NULL, model) WITH ORDINALITY AS r(idx, score, ord);
  SELECT stddev_pop(e) INTO sigma FROM unnest(expected) e;
  PERFORM pg_temp.assert(cardinality(got_idx) = cardinality(documents), label || ': every document ranked');
  PERFORM pg_temp.assert_close(label, got_scores, ARRAY(SELECT expected[i] FROM unnest(got_idx) i));
  -- Best first: each expected score is no lower than the next one's, up to the tolerance.
  FOR k IN 1 .. cardinality(got_idx) - 1 LOOP
    PERFORM pg_temp.assert(expected[got_idx[k]] >= expected[got_idx[k + 1]] - 2e-3 * sigma,
      format('%s: rank %s (doc %s) before doc %s', label, k, got_idx[k], got_idx[k + 1]));
  END LOOP;
  RETURN label || ': order ok';
END $$ LANGUAGE plpgsql;
SET ettin.max_length = 512;
SELECT pg_temp.check_rerank('ettin_rerank ' || model || ' #' || n || ' @512', query, documents, s512, 'ettin-test/' || model)
FROM rankings;
SET ettin.max_length = 64;
SELECT pg_temp.check_rerank('ettin_rerank ' || model || ' #' || n || ' @64', query, documents, s64, 'ettin-test/' || model)
FROM rankings;
RESET ettin.max_length;
SELECT pg_temp.check_rerank('ettin_rerank ' || model || ' #' || n || ' @default', query, documents, s_default, 'ettin-test/' || model)
FROM rankings;

-- The export tool's CLS-only graph (ettin.onnx_file) scores the same as the plain backbone, and
-- is cached as a separate model; ettin_models() shows which file and counts the work.
SET ettin.max_length = 512;
SET ettin.onnx_file = 'onnx/model_cls.onnx';
SELECT pg_temp.assert_close('array, CLS-only graph #' || n || ' @512',
  rerank_score(query, documents, 'ettin-test/modular')::float8[], s512) FROM rankings WHERE model = 'modular';
SELECT pg_temp.assert(count(*) = 1 AND min(pairs) = (SELECT sum(cardinality(documents)) FROM rankings WHERE model = 'modular')
    AND min(calls) = (SELECT count(*) FROM rankings WHERE model = 'modular')
    AND min(inference_ms) > 0 AND min(inference_ms) < min(total_ms),
  'ettin_models() shows the CLS-only graph with its counters')
FROM ettin_models() WHERE onnx_file = 'onnx/model_cls.onnx';
RESET ettin.onnx_file;
SELECT pg_temp.assert(count(*) = 1, 'the plain graph is still loaded separately')
FROM ettin_models() WHERE name = 'ettin-test/modular' AND onnx_file = 'onnx/model.onnx';

-- A classic cross-encoder as sentence-transformers 6's CrossEncoder.save() writes it (a lone
-- Transformer module, saved with max_length 128): under the default ettin.max_length the
-- model's own 128 applies, as in CrossEncoder.predict(); an explicit 64 applies below it.
RESET ettin.max_length;
CREATE TEMP TABLE st6 AS
SELECT i, pair->>0 AS query, pair->>1 AS document,
       (ref->'scores'->'default'->>(i::int - 1))::float8 AS s_default,
       (ref->'scores'->'64'->>(i::int - 1))::float8 AS s64
FROM pg_temp.reference('classic-st6') AS ref,
     LATERAL jsonb_array_elements(ref->'pairs') WITH ORDINALITY AS p(pair, i);
SELECT pg_temp.assert_close('classic-st6 one pair @saved 128',
  array_agg(rerank_score(query, document, 'ettin-test/classic-st6')::float8 ORDER BY i), array_agg(s_default ORDER BY i)) FROM st6;
SELECT pg_temp.assert(max_length = 128 AND layout = 'classic', 'ettin_models() shows the saved length and the layout')
FROM ettin_models() WHERE name = 'ettin-test/classic-st6';
SET ettin.max_length = 64;
SELECT pg_temp.assert_close('classic-st6 one pair @64',
  array_agg(rerank_score(query, document, 'ettin-test/classic-st6')::float8 ORDER BY i), array_agg(s64 ORDER BY i)) FROM st6;
RESET ettin.max_length;

-- The long graph (onnx/model_long.onnx: banded local attention, one head at a time in global
-- layers, CLS-only): predict()'s scores on pairs of 92 to 11157 tokens at the model's own 7999
-- (the default), 2048 and 512, within the default ettin.max_batch_memory; and on the modular
-- fixture (its last layer local) at its default.
SET ettin.onnx_file = 'onnx/model_long.onnx';
CREATE TEMP TABLE long_pairs AS
SELECT i, pair->>0 AS query, pair->>1 AS document, ref->'scores' AS scores
FROM pg_temp.reference('modular-long') AS ref, LATERAL jsonb_array_elements(ref->'pairs') WITH ORDINALITY AS p(pair, i);
RESET ettin.max_length;
SELECT pg_temp.assert_close('long graph, pairs up to 8K @default',
  array_agg(rerank_score(query, document, 'ettin-test/modular-long')::float8 ORDER BY i),
  array_agg((scores->'default'->>(i::int - 1))::float8 ORDER BY i)) FROM long_pairs;
SET ettin.max_length = 2048;
SELECT pg_temp.assert_close('long graph @2048',
  array_agg(rerank_score(query, document, 'ettin-test/modular-long')::float8 ORDER BY i),
  array_agg((scores->'2048'->>(i::int - 1))::float8 ORDER BY i)) FROM long_pairs;
SET ettin.max_length = 512;
SELECT pg_temp.assert_close('long graph @512',
  array_agg(rerank_score(query, document, 'ettin-test/modular-long')::float8 ORDER BY i),
  array_agg((scores->'512'->>(i::int - 1))::float8 ORDER BY i)) FROM long_pairs;
RESET ettin.max_length;
SELECT pg_temp.assert_close('long graph, modular (last layer local) #' || n || ' @default',
  rerank_score(query, documents, 'ettin-test/modular')::float8[], s_default) FROM rankings WHERE model = 'modular';
SELECT pg_temp.assert(max_length = 7999, 'the long fixture''s own length') FROM ettin_models() WHERE name = 'ettin-test/modular-long';
RESET ettin.onnx_file;
