-- The extension installs without pgvector, reports its ONNX Runtime, and pgvector >= 0.8 is there.
\ir _helpers.sql
CREATE EXTENSION ettin;
SELECT pg_temp.assert(ettin_info()->>'onnxruntime' = '1.31.1', 'ettin_info() reports onnxruntime 1.31.1');
SELECT pg_temp.assert(ettin_info()->>'library' LIKE '%/libonnxruntime.so.1.31.1', 'ettin_info() names the library');
SELECT pg_temp.assert(ettin_info()->'providers' ? 'CPUExecutionProvider', 'CPU provider available');
SELECT pg_temp.assert(ettin_info()->>'version' = (SELECT extversion FROM pg_extension WHERE extname = 'ettin'),
  'ettin_info() version matches the installed extension');
CREATE EXTENSION vector;
SELECT pg_temp.assert(string_to_array(extversion, '.')::int[] >= '{0,8,0}', 'pgvector >= 0.8')
FROM pg_extension WHERE extname = 'vector';
-- Functions that read settings are STABLE, never IMMUTABLE.
SELECT pg_temp.assert(bool_and(provolatile = 's'), 'every ettin function is STABLE')
FROM pg_proc WHERE proname IN ('ettin_info', 'ettin_rerank', 'rerank_score', 'ettin_models');
SELECT pg_temp.assert(count(*) = 5, 'five functions') FROM pg_proc
WHERE proname IN ('ettin_info', 'ettin_rerank', 'rerank_score', 'ettin_models');
-- the CPU features that decide which int8 variant pays off, as /proc/cpuinfo lists them
SELECT pg_temp.assert(
  (ettin_info()->'cpu'->>'avx2')::boolean = (pg_read_file('/proc/cpuinfo') ~ '\mavx2\M')
  AND (ettin_info()->'cpu'->>'avx512_vnni')::boolean = (pg_read_file('/proc/cpuinfo') ~ '\mavx512_vnni\M')
  AND (ettin_info()->'cpu'->>'avx512_bf16')::boolean = (pg_read_file('/proc/cpuinfo') ~ '\mavx512_bf16\M')
  AND ettin_info()->'cpu'->>'int8_advice' <> '',
  'ettin_info() reports the CPU features /proc/cpuinfo lists');
