"""Load through pgpool-II for tests/scaleout.sh: 8 clients run the retrieve-then-rerank statement
for a bounded time while a writer inserts passages; standby 2 is stopped in the middle.

Checks: every statement's result equals the primary's for the same query; each standby serves a
real share of the rerank statements (counted per node from the statement itself:
inet_server_port() is the port of the backend pgpool chose); a statement that fails when the
standby stops succeeds on retry, and none fails for good; every acknowledged write is on the
primary and on the standbys that are up.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections import Counter

import psycopg

ROOT = os.environ["ETTIN_SCALEOUT_ROOT"]
P0, S1, S2, POOL = (int(p) for p in os.environ["ETTIN_SCALEOUT_PORTS"].split(","))
MODEL = os.environ["ETTIN_SCALEOUT_MODEL"]
PG_BIN = os.environ["ETTIN_SCALEOUT_PG_BIN"]
MODE = os.environ["ETTIN_SCALEOUT_MODE"]
CLIENTS, DURATION, RETRIES, STUCK_S = 8, 10.0, 5, 5.0

STATEMENT = """
WITH c AS (SELECT id, body FROM passages ORDER BY embedding <=> %(emb)s::vector LIMIT 20),
     b AS (SELECT array_agg(id) AS ids, array_agg(body) AS bodies FROM c)
