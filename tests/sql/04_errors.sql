-- Bad input is a clean ERROR with a SQLSTATE and a hint; the connection stays usable.
\ir _helpers.sql
SELECT pg_temp.expect_error($$SELECT rerank_score('q', 'd', 'no-such/model')$$, '58P01');
SELECT pg_temp.assert(pg_temp.expect_error($$SELECT rerank_score('q', 'd', 'local-model')$$, '58P01') LIKE '%does not exist%',
  'a missing non-Hub name is not sent to the Hub');
SELECT pg_temp.expect_error($$SELECT rerank_score('q', 'd', '../etc')$$, '22023');
SELECT pg_temp.expect_error($$SELECT rerank_score('q', 'd', 'a/../../b')$$, '22023');
SELECT pg_temp.expect_error($$SELECT rerank_score('q', 'd', '/etc/passwd')$$, '22023');
SELECT pg_temp.expect_error($$SELECT rerank_score('q', 'd', 'a//b')$$, '22023');
SELECT pg_temp.expect_error($$SELECT rerank_score('q', 'd', '')$$, '22023');
SELECT pg_temp.expect_error($$SELECT rerank_score('q', 'd', 'broken/no-tokenizer')$$, '58P01');
SELECT pg_temp.expect_error($$SELECT rerank_score('q', 'd', 'broken/no-onnx')$$, '58P01');
SELECT pg_temp.expect_error($$SELECT rerank_score('q', 'd', 'broken/random-onnx')$$, '38000');
SELECT pg_temp.expect_error($$SELECT rerank_score('q', 'd', 'broken/wrong-head-shape')$$, '38000');
SELECT pg_temp.expect_error($$SELECT rerank_score('q', 'd', 'broken/bad-tokenizer')$$, '38000');
SELECT pg_temp.expect_error($$SELECT rerank_score('q', 'd', 'broken/unknown-module')$$, '0A000');
SELECT pg_temp.expect_error($$SELECT rerank_score('q', 'd', 'broken/classic-as-backbone')$$, '38000');
-- ettin.onnx_file: a variant that is not there names the files that are; paths stay inside
SET ettin.onnx_file = 'onnx/model_int8.onnx';
SELECT pg_temp.assert(pg_temp.expect_error($$SELECT rerank_score('q', 'd', 'ettin-test/modular')$$, '58P01') LIKE '%model_int8.onnx%',
  'a missing variant names the file');
SET ettin.onnx_file = '../classic/onnx/model.onnx';
SELECT pg_temp.expect_error($$SELECT rerank_score('q', 'd', 'ettin-test/modular')$$, '22023');
SET ettin.onnx_file = 'onnx/model_cls.onnx';
SELECT pg_temp.expect_error($$SELECT rerank_score('q', 'd', 'ettin-test/classic')$$, '58P01');
RESET ettin.onnx_file;
-- a full-range int8 graph (metadata ettin.int8_weights) runs only on a CPU with VNNI/AMX; on
-- others it is refused rather than scored wrong by saturating int8 kernels
SET ettin.onnx_file = 'onnx/model_cls_int8_vnni.onnx';
SELECT CASE WHEN (ettin_info()->'cpu'->>'avx512_vnni')::boolean OR (ettin_info()->'cpu'->>'avx_vnni')::boolean
                 OR (ettin_info()->'cpu'->>'amx_int8')::boolean
  THEN pg_temp.assert(rerank_score('q', ARRAY['d', 'e'], 'ettin-test/modular') IS NOT NULL, 'full-range int8 scores on a VNNI CPU')
  ELSE pg_temp.assert(pg_temp.expect_error($$SELECT rerank_score('q', 'd', 'ettin-test/modular')$$, '0A000') LIKE '%full-range int8%',
         'full-range int8 is refused without VNNI') END;
RESET ettin.onnx_file;
-- ettin.device: cuda without a CUDA-enabled ONNX Runtime is an ERROR, never a silent CPU run;
-- auto falls back to the CPU (and says so in the server log)
SELECT pg_temp.assert((ettin_info()->>'cuda_available')::boolean = false, 'this ONNX Runtime has no CUDA provider');
SET ettin.device = 'cuda';
SELECT pg_temp.assert(pg_temp.expect_error($$SELECT rerank_score('q', 'd', 'ettin-test/modular')$$, '0A000') LIKE '%no CUDA execution provider%',
  'cuda without the provider is 0A000');
