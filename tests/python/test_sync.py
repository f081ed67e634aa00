"""The sync worker (ettin_sync_start(..., mode => 'async')) against a cluster with ettin in
shared_preload_libraries (tests/sync.sh starts it): backfill of existing rows, the guarantee under
concurrent writers, wake-up after commit, unchanged text, rows set aside, the owner's rights, and
a crash in the middle of a backlog. Connection settings come from PGHOST/PGPORT/PGUSER.
ETTIN_SYNC_QUICK=1 runs the first test only (tests/shared.sh, with ettin.inference = shared)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
import unittest

import psycopg

DB = os.environ["ETTIN_TEST_DB"]
MODEL = "ettin-test/static"
QUICK = os.environ.get("ETTIN_SYNC_QUICK") == "1"


def connect(**kw) -> psycopg.Connection:
    return psycopg.connect(dbname=DB, autocommit=True, **kw)


def one(conn, sql, *args):
    return conn.execute(sql, args).fetchone()[0]


def wait_until(predicate, timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def pending(conn, table: str) -> int:
    return one(conn, 'SELECT pending FROM ettin_syncs WHERE "table" = %s::regclass', table)


def mismatches(conn, table: str) -> int:
    """Rows whose stored vector is not the vector of their current text."""
    return one(conn, f"SELECT count(*) FROM {table} WHERE embedding IS NOT NULL "
                     f"AND embedding <> ettin_embed(body, '{MODEL}')::vector")


def fresh_table(conn, name: str, rows: int) -> None:
    conn.execute(f"DROP TABLE IF EXISTS {name}")
    conn.execute(f"CREATE TABLE {name} (id bigint PRIMARY KEY, body text, tag text, embedding vector(32))")
    conn.execute(f"INSERT INTO {name} SELECT g, 'passage ' || g || ' about free software and its license', 'a' "
                 f"FROM generate_series(1, {rows}) g")


class SyncWorker(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with connect() as c:
            c.execute("CREATE EXTENSION IF NOT EXISTS vector")

    def test_1_backfill_then_follow_writes(self):
        rows = 2000 if QUICK else 100_000
        with connect() as c:
            fresh_table(c, "sync_docs", rows)
            c.execute("SELECT ettin_sync_start('sync_docs', 'body', 'embedding', %s)", (MODEL,))
            took = wait_until(lambda: pending(c, "sync_docs") == 0, 120, f"{rows} existing rows embedded")
            self.assertEqual(mismatches(c, "sync_docs"), 0)
            self.assertEqual(one(c, "SELECT count(*) FROM sync_docs WHERE embedding IS NULL"), 0)
            self.assertEqual(one(c, "SELECT embedded FROM ettin_syncs WHERE \"table\" = 'sync_docs'::regclass"), rows)
            pid = one(c, "SELECT pid FROM ettin_syncs WHERE \"table\" = 'sync_docs'::regclass")
            self.assertEqual(one(c, "SELECT backend_type FROM pg_stat_activity WHERE pid = %s", pid), "ettin sync")
            print(f"\nsync backfill: {rows} rows in {took:.1f} s ({rows / took:.0f} rows/s), worker pid {pid}")
            # A commit that leaves work wakes the worker: the row is embedded within a second.
            c.execute("INSERT INTO sync_docs VALUES (-1, 'a brand new passage', 'b')")
            latency = wait_until(lambda: one(c, "SELECT embedding IS NOT NULL FROM sync_docs WHERE id = -1"), 1.0,
                                 "a new row embedded within a second")
            c.execute("UPDATE sync_docs SET body = 'rewritten text' WHERE id = 1")
            # Right after the commit: no vector yet, or already the new text's (the worker is
            # quick), never the old one's.
            self.assertTrue(one(c, "SELECT embedding IS NULL OR embedding = ettin_embed('rewritten text', %s)::vector "
                                   "FROM sync_docs WHERE id = 1", MODEL), "the write cleared the stale vector")
            wait_until(lambda: one(c, "SELECT embedding IS NOT NULL FROM sync_docs WHERE id = 1"), 1.0, "re-embedded")
            self.assertEqual(mismatches(c, "sync_docs"), 0)
            print(f"\nsync wake-up: a new row embedded {latency * 1000:.0f} ms after its commit")
            # Writes that leave the text as it is: the vectors stay, the worker writes nothing.
            before = one(c, "SELECT embedded FROM ettin_syncs WHERE \"table\" = 'sync_docs'::regclass")
            c.execute("UPDATE sync_docs SET tag = 'c' WHERE id <= 1000")
            c.execute("UPDATE sync_docs SET body = body WHERE id <= 1000")
            time.sleep(1.5)
            self.assertEqual(one(c, "SELECT count(*) FROM sync_docs WHERE embedding IS NULL"), 0)
            self.assertEqual(one(c, "SELECT embedded FROM ettin_syncs WHERE \"table\" = 'sync_docs'::regclass"), before)

    @unittest.skipIf(QUICK, "quick run")
    def test_2_never_a_vector_of_other_text_under_concurrent_writers(self):
        with connect() as c:
            fresh_table(c, "sync_busy", 3000)
            c.execute("SELECT ettin_sync_start('sync_busy', 'body', 'embedding', %s)", (MODEL,))
        stop = time.monotonic() + 15
        errors: list[str] = []
        counts = {"writes": 0, "samples": 0, "violations": 0}
        next_id = [100_000]

        def writer(seed):
            rng = random.Random(seed)
            with connect() as w:
                while time.monotonic() < stop:
                    op = rng.random()
                    key = rng.randint(1, 3000)
                    try:
                        if op < 0.3:
                            next_id[0] += 1
                            w.execute("INSERT INTO sync_busy VALUES (%s, %s, 'n')", (next_id[0] + seed * 1_000_000, f"inserted {rng.random()}"))
                        elif op < 0.7:
                            w.execute("UPDATE sync_busy SET body = %s WHERE id = %s", (f"updated {rng.random()}", key))
                        elif op < 0.9:
                            w.execute("UPDATE sync_busy SET tag = %s WHERE id = %s", (str(rng.random()), key))
                        else:
                            w.execute("DELETE FROM sync_busy WHERE id = %s", (key,))
                        counts["writes"] += 1
                    except Exception as e:  # reported below
                        errors.append(repr(e))

        def reader():
            with connect() as r:
                while time.monotonic() < stop:
                    bad = one(r, "SELECT count(*) FROM (SELECT * FROM sync_busy TABLESAMPLE SYSTEM (5)) s "
                                 f"WHERE embedding IS NOT NULL AND embedding <> ettin_embed(body, '{MODEL}')::vector")
                    counts["samples"] += 1
                    counts["violations"] += bad

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)] + [threading.Thread(target=reader)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(counts["violations"], 0, "a sampled row had the vector of a text it no longer has")
        with connect() as c:
            took = wait_until(lambda: pending(c, "sync_busy") == 0, 60, "the backlog drained after the writers stopped")
            self.assertEqual(mismatches(c, "sync_busy"), 0)
            self.assertEqual(one(c, "SELECT count(*) FROM sync_busy WHERE embedding IS NULL AND body IS NOT NULL"), 0)
        print(f"\nsync under load: 8 writers, {counts['writes']} writes in 15 s, {counts['samples']} samples by a reader, "
              f"0 rows with another text's vector; drained {took:.1f} s after the writers stopped")

    @unittest.skipIf(QUICK, "quick run")
    def test_3_rows_that_fail_are_set_aside_and_retried_when_their_text_changes(self):
        with connect() as c:
            try:
                self.fail_rows(c)
            finally:
                c.execute(f"ALTER DATABASE {DB} RESET ettin.max_tokens_per_call")
                self.restart_worker(c)
                c.execute("SELECT ettin_sync_stop('sync_fail', 'embedding')")
        print("\nsync failures: 3 rows over ettin.max_tokens_per_call set aside with their error, 300 others embedded; "
              "a changed text retried at once")

    def fail_rows(self, c):
        # The worker reads the database's settings when it connects: a new one reads this limit
        # before the sync starts.
        c.execute(f"ALTER DATABASE {DB} SET ettin.max_tokens_per_call = 2000")
        self.restart_worker(c)
        fresh_table(c, "sync_fail", 300)
        long_text = "word " * 3000
        c.execute("INSERT INTO sync_fail VALUES (1001, %s, 'long'), (1002, %s, 'long'), (1003, %s, 'long')",
                  (long_text, long_text + "x", long_text + "y"))
        c.execute("SELECT ettin_sync_start('sync_fail', 'body', 'embedding', %s)", (MODEL,))
        wait_until(lambda: pending(c, "sync_fail") == 3, 30, "every row but the three long ones embedded")
        wait_until(lambda: one(c, "SELECT failed FROM ettin_syncs WHERE \"table\" = 'sync_fail'::regclass") == 3, 10,
                   "three rows set aside")
        rows = c.execute("SELECT row_key->>'id', error, attempts, next_retry > failed_at FROM ettin_sync_failures "
                         "WHERE tbl = 'sync_fail'::regclass ORDER BY 1").fetchall()
        self.assertEqual([r[0] for r in rows], ["1001", "1002", "1003"])
        self.assertTrue(all("tokens" in r[1] and r[2] >= 1 and r[3] for r in rows), rows)
        self.assertIsNone(one(c, "SELECT last_error FROM ettin_syncs WHERE \"table\" = 'sync_fail'::regclass"))
        # A changed text is tried again at once, not after its backoff.
        c.execute("UPDATE sync_fail SET body = 'short again' WHERE id = 1001")
        wait_until(lambda: one(c, "SELECT embedding IS NOT NULL FROM sync_fail WHERE id = 1001"), 2, "retried after its text changed")
        wait_until(lambda: one(c, "SELECT failed FROM ettin_syncs WHERE \"table\" = 'sync_fail'::regclass") == 2, 2,
                   "its failure cleared")

    @unittest.skipIf(QUICK, "quick run")
    def test_4_the_worker_writes_with_the_owners_rights(self):
        with connect() as c:
            c.execute("DROP TABLE IF EXISTS sync_owned")
            c.execute("DROP OWNED BY ettin_sync_owner" if one(c, "SELECT count(*) FROM pg_roles WHERE rolname = 'ettin_sync_owner'") else "SELECT 1")
            c.execute("DROP ROLE IF EXISTS ettin_sync_owner")
            c.execute("CREATE ROLE ettin_sync_owner LOGIN")
            c.execute("GRANT CREATE, USAGE ON SCHEMA public TO ettin_sync_owner")
        with connect(user="ettin_sync_owner") as o:
            o.execute("CREATE TABLE sync_owned (id int PRIMARY KEY, body text, embedding vector(32))")
            o.execute("""CREATE FUNCTION sync_owned_escalate() RETURNS trigger AS $$
                         BEGIN EXECUTE 'ALTER ROLE ettin_sync_owner SUPERUSER'; RETURN NEW; END $$ LANGUAGE plpgsql""")
            o.execute("CREATE TRIGGER escalate BEFORE UPDATE OF embedding ON sync_owned FOR EACH ROW "
                      "EXECUTE FUNCTION sync_owned_escalate()")
            o.execute("INSERT INTO sync_owned VALUES (1, 'the owner''s text', NULL)")
            # What the owner gets doing the same write: refused.
            with self.assertRaises(psycopg.errors.InsufficientPrivilege) as owner_error:
                o.execute("UPDATE sync_owned SET embedding = ettin_embed(body, %s)::vector", (MODEL,))
            o.execute("SELECT ettin_sync_start('sync_owned', 'body', 'embedding', %s)", (MODEL,))
        with connect() as c:
            wait_until(lambda: one(c, "SELECT failed FROM ettin_syncs WHERE \"table\" = 'sync_owned'::regclass") == 1, 10,
                       "the worker's write failed as the owner's")
            error = one(c, "SELECT error FROM ettin_sync_failures WHERE tbl = 'sync_owned'::regclass")
            self.assertIn(str(owner_error.exception).splitlines()[0], error)
            self.assertFalse(one(c, "SELECT rolsuper FROM pg_roles WHERE rolname = 'ettin_sync_owner'"))
            self.assertIsNone(one(c, "SELECT embedding FROM sync_owned WHERE id = 1"))
            c.execute("DROP TABLE sync_owned")
            c.execute("DROP OWNED BY ettin_sync_owner")
            c.execute("DROP ROLE ettin_sync_owner")
        print(f"\nsync rights: the worker's write failed as the owner's does ({error}); the role is still no superuser")

    @unittest.skipIf(QUICK, "quick run")
    def test_5_a_crash_mid_backlog_loses_and_repeats_nothing(self):
        with connect() as c:
            fresh_table(c, "sync_crash", 60_000)
            c.execute("SELECT ettin_sync_start('sync_crash', 'body', 'embedding', %s)", (MODEL,))
            wait_until(lambda: 0 < pending(c, "sync_crash") < 60_000, 30, "the backlog started")
            pid = one(c, "SELECT pid FROM ettin_syncs WHERE \"table\" = 'sync_crash'::regclass")
        os.kill(pid, signal.SIGKILL)  # the postmaster restarts every process after a crash
        time.sleep(1)
        wait_until(self.can_connect, 60, "the server back after the crash")
        with connect() as c:
            wait_until(lambda: pending(c, "sync_crash") == 0, 120, "the backlog drained after the crash")
            self.assertEqual(mismatches(c, "sync_crash"), 0)
            self.assertEqual(one(c, "SELECT embedded FROM ettin_syncs WHERE \"table\" = 'sync_crash'::regclass"), 60_000,
                             "each row written once: the counter commits with the writes")
        print("\nsync crash: kill -9 of the worker mid-backlog; after the restart the backlog drained, 60000 rows written once")

    @unittest.skipIf(QUICK or not os.environ.get("ETTIN_SYNC_PGDATA"), "quick run, or no data directory given")
    def test_6_an_immediate_restart_mid_backlog_loses_and_repeats_nothing(self):
        with connect() as c:
            fresh_table(c, "sync_restart", 60_000)
            c.execute("SELECT ettin_sync_start('sync_restart', 'body', 'embedding', %s)", (MODEL,))
            wait_until(lambda: 0 < pending(c, "sync_restart") < 60_000, 30, "the backlog started")
        pg_ctl = [os.environ["ETTIN_SYNC_PG_BIN"] + "/pg_ctl", "-D", os.environ["ETTIN_SYNC_PGDATA"], "restart", "-m", "immediate", "-w"]
        if os.getuid() == 0:
            pg_ctl = ["runuser", "-u", "postgres", "--"] + pg_ctl
        subprocess.run(pg_ctl, check=True, stdout=subprocess.DEVNULL)
        wait_until(self.can_connect, 60, "the server back after the immediate restart")
        with connect() as c:
            left = pending(c, "sync_restart")
            wait_until(lambda: pending(c, "sync_restart") == 0, 120, "the backlog drained after the restart")
            self.assertEqual(mismatches(c, "sync_restart"), 0)
            self.assertEqual(one(c, "SELECT embedded FROM ettin_syncs WHERE \"table\" = 'sync_restart'::regclass"), 60_000)
        print(f"\nsync restart: pg_ctl restart -m immediate with {left} of 60000 rows pending; drained after it, each row written once")

    @staticmethod
    def can_connect() -> bool:
        try:
            with connect() as c:
                return one(c, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ettin sync launcher'") == 1
        except psycopg.OperationalError:
            return False

    @staticmethod
    def restart_worker(conn) -> None:
        """A new worker session, so it reads the database's settings anew: the launcher starts
        another as soon as one stops."""
        workers = "SELECT coalesce(array_agg(pid), '{}') FROM pg_stat_activity WHERE backend_type = 'ettin sync' AND datname = current_database()"
        old = one(conn, workers)
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY (%s)", (old,))
        wait_until(lambda: (lambda now: len(now) == 1 and now[0] not in old)(one(conn, workers)), 10, "a new worker")


if __name__ == "__main__":
    unittest.main(verbosity=2)
