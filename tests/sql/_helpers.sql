-- Helpers every SQL test includes: assertions that raise (psql stops on the first error).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

-- The SQLSTATE, message and hint running `stmt` raises (all NULL when it succeeds).
CREATE FUNCTION pg_temp.caught(stmt text, OUT state text, OUT msg text, OUT hint text) AS $$
BEGIN
  EXECUTE stmt;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
END $$ LANGUAGE plpgsql;

-- Fail unless running `stmt` raises SQLSTATE `state` (with a hint, for ettin's own errors).
CREATE FUNCTION pg_temp.expect_error(stmt text, state text, want_hint boolean DEFAULT true) RETURNS text AS $$
DECLARE e record;
BEGIN
  SELECT * INTO e FROM pg_temp.caught(stmt);
  IF e.state IS NULL THEN
    RAISE EXCEPTION 'expected SQLSTATE % from [%], but it succeeded', state, stmt;
  END IF;
  IF e.state <> state THEN
    RAISE EXCEPTION 'expected SQLSTATE % from [%], got %: %', state, stmt, e.state, e.msg;
  END IF;
  IF want_hint AND coalesce(e.hint, '') = '' THEN
    RAISE EXCEPTION 'error from [%] has no hint: %', stmt, e.msg;
  END IF;
  RETURN e.state || ': ' || e.msg;
END $$ LANGUAGE plpgsql;

-- Fail unless every got[i] is within tol × σ(expected) of expected[i].
CREATE FUNCTION pg_temp.assert_close(label text, got float8[], expected float8[], tol float8 DEFAULT 1e-3)
RETURNS text AS $$
DECLARE sigma float8; worst float8 := 0; at int := 0; d float8;
BEGIN
  IF cardinality(got) IS DISTINCT FROM cardinality(expected) THEN
    RAISE EXCEPTION '%: % scores, expected %', label, cardinality(got), cardinality(expected);
  END IF;
  SELECT stddev_pop(e) INTO sigma FROM unnest(expected) e;
  FOR i IN 1 .. cardinality(expected) LOOP
    d := abs(got[i] - expected[i]);
    IF d IS NULL OR d > worst THEN worst := coalesce(d, 'infinity'); at := i; END IF;
  END LOOP;
  IF worst > tol * sigma THEN
    RAISE EXCEPTION '%: element % differs by % (limit %): got %, expected %',
      label, at, worst, tol * sigma, got[at], expected[at];
  END IF;
  RETURN format('%s: max |diff| %s <= %s', label, worst, tol * sigma);
END $$ LANGUAGE plpgsql;

CREATE FUNCTION pg_temp.assert(ok boolean, what text) RETURNS void AS $$
BEGIN
  IF ok IS NOT TRUE THEN RAISE EXCEPTION 'assertion failed: %', what; END IF;
END $$ LANGUAGE plpgsql;

-- The EXPLAIN output of a statement, as one text.
CREATE FUNCTION pg_temp.plan(stmt text) RETURNS text AS $$
DECLARE line text; plan text := '';
BEGIN
  FOR line IN EXECUTE 'EXPLAIN ' || stmt LOOP plan := plan || line || E'\n'; END LOOP;
  RETURN plan;
END $$ LANGUAGE plpgsql;

-- The committed fixtures' sentence-transformers reference scores.
CREATE FUNCTION pg_temp.reference(model text) RETURNS jsonb AS $$
  SELECT pg_read_file(current_setting('ettin.model_dir') || '/ettin-test/' || model || '/reference.json')::jsonb
$$ LANGUAGE sql;
