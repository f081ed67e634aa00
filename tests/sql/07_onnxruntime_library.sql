-- ettin.onnxruntime_library pointing at a missing file, a library that is not ONNX Runtime, or an
-- ONNX Runtime older than 1.31: a clean ERROR in a fresh backend, never a crash.
\ir _helpers.sql
LOAD 'ettin';  -- registers the settings, so ALTER SYSTEM knows them
ALTER SYSTEM SET ettin.onnxruntime_library = '/nonexistent/libonnxruntime.so.1.31.1';
SELECT pg_reload_conf(), pg_sleep(0.2);
\c
\ir _helpers.sql
SELECT pg_temp.expect_error($$SELECT ettin_info()$$, '58P01');
SELECT pg_temp.expect_error($$SELECT rerank_score('q', 'd', 'ettin-test/modular')$$, '58P01');

ALTER SYSTEM SET ettin.onnxruntime_library = '/lib/x86_64-linux-gnu/libc.so.6';
SELECT pg_reload_conf(), pg_sleep(0.2);
\c
\ir _helpers.sql
SELECT pg_temp.expect_error($$SELECT ettin_info()$$, '38000');

ALTER SYSTEM SET ettin.onnxruntime_library = :'old_ort';
SELECT pg_reload_conf(), pg_sleep(0.2);
\c
\ir _helpers.sql
SELECT pg_temp.expect_error($$SELECT ettin_info()$$, '0A000');
SELECT pg_temp.expect_error($$SELECT rerank_score('q', 'd', 'ettin-test/modular')$$, '0A000');

ALTER SYSTEM RESET ettin.onnxruntime_library;
SELECT pg_reload_conf(), pg_sleep(0.2);
\c
\ir _helpers.sql
SELECT pg_temp.assert(ettin_info()->>'onnxruntime' = '1.31.1', 'back on the installed library');
