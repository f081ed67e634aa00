"""Cancellation: statement_timeout and pg_cancel_backend stop a long rerank within about one batch.
Prints the measured delay past the deadline."""

from __future__ import annotations

import os
import threading
import time
import unittest

import psycopg

MODEL = "ettin-test/modular"
# Thousands of long documents: many seconds of work for the fixture model at its own max length (1024).
LONG_RERANK = (
    "SELECT count(*) FROM ettin_rerank('free software', "
    "ARRAY(SELECT repeat('document ' || g || ' about the license and its warranty ', 40) "
    "FROM generate_series(1, 4000) g), NULL, %s)"
)


def connect():
    return psycopg.connect(
        f"host={os.environ['PGHOST']} port={os.environ['PGPORT']} user=postgres dbname={os.environ['ETTIN_TEST_DB']}",
        autocommit=True,
    )


def one_batch_seconds(conn) -> float:
    """Time of 32 long pairs (one batch each at the CPU default of 1024 padded tokens), after the model is loaded."""
    docs = ["document about the license and its warranty " * 60] * 32
    conn.execute("SELECT rerank_score('free software', %s::text[], %s)", (docs, MODEL))
    start = time.monotonic()
    conn.execute("SELECT rerank_score('free software', %s::text[], %s)", (docs, MODEL))
    return time.monotonic() - start


class Cancellation(unittest.TestCase):
    def test_statement_timeout_stops_within_a_batch(self):
        with connect() as conn:
            batch = one_batch_seconds(conn)
            conn.execute("SET statement_timeout = '500ms'")
            start = time.monotonic()
            with self.assertRaises(psycopg.errors.QueryCanceled):
                conn.execute(LONG_RERANK, (MODEL,))
            late = time.monotonic() - start - 0.5
            print(f"\nstatement_timeout 500 ms: stopped {late * 1000:.0f} ms after the deadline (one batch: {batch * 1000:.0f} ms)")
            self.assertLess(late, 2 * batch + 0.25)
            conn.execute("RESET statement_timeout")
            self.assertEqual(conn.execute("SELECT 1").fetchone()[0], 1)

    def test_pg_cancel_backend_stops_within_a_batch(self):
        with connect() as victim, connect() as killer:
            batch = one_batch_seconds(victim)
            pid = victim.info.backend_pid
            cancelled_at = []

            def cancel():
                time.sleep(0.5)
                cancelled_at.append(time.monotonic())
                killer.execute("SELECT pg_cancel_backend(%s)", (pid,))

            t = threading.Thread(target=cancel)
            t.start()
            with self.assertRaises(psycopg.errors.QueryCanceled):
                victim.execute(LONG_RERANK, (MODEL,))
            late = time.monotonic() - cancelled_at[0]
            t.join()
            print(f"\npg_cancel_backend: stopped {late * 1000:.0f} ms after the cancel (one batch: {batch * 1000:.0f} ms)")
            self.assertLess(late, 2 * batch + 0.25)
            self.assertEqual(victim.execute("SELECT 1").fetchone()[0], 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
