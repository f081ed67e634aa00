#!/usr/bin/env python3
"""Syncs under load, side by side in one run (docs/sync.md, with the CPU):

  bench/sync.py [--rows 1000000] [--seconds 20] [--threads 2]

* Backfill of ROWS short rows (StaticEmbedding fixture, 32 dimensions): `ettin_embed_table`
  (rows/s over the first and the last 10% of its batches) and the sync worker
  (`ettin_sync_start` on the filled table), against one set-based
  `UPDATE ... SET v = ettin_embed(body)`.
* Sustained ingest: writers insert rows as fast as they can for SECONDS into a plain table, a
  table with a `sync`-mode sync (the vector computed in the insert) and one with an `async` sync
  (the worker behind): inserts/s, and for async the worker's pending rows and lag sampled every
  second — bounded when it keeps up.

Needs `make install`, psycopg (the test venv has it) and the fixtures; starts its own cluster
with ettin preloaded (scripts/cluster.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
ROOT = Path(os.environ.get("ETTIN_SYNC_BENCH_ROOT", "/var/tmp/ettin-sync-bench"))
MODEL = "ettin-test/static"


def cluster(*args: str) -> None:
    env = dict(os.environ, ETTIN_CLUSTER_ROOT=str(ROOT))
    subprocess.run(["bash", str(REPO / "scripts" / "cluster.sh"), *args], check=True, env=env, stdout=subprocess.DEVNULL)


def connect(db: str = "ettin_sync_bench") -> psycopg.Connection:
    port = (ROOT / "port").read_text().strip()
    return psycopg.connect(host=str(ROOT), port=port, user="postgres", dbname=db, autocommit=True)


def cpu() -> str:
    text = open("/proc/cpuinfo").read()
    model = next((l.split(":", 1)[1].strip() for l in text.splitlines() if l.startswith("model name")), "?")
    flags = next((l.split(":", 1)[1].split() for l in text.splitlines() if l.startswith("flags")), [])
    wanted = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8") if f in flags]
    return f"{model} ({', '.join(wanted)}), {os.cpu_count()} cores"


def fill(conn, table: str, rows: int) -> None:
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, body text, embedding vector(32))")
    conn.execute(f"INSERT INTO {table} SELECT g, 'passage ' || g || ' about free software, its license and its warranty' "
                 f"FROM generate_series(1, {rows}) g")


def backfills(rows: int) -> dict:
    out = {}
    with connect() as c:
        fill(c, "bf_update", rows)
        t = time.perf_counter()
        c.execute(f"UPDATE bf_update SET embedding = ettin_embed(body, '{MODEL}')::vector")
        out["set-based UPDATE"] = {"seconds": time.perf_counter() - t}

        fill(c, "bf_table", rows)
        notices: list[tuple[float, int]] = []
        c.add_notice_handler(lambda d: notices.append((time.perf_counter(), int(d.message_primary.split()[1])))
                             if " / " in (d.message_primary or "") else None)
        c.execute("SET client_min_messages = notice")
        t = time.perf_counter()
        c.execute(f"CALL ettin_embed_table('bf_table', 'body', 'embedding', '{MODEL}', NULL, 10000)")
        total = time.perf_counter() - t
        first = next(p for p in notices if p[1] >= rows // 10)
        last_start = next(p for p in notices if p[1] >= rows - rows // 10)
        out["ettin_embed_table"] = {
            "seconds": total,
            "first_10pct_rows_per_s": first[1] / (first[0] - t),
            "last_10pct_rows_per_s": (notices[-1][1] - last_start[1]) / max(notices[-1][0] - last_start[0], 1e-9),
        }

        fill(c, "bf_sync", rows)
        t = time.perf_counter()
        c.execute(f"SELECT ettin_sync_start('bf_sync', 'body', 'embedding', '{MODEL}')")
        seen = []
        while True:
            n = c.execute("SELECT pending FROM ettin_syncs WHERE \"table\" = 'bf_sync'::regclass").fetchone()[0]
            seen.append((time.perf_counter(), rows - n))
            if n == 0:
                break
            time.sleep(0.2)
        total = time.perf_counter() - t
        a = next(p for p in seen if p[1] >= rows // 10)
        b = next(p for p in seen if p[1] >= rows - rows // 10)
        out["sync worker"] = {
            "seconds": total,
            "first_10pct_rows_per_s": a[1] / (a[0] - t),
            "last_10pct_rows_per_s": (rows - b[1]) / max(seen[-1][0] - b[0], 1e-9),
        }
    return out


def ingest(mode: str | None, seconds: float, writers: int) -> dict:
    table = f"ingest_{mode or 'plain'}"
    with connect() as c:
        c.execute(f"DROP TABLE IF EXISTS {table}")
        c.execute(f"CREATE TABLE {table} (id bigserial PRIMARY KEY, body text, embedding vector(32))")
        if mode:
            c.execute(f"SELECT ettin_sync_start('{table}', 'body', 'embedding', '{MODEL}', NULL, '{mode}')")
    stop = time.monotonic() + seconds
    counts = [0] * writers
    samples: list[tuple[int, float]] = []

    def writer(i: int) -> None:
        with connect() as w:
            while time.monotonic() < stop:
                w.execute(f"INSERT INTO {table} (body) SELECT 'ingested passage ' || g || ' of writer {i}, about the license' "
                          "FROM generate_series(1, 10) g")
                counts[i] += 10

    def sampler() -> None:
        with connect() as s:
            while time.monotonic() < stop:
                row = s.execute(f"SELECT pending, extract(epoch FROM lag)::float8 FROM ettin_syncs WHERE \"table\" = '{table}'::regclass").fetchone()
                samples.append((row[0], row[1] or 0.0))
                time.sleep(1)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    if mode == "async":
        threads.append(threading.Thread(target=sampler))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = {"inserts_per_s": sum(counts) / seconds}
    if mode == "async":
        result["max_pending"] = max(p for p, _ in samples)
        result["max_lag_s"] = max(l for _, l in samples)
        t = time.perf_counter()
        with connect() as c:
            while c.execute(f"SELECT pending FROM ettin_syncs WHERE \"table\" = '{table}'::regclass").fetchone()[0] > 0:
                time.sleep(0.05)
        result["drained_after_s"] = time.perf_counter() - t
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--writers", type=int, default=4)
    args = ap.parse_args()
    models = ROOT / "models"
    subprocess.run(["mkdir", "-p", str(models / "ettin-test")], check=True)
    subprocess.run(["cp", "-r", str(REPO / "tests/fixtures/models/static"), str(models / "ettin-test/")], check=True)
    subprocess.run(["chmod", "a+rx", str(ROOT)], check=True)
    subprocess.run(["chmod", "-R", "a+rX", str(models)], check=True)
    cluster("start", f"ettin.model_dir = '{models}'", "shared_preload_libraries = 'ettin'")
    try:
        with connect("postgres") as c:
            c.execute("DROP DATABASE IF EXISTS ettin_sync_bench WITH (FORCE)")
            c.execute("CREATE DATABASE ettin_sync_bench")
        with connect() as c:
            c.execute("CREATE EXTENSION vector")
            c.execute("CREATE EXTENSION ettin")
        results = {"cpu": cpu(), "rows": args.rows, "backfill": backfills(args.rows),
                   "ingest": {m or "plain": ingest(m, args.seconds, args.writers) for m in (None, "sync", "async")}}
    finally:
        cluster("stop")
    (REPO / "docs" / "sync.json").write_text(json.dumps(results, indent=1))
    b, i = results["backfill"], results["ingest"]
    lines = [
        "# Syncs: backfill and sustained ingest (bench/sync.py)",
        "",
        f"StaticEmbedding fixture (32 dimensions), short rows; CPU: {results['cpu']}.",
        "",
        f"Backfill of {args.rows:,} rows:",
        "",
        "| how | seconds | rows/s, first 10% | rows/s, last 10% |",
        "|---|---|---|---|",
        f"| set-based `UPDATE ... SET v = ettin_embed(body)` (one transaction) | {b['set-based UPDATE']['seconds']:.1f} | | |",
    ]
    for k in ("ettin_embed_table", "sync worker"):
        lines.append(f"| {k} | {b[k]['seconds']:.1f} | {b[k]['first_10pct_rows_per_s']:,.0f} | {b[k]['last_10pct_rows_per_s']:,.0f} |")
    lines += [
        "",
        f"Sustained ingest, {args.writers} writers inserting 10 rows a statement for {args.seconds:.0f} s:",
        "",
        "| table | inserts/s | worker: most rows pending | most lag (s) | drained after writers stopped (s) |",
        "|---|---|---|---|---|",
    ]
    for k, r in i.items():
        extra = (f"{r['max_pending']:,} | {r['max_lag_s']:.1f} | {r['drained_after_s']:.2f}" if k == "async" else " | | ")
        lines.append(f"| {k} | {r['inserts_per_s']:,.0f} | {extra} |")
    lines.append("")
    (REPO / "docs" / "sync.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
