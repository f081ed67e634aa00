-- pg_temp.members: the ettin extension's members in this database, one line each (description,
-- md5 of a function's full definition, comment), for comparing an updated install with a fresh one.
CREATE VIEW pg_temp.members AS
SELECT string_agg(line, E'\n' ORDER BY line) AS list, count(*) AS n
FROM (SELECT pg_describe_object(classid, objid, 0)
         || CASE WHEN classid = 'pg_proc'::regclass THEN ' ' || md5(pg_get_functiondef(objid)) ELSE '' END
         || coalesce(' -- ' || obj_description(objid, classid::regclass::text), '') AS line
      FROM pg_depend
      WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
        AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'ettin')) AS members;
