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
* The highest sustained insert rate the worker keeps up with (--rates; needs torch and
  sentence-transformers, tools/requirements.txt): for a StaticEmbedding twin (1024 dimensions,
  bench/embed_speed.py builds it) and all-MiniLM-L6-v2 (real weights, fp32 and int8 graphs), first
  the worker's own rate on a backlog, then 2 writers inserting MS MARCO passages at a paced rate
  of 25, 50, 75, 100, 125, 150, 200, 300% of it for SECONDS (up to the first it falls
  behind at): kept up when the backlog stayed under 2 s of inserts
  over the second half and drained within 2 s after the writers stopped.

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
    # As a table that has been there a while is: analyzed and vacuumed. Else autovacuum starts on
    # it (and on the table before, full of dead rows) in the middle of the timing.
    conn.execute(f"VACUUM ANALYZE {table}")


def tenths(start: float, progress: list[tuple[float, int]], rows: int) -> dict:
    """Rows/s over the first and the last tenth of a backfill, from (time, rows done) samples."""
    first = next(p for p in progress if p[1] >= rows // 10)
    last_start = next(p for p in progress if p[1] >= rows - rows // 10)
    end = progress[-1]
    return {"first_10pct_rows_per_s": first[1] / (first[0] - start),
            "last_10pct_rows_per_s": (end[1] - last_start[1]) / max(end[0] - last_start[0], 1e-9)}


def backfills(rows: int) -> dict:
    out = {}
    with connect() as c:
        fill(c, "bf_update", rows)
        t = time.perf_counter()
        c.execute(f"UPDATE bf_update SET embedding = ettin_embed(body, '{MODEL}')::vector")
        out["set-based UPDATE"] = {"seconds": time.perf_counter() - t}
        c.execute("DROP TABLE bf_update")

    # Each backfill in a backend of its own: a fresh one, as a backfill's session would be (the
    # UPDATE's backend already knows the words of the first 100,000 texts: word_ids.rs).
    with connect() as c:
        fill(c, "bf_table", rows)
        notices: list[tuple[float, int]] = []
        c.add_notice_handler(lambda d: notices.append((time.perf_counter(), int(d.message_primary.split()[1])))
                             if " / " in (d.message_primary or "") else None)
        c.execute("SET client_min_messages = notice")
        t = time.perf_counter()
        c.execute(f"CALL ettin_embed_table('bf_table', 'body', 'embedding', '{MODEL}', NULL, 10000)")
        out["ettin_embed_table"] = {"seconds": time.perf_counter() - t, **tenths(t, notices, rows)}

        c.execute("DROP TABLE bf_table")

    with connect() as c:
        fill(c, "bf_sync", rows)
        t = time.perf_counter()
        c.execute(f"SELECT ettin_sync_start('bf_sync', 'body', 'embedding', '{MODEL}')")
        seen = []
        while True:
            n = c.execute("SELECT pending FROM ettin_syncs WHERE \"table\" = 'bf_sync'::regclass").fetchone()[0]
            seen.append((time.perf_counter(), rows - n))
            if n == 0:
                break
            time.sleep(0.05)  # fine enough to time a tenth of a short backfill
        out["sync worker"] = {"seconds": time.perf_counter() - t, **tenths(t, seen, rows)}
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


RATE_MODELS = {  # what --rates measures: model, its graph (ettin.embed_onnx_file), dimensions
    "StaticEmbedding twin": ("bench/static-retrieval-twin", "", 1024),
    "all-MiniLM-L6-v2 fp32": ("sentence-transformers/all-MiniLM-L6-v2", "onnx/model.onnx", 384),
    "all-MiniLM-L6-v2 int8": ("sentence-transformers/all-MiniLM-L6-v2", "onnx/model_int8.onnx", 384),
}


def passages(n: int) -> list[str]:
    from quality import passage_text

    data = REPO.parent / "shared" / "data" / "msmarco-dl19-5k" / "corpus.jsonl"
    out = [passage_text(json.loads(line)) for line in data.open()]
    return (out * (n // len(out) + 1))[:n]


def pending(c, table: str) -> int:
    return c.execute(f"SELECT pending FROM ettin_syncs WHERE \"table\" = '{table}'::regclass").fetchone()[0]


def worker_rate(db: str, model: str, dim: int, rows: int) -> float:
    """Rows/s the worker embeds from a backlog of `rows` passages, nothing else running."""
    with connect(db) as c:
        c.execute("DROP TABLE IF EXISTS backlog")
        c.execute(f"CREATE TABLE backlog (id bigserial PRIMARY KEY, body text, embedding vector({dim}))")
        with c.cursor().copy("COPY backlog (body) FROM STDIN") as copy:
            for p in passages(rows):
                copy.write_row((p,))
        t = time.perf_counter()
        c.execute(f"SELECT ettin_sync_start('backlog', 'body', 'embedding', '{model}')")
        while pending(c, "backlog") > 0:
            time.sleep(0.05)
        rate = rows / (time.perf_counter() - t)
        c.execute("SELECT ettin_sync_stop('backlog', 'embedding')")
    return rate


def paced(db: str, model: str, dim: int, rate: float, seconds: float, writers: int = 2) -> dict:
    """Writers insert passages 10 a statement at `rate` rows/s in all; the worker's backlog sampled."""
    texts = passages(int(rate * seconds) + 10 * writers + 10)
    with connect(db) as c:
        c.execute("DROP TABLE IF EXISTS paced")
        c.execute(f"CREATE TABLE paced (id bigserial PRIMARY KEY, body text, embedding vector({dim}))")
        c.execute(f"SELECT ettin_sync_start('paced', 'body', 'embedding', '{model}')")
    start = time.monotonic()
    stop = start + seconds
    inserted = [0] * writers
    samples: list[tuple[float, int]] = []

    def writer(i: int) -> None:
        every = 10 * writers / rate
        due = start + i * every / writers
        with connect(db) as w:
            while due < stop:
                time.sleep(max(0.0, due - time.monotonic()))
                k = inserted[i] * writers + i * 10
                w.execute("INSERT INTO paced (body) SELECT unnest(%s::text[])", (texts[k:k + 10],))
                inserted[i] += 10
                due += every

    def sampler() -> None:
        with connect(db) as s:
            while time.monotonic() < stop:
                samples.append((time.monotonic() - start, pending(s, "paced")))
                time.sleep(0.5)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)] + [threading.Thread(target=sampler)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t = time.perf_counter()
    with connect(db) as c:
        while pending(c, "paced") > 0:
            time.sleep(0.02)
        drained = time.perf_counter() - t
        c.execute("SELECT ettin_sync_stop('paced', 'embedding')")
    achieved = sum(inserted) / seconds
    worst_late = max((p for at, p in samples if at >= seconds / 2), default=0)
    return {"target_rows_per_s": rate, "inserted_rows_per_s": achieved, "most_pending_second_half": worst_late,
            "drained_after_s": drained, "kept_up": worst_late <= 2 * achieved and drained <= 2.0}


def rates(seconds: float, only: str | None = None) -> dict:
    from embed_speed import build_static_twin
    from quality import prepare_model

    models = ROOT / "models"
    minilm = prepare_model(models)
    build_static_twin(models, minilm)
    out = {}
    for name, (model, onnx_file, dim) in RATE_MODELS.items():
        if only and only not in name:
            continue
        db = "rate_" + "".join(ch if ch.isalnum() else "_" for ch in name.lower())
        with connect("postgres") as c:
            c.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
            c.execute(f"CREATE DATABASE {db}")
            # The worker reads the graph setting when it connects to the database.
            c.execute(f"ALTER DATABASE {db} SET ettin.embed_onnx_file = '{onnx_file}'")
        with connect(db) as c:
            c.execute("CREATE EXTENSION vector")
            c.execute("CREATE EXTENSION ettin")
        backlog = 50_000 if "Static" in name else 1_500
        capacity = worker_rate(db, model, dim, backlog)
        # Up the ladder until the worker falls behind (paced small batches can outrun a backlog's).
        rungs = []
        for f in (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0):
            rungs.append(paced(db, model, dim, f * capacity, seconds))
            if not rungs[-1]["kept_up"]:
                break
        kept = [r for r in rungs if r["kept_up"]]
        out[name] = {"worker_rate_on_backlog": capacity, "rungs": rungs,
                     "highest_kept_up_rows_per_s": max((r["inserted_rows_per_s"] for r in kept), default=None)}
        print(name, json.dumps(out[name]))
        with connect("postgres") as c:
            c.execute(f"DROP DATABASE {db} WITH (FORCE)")
    return out


def write_rates(measured: dict, seconds: float) -> None:
    path = REPO / "docs" / "sync-rates.json"
    # --rates-only measures some models again; the others keep their last figures.
    results = json.loads(path.read_text())["rates"] if path.exists() else {}
    results.update(measured)
    path.write_text(json.dumps({"cpu": cpu(), "rates": results}, indent=1))
    lines = [
        "# Syncs: the highest insert rate the worker keeps up with (bench/sync.py --rates)",
        "",
        f"CPU: {cpu()}; writers and worker share it. 2 writers insert MS MARCO passages (10 a statement)",
        f"at a paced rate for {seconds:.0f} s; kept up = the backlog stayed under 2 s of inserts over the second half",
        "and drained within 2 s of the writers stopping.",
        "",
        "| model | worker on a backlog (rows/s) | paced rates tried (rows/s): most pending in the 2nd half, drained after (s) | highest kept up (rows/s) |",
        "|---|---|---|---|",
    ]
    for name, r in results.items():
        tried = "; ".join(f"{x['inserted_rows_per_s']:,.0f}: {x['most_pending_second_half']:,}, {x['drained_after_s']:.1f}"
                          + ("" if x["kept_up"] else " ✗") for x in r["rungs"])
        best = r["highest_kept_up_rows_per_s"]
        lines.append(f"| {name} | {r['worker_rate_on_backlog']:,.0f} | {tried} | {'—' if best is None else f'{best:,.0f}'} |")
    lines.append("")
    (REPO / "docs" / "sync-rates.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--rates", action="store_true", help="only the highest kept-up insert rates (torch needed)")
    ap.add_argument("--rates-only", help="with --rates: only the models whose name contains this")
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
        if args.rates:
            return write_rates(rates(args.seconds, args.rates_only), args.seconds)
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
