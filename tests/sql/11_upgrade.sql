-- ALTER EXTENSION ettin UPDATE from 0.1.0 and from 0.2.0 (each installed from its own frozen SQL,
-- sql/ettin--0.1.0.sql, sql/ettin--0.2.0.sql) keeps views that call ettin working, and leaves
-- exactly the objects of a fresh install of the new version: every member of the extension, each
-- function's full definition (md5 of pg_get_functiondef) and comment.
\set ON_ERROR_STOP 1
\c postgres
DROP DATABASE IF EXISTS ettin_upgrade;
DROP DATABASE IF EXISTS ettin_upgrade_020;
DROP DATABASE IF EXISTS ettin_fresh;
CREATE DATABASE ettin_upgrade;
CREATE DATABASE ettin_upgrade_020;
CREATE DATABASE ettin_fresh;

\c ettin_fresh
CREATE EXTENSION ettin;
\ir _members.sql
SELECT extversion AS fresh_version FROM pg_extension WHERE extname = 'ettin' \gset
SELECT list AS fresh, n AS fresh_n FROM pg_temp.members \gset

\c ettin_upgrade
\ir _helpers.sql
CREATE EXTENSION ettin VERSION '0.1.0';
SELECT pg_temp.assert(NOT EXISTS (SELECT FROM pg_proc WHERE proname = 'ettin_embed'), '0.1.0 has no ettin_embed');
CREATE VIEW best_license_passage AS
SELECT * FROM ettin_rerank('free software', ARRAY['the license', 'a warranty'], 1, 'ettin-test/modular');
SELECT score AS before FROM best_license_passage \gset
ALTER EXTENSION ettin UPDATE;
SELECT pg_temp.assert(extversion = :'fresh_version', 'updated to ' || :'fresh_version') FROM pg_extension WHERE extname = 'ettin';
SELECT pg_temp.assert(score::text = :'before', 'the view that calls ettin_rerank still works') FROM best_license_passage;
\ir _members.sql
SELECT pg_temp.assert(list = :'fresh', format(E'the updated extension differs from a fresh install:\n%s\n-- fresh:\n%s', list, :'fresh'))
FROM pg_temp.members;
SELECT pg_temp.assert(n = :fresh_n AND n >= 9, n || ' objects, as a fresh install') FROM pg_temp.members;
SELECT pg_temp.assert(cardinality(ettin_embed('x', 'ettin-test/static')) = 32, 'the new functions work after the update');

\c ettin_upgrade_020
\ir _helpers.sql
CREATE EXTENSION ettin VERSION '0.2.0';
SELECT pg_temp.assert(NOT EXISTS (SELECT FROM pg_proc WHERE proname = 'ettin_chunk'), '0.2.0 has no ettin_chunk');
CREATE VIEW first_dimension AS SELECT (ettin_embed('free software', 'ettin-test/static'))[1] AS d;
SELECT d AS before FROM first_dimension \gset
ALTER EXTENSION ettin UPDATE;
SELECT pg_temp.assert(extversion = :'fresh_version', '0.2.0 updated to ' || :'fresh_version') FROM pg_extension WHERE extname = 'ettin';
SELECT pg_temp.assert(d::text = :'before', 'the view that calls ettin_embed still works') FROM first_dimension;
\ir _members.sql
SELECT pg_temp.assert(list = :'fresh', format(E'the extension updated from 0.2.0 differs from a fresh install:\n%s\n-- fresh:\n%s', list, :'fresh'))
FROM pg_temp.members;
SELECT pg_temp.assert(count(*) > 0, 'ettin_chunk works after the update') FROM ettin_chunk('free software. the license.', 'ettin-test/static', 3);

\c postgres
DROP DATABASE ettin_upgrade;
DROP DATABASE ettin_upgrade_020;
DROP DATABASE ettin_fresh;