SET ettin.device = 'auto';
SELECT pg_temp.assert(rerank_score('q', 'd', 'ettin-test/modular') IS NOT NULL, 'auto scores');
SELECT pg_temp.assert(count(*) > 0 AND bool_and(device = 'cpu'), 'auto runs on the CPU here') FROM ettin_models();
SET ettin.device = 'cpu';
SELECT pg_temp.assert(rerank_score('q', 'd', 'ettin-test/modular') IS NOT NULL, 'cpu scores');
RESET ettin.device;
-- the ettin prefix is reserved: a misspelt setting is an ERROR, not a placeholder that does nothing
SELECT pg_temp.assert(pg_temp.expect_error($$SET ettin.max_lenght = 64$$, '42602', false) LIKE '%invalid configuration parameter name%',
  'SET ettin.<typo> is refused');
SELECT pg_temp.expect_error($$SELECT set_config('ettin.batch_sise', '8', false)$$, '42602', false);
-- user-supplied names and paths are quoted at a bounded length, in the ERROR and in the log
SELECT pg_temp.assert(length(m) < 600 AND m LIKE '%…%' AND m LIKE '%characters)%', 'a 100000-character model name is bounded: ' || left(m, 300))
FROM pg_temp.expect_error($$SELECT rerank_score('q', 'd', repeat('x', 100000))$$, '58P01') AS m;
SELECT pg_temp.assert(length(m) < 600 AND m LIKE '%…%', 'a 100000-character Hub-shaped name is bounded: ' || left(m, 300))
FROM pg_temp.expect_error($$SELECT rerank_score('q', 'd', 'org/' || repeat('y', 100000))$$, '58P01') AS m;
SELECT set_config('ettin.onnx_file', 'onnx/' || repeat('z', 100000) || '.onnx', false) IS NOT NULL;
SELECT pg_temp.assert(length(m) < 600 AND m LIKE '%…%', 'a 100000-character ettin.onnx_file is bounded: ' || left(m, 300))
FROM pg_temp.expect_error($$SELECT rerank_score('q', 'd', 'ettin-test/modular')$$, '58P01') AS m;
RESET ettin.onnx_file;
-- settings out of range are refused by Postgres itself
SELECT pg_temp.expect_error($$SET ettin.max_length = 8$$, '22023', false);
SELECT pg_temp.expect_error($$SET ettin.max_length = 100000$$, '22023', false);
SELECT pg_temp.expect_error($$SET ettin.activation = 'softmax'$$, '22023', false);
SELECT pg_temp.expect_error($$SET ettin.batch_size = 0$$, '22023', false);
SELECT pg_temp.expect_error($$SET ettin.max_batch_memory = '8MB'$$, '22023', false);
-- superuser-only settings, from a role that is not one
DROP ROLE IF EXISTS ettin_user;
CREATE ROLE ettin_user LOGIN;
GRANT USAGE ON SCHEMA public TO ettin_user;
SET ROLE ettin_user;
SELECT pg_temp.expect_error($$SET ettin.model_dir = '/'$$, '42501', false);
SELECT pg_temp.expect_error($$SET ettin.threads = 1$$, '42501', false);
SELECT pg_temp.expect_error($$SET ettin.spinning = on$$, '42501', false);
SELECT pg_temp.expect_error($$SET ettin.max_tokens_per_call = 100000000$$, '42501', false);
SELECT pg_temp.expect_error($$SET ettin.max_batch_memory = '100GB'$$, '42501', false);
SELECT pg_temp.expect_error($$SET ettin.device = 'cpu'$$, '42501', false);
SELECT pg_temp.expect_error($$SET ettin.cuda_tf32 = off$$, '42501', false);
SELECT pg_temp.expect_error($$SET ettin.inference = 'shared'$$, '55P02', false);
SELECT pg_temp.expect_error($$SET ettin.onnxruntime_library = '/tmp/x.so'$$, '55P02', false);
-- a user may pick a model and score
SET ettin.model = 'ettin-test/modular';
SELECT pg_temp.assert(rerank_score('q', 'd') IS NOT NULL, 'non-superuser can score');
RESET ROLE;
DROP OWNED BY ettin_user;
DROP ROLE ettin_user;
-- after all that, this connection still works
SELECT pg_temp.assert(rerank_score('q', 'd', 'ettin-test/classic') BETWEEN 0 AND 1, 'connection still usable');
-- the memory guard: a call over ettin.max_tokens_per_call fails cleanly (superuser-only setting)
SET ettin.max_tokens_per_call = 2000;
SELECT pg_temp.expect_error(
  $$SELECT rerank_score('license', array_fill(repeat('free software ', 300), ARRAY[20]), 'ettin-test/modular')$$, '54000');
RESET ettin.max_tokens_per_call;
SELECT pg_temp.assert(cardinality(rerank_score('license', array_fill(repeat('free software ', 300), ARRAY[20]), 'ettin-test/modular')) = 20,
  'the same call fits the default guard');
