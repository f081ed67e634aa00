-- NULL rules, top_k, ties, the default model setting, activations and ettin_models().
\ir _helpers.sql
SET ettin.model = 'ettin-test/modular';
-- NULL query or document → NULL, no error
SELECT pg_temp.assert(rerank_score(NULL, 'doc') IS NULL, 'NULL query gives NULL');
SELECT pg_temp.assert(rerank_score('q', NULL::text) IS NULL, 'NULL document gives NULL');
SELECT pg_temp.assert(rerank_score('q', NULL::text[]) IS NULL, 'NULL array gives NULL');
SELECT pg_temp.assert(rerank_score(NULL, ARRAY['a']) IS NULL, 'NULL query with array gives NULL');
SELECT pg_temp.assert((SELECT count(*) FROM ettin_rerank(NULL, ARRAY['a'])) = 0, 'NULL query ranks nothing');
SELECT pg_temp.assert((SELECT count(*) FROM ettin_rerank('q', NULL)) = 0, 'NULL documents rank nothing');
-- NULL elements: NULL scores in place / skipped by ettin_rerank
SELECT pg_temp.assert(s[2] IS NULL AND s[1] IS NOT NULL AND s[3] IS NOT NULL AND cardinality(s) = 3,
  'NULL element → NULL score in place')
FROM rerank_score('license', ARRAY['the license', NULL, 'x']) AS s;
SELECT pg_temp.assert(array_agg(idx ORDER BY idx) = '{1,3}', 'NULL elements skipped, positions kept')
FROM ettin_rerank('license', ARRAY['the license', NULL, 'x']);
-- empty array
SELECT pg_temp.assert(rerank_score('q', '{}'::text[]) = '{}', 'empty array gives empty array');
SELECT pg_temp.assert((SELECT count(*) FROM ettin_rerank('q', '{}')) = 0, 'empty array ranks nothing');
-- model NULL means ettin.model; explicit name gives the same scores
SELECT pg_temp.assert(rerank_score('q', 'doc') = rerank_score('q', 'doc', 'ettin-test/modular'), 'default model');
SELECT pg_temp.assert(rerank_score('q', 'doc', NULL) = rerank_score('q', 'doc', 'ettin-test/modular'), 'NULL model');
-- top_k, ties keep input order
SELECT pg_temp.assert(array_agg(idx ORDER BY ord) = '{2,4,1}', 'ties keep input order, top_k cuts')
FROM ettin_rerank('copyright', ARRAY['x', 'copyright notice', 'x', 'copyright notice'], 3)
     WITH ORDINALITY AS r(idx, score, ord);
SELECT pg_temp.assert((SELECT count(*) FROM ettin_rerank('q', ARRAY['a', 'b'], 0)) = 0, 'top_k 0');
SELECT pg_temp.assert((SELECT count(*) FROM ettin_rerank('q', ARRAY['a', 'b'], 10)) = 2, 'top_k beyond count');
SELECT pg_temp.expect_error($$SELECT * FROM ettin_rerank('q', ARRAY['a'], -1)$$, '22023');
-- ettin_rerank's scores are rerank_score's
SELECT pg_temp.assert(bool_and(r.score = s[r.idx]), 'ettin_rerank scores equal rerank_score')
FROM rerank_score('free software', ARRAY['free software license', 'warranty', 'GNU']) s,
     ettin_rerank('free software', ARRAY['free software license', 'warranty', 'GNU']) r;
-- activation: the classic model defaults to sigmoid, raw gives its logit
SET ettin.activation = 'raw';
CREATE TEMP TABLE raw AS SELECT rerank_score('free software', 'the license', 'ettin-test/classic') AS logit,
  rerank_score('free software', 'the license', 'ettin-test/modular') AS modular;
RESET ettin.activation;
SELECT pg_temp.assert(abs(rerank_score('free software', 'the license', 'ettin-test/classic') - 1 / (1 + exp(-logit))) < 1e-6,
  'classic default = sigmoid(logit)') FROM raw;
SELECT pg_temp.assert(rerank_score('free software', 'the license', 'ettin-test/modular') = modular,
  'modular (Identity) default = raw logit') FROM raw;
SET ettin.activation = 'sigmoid';
SELECT pg_temp.assert(abs(rerank_score('free software', 'the license', 'ettin-test/modular') - 1 / (1 + exp(-modular))) < 1e-6,
  'sigmoid setting') FROM raw;
RESET ettin.activation;
-- ettin_models() shows what this backend loaded
SELECT pg_temp.assert(count(*) = 2, 'two models loaded') FROM ettin_models();
SELECT pg_temp.assert(layout = 'modular' AND device = 'cpu' AND max_length = 1024 AND load_ms > 0
  AND path LIKE '%/ettin-test/modular', 'ettin_models row: by default the model''s own 1024 tokens')
FROM ettin_models() WHERE name = 'ettin-test/modular';
SET ettin.max_length = 512;
SELECT pg_temp.assert(max_length = 512, 'an explicit ettin.max_length below it caps it')
FROM ettin_models() WHERE name = 'ettin-test/modular';
SET ettin.max_length = 8192;
SELECT pg_temp.assert(max_length = 512, 'classic capped at its 512 positions')
FROM ettin_models() WHERE name = 'ettin-test/classic';
SELECT pg_temp.assert(max_length = 1024, 'modular capped at its 1024 positions')
FROM ettin_models() WHERE name = 'ettin-test/modular';
