-- Models from a Hub endpoint (tests/hub_server.py mimics the Hub's resolve URLs, headers and LFS
-- redirects): downloaded once, scored exactly like the same files placed by hand.
\ir _helpers.sql
-- ahead of time, superuser
SELECT pg_temp.assert(ettin_download('hubtest/modular') LIKE '%/hubtest/modular', 'ettin_download returns the directory');
SELECT pg_temp.assert(
  rerank_score('free software', ARRAY['the license', 'a warranty', 'x'], 'hubtest/modular')
  = rerank_score('free software', ARRAY['the license', 'a warranty', 'x'], 'ettin-test/modular'),
  'downloaded modular model scores equal the local copy');
-- on first use (ettin.allow_download = superuser, the default), the classic layout
SELECT pg_temp.assert(
  rerank_score('free software', 'the license', 'hubtest/classic') = rerank_score('free software', 'the license', 'ettin-test/classic'),
  'classic model downloaded on first use scores equal the local copy');
-- a revision
SELECT pg_temp.assert(rerank_score('q', 'd', 'hubtest/modular@v1') = rerank_score('q', 'd', 'hubtest/modular'), 'revision v1');
-- ettin.onnx_file on a Hub model: a variant of a model downloaded before is fetched on first use,
-- a fresh model comes with the variant only, and a variant the repo lacks is 58P01 naming it
SET ettin.onnx_file = 'onnx/model_cls.onnx';
SELECT pg_temp.assert(
  rerank_score('free software', ARRAY['the license', 'a warranty', 'x'], 'hubtest/modular')
  = rerank_score('free software', ARRAY['the license', 'a warranty', 'x'], 'ettin-test/modular'),
  'the CLS-only variant, fetched for a downloaded model, scores like the local copy');
SELECT pg_temp.assert(onnx_file = 'onnx/model_cls.onnx', 'the variant is what got loaded')
FROM ettin_models() WHERE name = 'hubtest/modular' AND onnx_file LIKE '%cls%';
SELECT pg_temp.assert(pg_temp.expect_error($$SELECT ettin_download('hubtest/classic')$$, '58P01') LIKE '%no onnx/model_cls.onnx%',
  'a variant the repo lacks is named');
RESET ettin.onnx_file;
-- errors that say what to do
SELECT pg_temp.expect_error($$SELECT ettin_download('hubtest/missing')$$, '58P01');
SELECT pg_temp.expect_error($$SELECT ettin_download('hubtest/modular@nope')$$, '58P01');
SELECT pg_temp.expect_error($$SELECT ettin_download('hubtest/no-onnx')$$, '58P01');
SELECT pg_temp.assert(pg_temp.expect_error($$SELECT ettin_download('hubtest/no-onnx')$$, '58P01') LIKE '%no onnx/model.onnx%',
  'repo without ONNX is named');
SELECT pg_temp.expect_error($$SELECT ettin_download('not-a-hub-id')$$, '22023');
-- content that does not match its ETag is refused, removed, and refused again on retry
SELECT pg_temp.assert(pg_temp.expect_error($$SELECT ettin_download('hubtest/corrupt')$$, '38000') LIKE '%does not match its ETag%',
  'corrupted download detected');
SELECT pg_temp.expect_error($$SELECT ettin_download('hubtest/corrupt')$$, '38000');
SELECT pg_temp.expect_error($$SELECT rerank_score('q', 'd', 'hubtest/corrupt')$$, '38000');
SET ettin.hub_endpoint = 'http://127.0.0.1:9';
SELECT pg_temp.expect_error($$SELECT ettin_download('hubtest/unreachable')$$, '38000');
RESET ettin.hub_endpoint;
SET ettin.allow_download = off;
SELECT pg_temp.expect_error($$SELECT rerank_score('q', 'd', 'hubtest/classic-two')$$, '58P01');
SELECT pg_temp.expect_error($$SELECT ettin_download('hubtest/classic-two')$$, '22023');
RESET ettin.allow_download;
-- privileges: a non-superuser names models; it cannot download, change the endpoint or the rule
DROP ROLE IF EXISTS ettin_user;
CREATE ROLE ettin_user LOGIN;
SET ROLE ettin_user;
SELECT pg_temp.assert(rerank_score('q', 'd', 'hubtest/modular') IS NOT NULL, 'non-superuser uses a downloaded model');
SELECT pg_temp.expect_error($$SELECT rerank_score('q', 'd', 'hubtest/classic-two')$$, '58P01');
SELECT pg_temp.expect_error($$SELECT ettin_download('hubtest/classic-two')$$, '42501');
SELECT pg_temp.expect_error($$SET ettin.hub_endpoint = 'http://evil.example'$$, '42501', false);
SELECT pg_temp.expect_error($$SET ettin.allow_download = 'all'$$, '42501', false);
RESET ROLE;
-- an admin may let every role trigger downloads
SET ettin.allow_download = 'all';
SET ROLE ettin_user;
SELECT pg_temp.assert(rerank_score('q', 'd', 'hubtest/classic-two') IS NOT NULL, 'allowed non-superuser download');
RESET ROLE;
DROP ROLE ettin_user;

-- Embedders download the files their layout needs: a StaticEmbedding repo has no config.json
-- and no ONNX graph; all-MiniLM-L6-v2 lists a Normalize module with no folder.
SELECT pg_temp.assert(ettin_download('hubtest/static') LIKE '%/hubtest/static', 'StaticEmbedding download');
SELECT pg_temp.assert(ettin_embed('free software', 'hubtest/static') = ettin_embed('free software', 'ettin-test/static'),
  'downloaded StaticEmbedding (Hub layout) embeds like the fixture');
SELECT pg_temp.assert(ettin_embed('free software', 'hubtest/embed-bert', 'query') = ettin_embed('free software', 'ettin-test/embed-bert', 'query'),
  'transformer embedder downloaded on first use embeds like the fixture');
