-- ettin 0.2.0 → 0.3.0: ettin_chunk (long texts into chunks that fit a model). Nothing of 0.2.0 changes.
-- Applied by ALTER EXTENSION ettin UPDATE; tests/sql/11_upgrade.sql checks that the result equals a fresh 0.3.0.
\echo Use "ALTER EXTENSION ettin UPDATE TO '0.3.0'" to load this file. \quit
CREATE  FUNCTION "ettin_chunk"(
	"input" TEXT, /* core::option::Option<&str> */
	"model" TEXT DEFAULT NULL, /* core::option::Option<&str> */
	"max_tokens" INT DEFAULT NULL, /* core::option::Option<i32> */
	"overlap" INT DEFAULT 0 /* core::option::Option<i32> */
) RETURNS TABLE (
	"seq" INT,  /* i32 */
	"chunk" TEXT,  /* alloc::string::String */
	"start_char" INT,  /* i32 */
	"end_char" INT  /* i32 */
)
STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'ettin_chunk_wrapper';