SELECT b.ids[r.idx] AS id, r.score, inet_server_port() AS node
FROM b, ettin_rerank(%(q)s, b.bodies, 5, %(model)s) AS r"""


def node(port: int) -> psycopg.Connection:
    return psycopg.connect(host=ROOT, port=port, user="postgres", dbname="ettin_scale", autocommit=True)


def pool() -> psycopg.Connection:
    # psycopg's defaults: the extended query protocol with bound parameters, statements prepared
    # after 5 runs, as application drivers do.
    return psycopg.connect(host="127.0.0.1", port=POOL, user="postgres", dbname="ettin_scale", autocommit=True,
                           connect_timeout=10)


def say(*args) -> None:
    print(f"scaleout[{MODE}]:", *args, flush=True)


def main() -> None:
    with node(P0) as primary:
        queries = primary.execute("SELECT query, embedding::text FROM demo_queries ORDER BY id").fetchall()
        reference = {}
        for q, emb in queries:
            rows = primary.execute(STATEMENT, {"emb": emb, "q": q, "model": MODEL}).fetchall()
            reference[q] = [(i, s) for i, s, _ in rows]
        next_id = primary.execute("SELECT max(id) + 1 FROM passages").fetchone()[0]
    if MODE == "shared":
        for port in (S1, S2):
            with node(port) as standby:
                inference = standby.execute("SELECT ettin_info()->>'inference'").fetchone()[0]
                assert inference == "shared", f"standby on {port}: inference {inference}"
        say("both standbys run ettin.inference = shared")

    served: Counter = Counter()
    served_before_stop: Counter = Counter()
    served_after_stop: Counter = Counter()
    retried, failed, mismatched = [], [], []
    acked: list[int] = []
    stopped_at: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + DURATION

    inflight: dict[int, tuple] = {}
    hung: list[str] = []

    def watchdog() -> None:
        # A statement that waits longer than STUCK_S for pgpool gets its connection cut, so the
        # client sees an error and retries, as an application with a client-side timeout would.
        while time.monotonic() < deadline + 2 * STUCK_S or inflight:
            for key, (conn, since, what) in list(inflight.items()):
                if time.monotonic() - since > STUCK_S and inflight.get(key, (None,))[0] is conn:
                    with lock:
                        hung.append(what)
                    try:
                        socket.socket(fileno=os.dup(conn.pgconn.socket)).shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    inflight.pop(key, None)
            time.sleep(0.2)

    def run(key: int, conn, sql: str, params, what: str):
        inflight[key] = (conn, time.monotonic(), what)
        try:
            return conn.execute(sql, params)
        finally:
            inflight.pop(key, None)

    def client(seed: int) -> None:
        rng = random.Random(seed)
        conn = None
        while time.monotonic() < deadline:
            q, emb = rng.choice(queries)
            for attempt in range(RETRIES):
                try:
                    conn = conn or pool()
                    rows = run(seed, conn, STATEMENT, {"emb": emb, "q": q, "model": MODEL}, "rerank").fetchall()
                    break
                except psycopg.Error as e:
                    with lock:
                        retried.append(f"{type(e).__name__}: {str(e).strip().splitlines()[0][:100]}")
                    conn = None  # pgpool restarts its children on failover: reconnect
                    time.sleep(0.2)
            else:
                with lock:
                    failed.append(q)
                continue
            got = [(i, s) for i, s, _ in rows]
            ok = [i for i, _ in got] == [i for i, _ in reference[q]] and all(
                abs(a - b) <= 1e-5 for (_, a), (_, b) in zip(got, reference[q]))
            with lock:
                served[rows[0][2]] += 1
                if not stopped_at:
                    served_before_stop[rows[0][2]] += 1
                elif time.monotonic() > stopped_at[0] + 3:
                    served_after_stop[rows[0][2]] += 1
                if not ok:
                    mismatched.append((q, got, reference[q]))
        if conn:
            conn.close()

    def writer() -> None:
        nonlocal next_id
        conn = None
        while time.monotonic() < deadline:
            for attempt in range(RETRIES):
                try:
                    conn = conn or pool()
                    # Idempotent, so a retry after an error whose commit went through is harmless.
                    run(-1, conn,
                        "INSERT INTO passages (id, source, body, embedding) SELECT %s, 'scaleout', 'written through pgpool', "
                        "embedding FROM passages WHERE id = 1 ON CONFLICT (id) DO NOTHING", (next_id,), "write")
                    break
                except psycopg.Error:
                    conn = None
                    time.sleep(0.2)
            else:
                failed.append(f"write {next_id}")
                continue
            acked.append(next_id)
            next_id += 1
            time.sleep(0.1)

    def stop_standby2() -> None:
        time.sleep(DURATION / 2)
        stopped_at.append(time.monotonic())
        cmd = [f"{PG_BIN}/pg_ctl", "-D", f"{ROOT}/s2", "stop", "-m", "immediate", "-w"]
        if os.getuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    threads += [threading.Thread(target=writer), threading.Thread(target=stop_standby2), threading.Thread(target=watchdog)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total, before = sum(served.values()), sum(served_before_stop.values())
    shares = {port: served_before_stop[port] / before for port in (P0, S1, S2)}
    say(f"{total} statements from {CLIENTS} clients in {DURATION:.0f} s; served by primary {served[P0]}, "
        f"standby 1 {served[S1]}, standby 2 {served[S2]}; while both standbys were up: standby 1 "
        f"{served_before_stop[S1]} ({shares[S1]:.0%}), standby 2 {served_before_stop[S2]} ({shares[S2]:.0%})")
    say(f"standby 2 stopped at {DURATION / 2:.0f} s: {len(retried)} statement attempts failed and were retried "
        f"({', '.join(sorted(Counter(r.split(':')[0] for r in retried)))}), {len(failed)} failed for good; "
        f"after it stopped: standby 1 served {served_after_stop[S1]}, standby 2 {served_after_stop[S2]}")
    say(f"statements left waiting by pgpool for over {STUCK_S:.0f} s (cut and retried): {len(hung)} ({', '.join(hung) or 'none'})")
    assert not failed, f"statements that failed for good: {failed[:5]}"
    assert not mismatched, f"results that differ from the primary's: {mismatched[:2]}"
    assert served[P0] == 0, "the primary (weight 0) served reads"
    assert shares[S1] > 0.15 and shares[S2] > 0.15, f"a standby served no real share: {shares}"
    assert served_after_stop[S2] == 0 and served_after_stop[S1] > 0, "pgpool kept sending to the stopped standby"

    # Writes: all acknowledged inserts are on the primary, and replayed on standby 1.
    with node(P0) as primary:
        on_primary = primary.execute("SELECT count(*) FROM passages WHERE id = ANY(%s)", (acked,)).fetchone()[0]
    assert on_primary == len(acked), f"{len(acked)} writes acknowledged, {on_primary} on the primary"
    for _ in range(50):
        with node(S1) as standby:
            on_standby = standby.execute("SELECT count(*) FROM passages WHERE id = ANY(%s)", (acked,)).fetchone()[0]
        if on_standby == len(acked):
            break
        time.sleep(0.2)
    assert on_standby == len(acked), f"standby 1 has {on_standby} of {len(acked)} writes"
    say(f"{len(acked)} writes through pgpool: all on the primary and replayed on standby 1")
    with pool() as conn:
        # node_id, hostname, port, status, pg_status, lb_weight, role, pg_role, select_cnt, …
        nodes = conn.execute("SHOW pool_nodes").fetchall()
    status = {r[2]: r[3] for r in nodes}
    say(f"pgpool node status: {status}; pgpool's own SELECT counts per node: {[(r[2], r[8]) for r in nodes]}")
    assert status.get(str(S2)) == "down" and status.get(str(S1)) == "up", status


if __name__ == "__main__":
    import faulthandler

    faulthandler.dump_traceback_later(90, exit=True)  # a hang shows every thread's stack
    try:
        main()
    except AssertionError as e:
        print(f"scaleout[{MODE}]: FAILED: {e}", flush=True)
        sys.exit(1)
