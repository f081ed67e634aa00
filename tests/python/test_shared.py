"""ettin.inference = shared: one worker process serves every connection.

Run by tests/shared.sh against the test cluster restarted with shared_preload_libraries = 'ettin'
and ettin.inference = 'shared'. Connection settings come from PGHOST/PGPORT/PGUSER.
"""

import os
import signal
import threading
import time
import unittest

import psycopg

DB = os.environ.get("ETTIN_TEST_DB", "ettin_test")
MODEL = "ettin-test/modular"
DOCS = [f"document {i} about free software licenses and the GNU project " * (1 + i % 4) for i in range(20)]


def connect():
    return psycopg.connect(dbname=DB, autocommit=True)


def worker_status(conn):
    return conn.execute("SELECT ettin_info()->'worker'").fetchone()[0]


def status_once(conn, done, seconds=20):
    """The worker's status once done(status) holds, or the last one after `seconds`."""
    deadline = time.time() + seconds
    while True:
        status = worker_status(conn)
        if done(status) or time.time() > deadline:
            return status
        time.sleep(0.2)


def rerank(conn, docs=DOCS, query="free software"):
    return conn.execute("SELECT rerank_score(%s, %s::text[], %s)", (query, docs, MODEL)).fetchone()[0]


def wait_for_worker(timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with connect() as c:
                status = worker_status(c)
                if "pid" in status:
                    return status
        except psycopg.Error:
            pass
        time.sleep(0.2)
    raise AssertionError("the inference worker did not come up")


class SharedInference(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.status = wait_for_worker()

    def test_backends_do_not_load_onnx_runtime(self):
        with connect() as conn:
            self.assertIsNotNone(rerank(conn))
            pid = conn.info.backend_pid
            with open(f"/proc/{pid}/maps") as f:
                maps = f.read()
            self.assertNotIn("libonnxruntime", maps, "a backend mapped ONNX Runtime in shared mode")
            info = conn.execute("SELECT ettin_info()").fetchone()[0]
            self.assertEqual(info["inference"], "shared")
            self.assertIn(MODEL, [m["name"] for m in info["worker"]["models"]])
            rows = conn.execute("SELECT device, pairs FROM ettin_models() WHERE name = %s", (MODEL,)).fetchall()
            self.assertTrue(rows and rows[0][0].endswith("(shared)") and rows[0][1] >= len(DOCS), rows)

    def test_requests_from_different_connections_share_batches(self):
        clients, rounds = 8, 6

        def counters(c):
            return next(m for m in worker_status(c)["models"] if m["name"] == MODEL and m["onnx_file"] == "onnx/model.onnx")

        # The same calls one after another (nothing to batch with): the batches they need alone.
        with connect() as c:
            rerank(c)
            before = counters(c)
            for _ in range(clients * rounds):
                rerank(c)
            alone = counters(c)["batches"] - before["batches"]
            before = counters(c)
        barrier = threading.Barrier(clients)
        errors = []

        def client():
            try:
                with connect() as c:
                    barrier.wait()
                    for _ in range(rounds):
                        rerank(c)
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=client) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        with connect() as c:
            after = counters(c)
        calls = after["calls"] - before["calls"]
        batches = after["batches"] - before["batches"]
        self.assertEqual(calls, clients * rounds)
        # Together, pairs of different connections share batches: fewer than the calls need alone.
        self.assertLess(batches, alone, f"{batches} batches concurrently vs {alone} one by one: nothing was batched across connections")
        print(f"cross-connection batching: {calls} calls of {len(DOCS)} documents took {alone} batches one by one, "
              f"{batches} from {clients} connections at once")

    def test_cancel_drops_the_request(self):
        with connect() as conn:
            conn.execute("SET statement_timeout = '300ms'")
            big = [("free software " * 200)] * 3000
            t = time.time()
            with self.assertRaises(psycopg.errors.QueryCanceled):
                rerank(conn, big)
            waited = time.time() - t
            conn.execute("RESET statement_timeout")
            self.assertLess(waited, 2.0)
            status = status_once(
                conn, lambda s: all(m["queued_pairs"] == 0 for m in s["models"]) and s["active_requests"] == 0)
            self.assertTrue(all(m["queued_pairs"] == 0 for m in status["models"]), status)
            self.assertGreaterEqual(status["cancelled_requests"], 1)
            print(f"shared cancel: statement_timeout 300 ms returned after {waited * 1000:.0f} ms; worker dropped the queued pairs")

    def test_cancel_stops_an_embedding_request(self):
        with connect() as conn:
            conn.execute("SET statement_timeout = '300ms'")
            texts = [f"passage number {i} about free software" for i in range(100000)]
            before = worker_status(conn)["cancelled_requests"]
            t = time.time()
            with self.assertRaises(psycopg.errors.QueryCanceled):
                conn.execute("SELECT count(*) FROM ettin_embed(%s::text[], 'ettin-test/embed-bert')", (texts,))
            waited = time.time() - t
            conn.execute("RESET statement_timeout")
            self.assertLess(waited, 2.0)
            status = status_once(conn, lambda s: s["active_requests"] == 0)
            self.assertEqual(status["active_requests"], 0, status)
            self.assertGreater(status["cancelled_requests"], before)
            print(f"shared embed cancel: statement_timeout 300 ms returned after {waited * 1000:.0f} ms; "
                  f"the worker stopped the request within {time.time() - t:.1f} s")

    def test_zz_killing_the_worker_gives_errors_then_recovers(self):
        with connect() as c:
            started = c.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
            pid = worker_status(c)["pid"]
        stop = threading.Event()
        outcomes = []

        def client():
            with connect() as c:
                while not stop.is_set():
                    try:
                        rerank(c)
                        outcomes.append((time.time(), "ok"))
                    except psycopg.Error as e:
                        outcomes.append((time.time(), e.sqlstate))
        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        killed_at = time.time()
        os.kill(pid, signal.SIGKILL)
        status = wait_for_worker()
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join()
        self.assertNotEqual(status["pid"], pid)
        errors = {s for _, s in outcomes if s != "ok"}
        self.assertTrue(errors <= {"57P03"}, f"unexpected errors: {errors}")
        self.assertTrue(any(s == "ok" and t > killed_at for t, s in outcomes), "no success after the restart")
        with connect() as c:
            self.assertEqual(c.execute("SELECT pg_postmaster_start_time()").fetchone()[0], started)
            self.assertIsNotNone(rerank(c))
        first_error = min((t for t, s in outcomes if s != "ok"), default=killed_at)
        recovered = min(t for t, s in outcomes if s == "ok" and t > first_error) - killed_at
        print(f"worker killed under load: {sum(1 for _, s in outcomes if s != 'ok')} requests got 57P03, "
              f"service back after {recovered:.1f} s, postmaster not restarted")


if __name__ == "__main__":
    unittest.main(verbosity=2)
