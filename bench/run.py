#!/usr/bin/env python3
"""ettin vs sentence-transformers vs onnxruntime-Python: one run, same model files, same pairs.

  bench/run.py [--models 17m,150m] [--queries 10] [--threads 2]

For each Ettin architecture (random weights, init std 0.1; speed does not depend on weights) it
builds the model with tools/make_fixtures.py's builder, then measures on NQ-like pairs (queries of
a few words, passages with ~174 tokens on average, median ~150, p90 ~345, made from local English
text; 100 documents per query):

* sentence-transformers CrossEncoder.predict (CPU, fp32, batch 32),
* onnxruntime from Python on the same ONNX, called per query like ettin (length-sorted batches
  of 32, tokenization and head included — what ettin does),
* ettin through SQL: rerank_score(query, documents[]) over a psycopg connection to a private
  cluster (scripts/cluster.sh), plus p50/p95 latency of a pgvector top-20/top-100 + ettin_rerank
  query on the demo corpus, model load time and backend RSS.

Writes docs/bench.md and docs/bench.png. Needs `make install` and the tools' Python packages
(pip install -r tools/requirements.txt psycopg[binary] matplotlib).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

ARCHITECTURES = {  # hidden, layers, heads (models.md)
    "17m": (256, 7, 4),
    "32m": (384, 10, 6),
    "68m": (512, 19, 8),
    "150m": (768, 22, 12),
}
ROOT = Path(os.environ.get("ETTIN_BENCH_ROOT", "/var/tmp/ettin-bench"))
PORT = 54350


def nq_like_pairs(sentences: list[str], queries: int, docs_per_query: int, seed: int = 0):
    """Queries of 3–10 words; passages whose word counts follow a log-normal fitted to NQ
    passages (~174 tokens mean, ~150 median, ~345 p90 at ~1.3 tokens per word)."""
    rng = random.Random(seed)
    out = []
    for _ in range(queries):
        words = rng.choice(sentences).split()
        start = rng.randrange(max(1, len(words) - 3))
        q = " ".join(words[start : start + rng.randint(3, 10)])
        docs = []
        for _ in range(docs_per_query):
            target = int(min(900, max(12, rng.lognormvariate(np.log(115), 0.6))))
            i = rng.randrange(len(sentences))
            body = []
            while sum(len(s.split()) for s in body) < target:
                body.append(sentences[i % len(sentences)])
                i += 1
            docs.append(" ".join(" ".join(body).split()[:target]))
        out.append((q, docs))
    return out


def build_model(arch: str, out: Path) -> Path:
    from make_fixtures import build_modular, corpus_sentences

    if (out / "onnx" / "model.onnx").exists():
        return out
    hidden, layers, heads = ARCHITECTURES[arch]
    build_modular(out, corpus_sentences(), [], [], 0, hidden, layers, 0.1, heads=heads, reference=False)
    return out


def bench_st(model_dir: Path, pairs, threads: int) -> float:
    import torch
    from sentence_transformers import CrossEncoder

    torch.set_num_threads(threads)
    model = CrossEncoder(str(model_dir), device="cpu", max_length=512)
    model.predict(pairs[:32], batch_size=32)
    t = time.perf_counter()
    model.predict(pairs, batch_size=32)
    return len(pairs) / (time.perf_counter() - t)


def bench_ort(model_dir: Path, groups, threads: int) -> float:
    """Per query of 100 documents, like ettin's calls: tokenize, sort by length, batches of 32."""
    import onnxruntime as ort
    from safetensors.numpy import load_file
    from scipy.special import erf
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(512, strategy="longest_first")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(model_dir / "onnx" / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    d2 = load_file(model_dir / "2_Dense" / "model.safetensors")["linear.weight"]
    ln = load_file(model_dir / "3_LayerNorm" / "model.safetensors")
    d4 = load_file(model_dir / "4_Dense" / "model.safetensors")

    def run(batch_pairs):
        encs = [tok.encode(q, d) for q, d in batch_pairs]
        order = sorted(range(len(encs)), key=lambda i: -len(encs[i].ids))
        scores = np.zeros(len(encs), dtype=np.float32)
        for s in range(0, len(order), 32):
            idx = order[s : s + 32]
            L = len(encs[idx[0]].ids)
            ids = np.zeros((len(idx), L), dtype=np.int64)
            mask = np.zeros((len(idx), L), dtype=np.int64)
            for r, i in enumerate(idx):
                n = len(encs[i].ids)
                ids[r, :n] = encs[i].ids
                mask[r, :n] = 1
            (h,) = sess.run(None, {"input_ids": ids, "attention_mask": mask})
            x = h[:, 0] @ d2.T
            x = 0.5 * x * (1 + erf(x / np.sqrt(2)))
            x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * ln["norm.weight"] + ln["norm.bias"]
            scores[idx] = (x @ d4["linear.weight"].T + d4["linear.bias"])[:, 0]
        return scores

    run([(groups[0][0], d) for d in groups[0][1][:32]])
    t = time.perf_counter()
    for q, docs in groups:
        run([(q, d) for d in docs])
    return sum(len(d) for _, d in groups) / (time.perf_counter() - t)


def cluster(*args: str) -> None:
    env = dict(os.environ, ETTIN_CLUSTER_ROOT=str(ROOT), ETTIN_CLUSTER_PORT=str(PORT))
    subprocess.run(["bash", str(REPO / "scripts" / "cluster.sh"), *args], check=True, env=env, stdout=subprocess.DEVNULL)


def connect(db="ettin_bench"):
    import psycopg

    return psycopg.connect(f"host={ROOT} port={PORT} user=postgres dbname={db}", autocommit=True)


def bench_ettin(name: str, groups, threads: int) -> dict:
    with connect() as conn:
        conn.execute(f"SET ettin.threads = {threads}")
        t = time.perf_counter()
        conn.execute("SELECT rerank_score('warm up', ARRAY['a', 'b'], %s)", (name,))
        load_ms = conn.execute("SELECT load_ms FROM ettin_models() WHERE name = %s", (name,)).fetchone()[0]
        first_call = time.perf_counter() - t
        pairs = 0
        t = time.perf_counter()
        for q, docs in groups:
            conn.execute("SELECT rerank_score(%s, %s::text[], %s)", (q, docs, name))
            pairs += len(docs)
        rate = pairs / (time.perf_counter() - t)
        # pgvector candidates + rerank latency on the demo corpus
        lat = {}
        qs = conn.execute("SELECT query, embedding::text FROM demo_queries ORDER BY id").fetchall()
        for k in (20, 100):
            times = []
            for rep in range(3):
                for query, emb in qs:
                    t = time.perf_counter()
                    conn.execute(
                        """WITH c AS (SELECT id, body FROM passages ORDER BY embedding <=> %s::vector LIMIT %s),
                                b AS (SELECT array_agg(id) ids, array_agg(body) bodies FROM c)
                           SELECT b.ids[r.idx], r.score FROM b, ettin_rerank(%s, b.bodies, 10, %s) r""",
                        (emb, k, query, name),
                    ).fetchall()
                    times.append((time.perf_counter() - t) * 1000)
            lat[k] = (statistics.median(times), float(np.percentile(times, 95)))
        pid = conn.info.backend_pid
        rss = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) // 1024
    return {"rate": rate, "load_ms": load_ms, "first_call_s": first_call, "lat": lat, "rss_mb": rss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="17m,150m")
    ap.add_argument("--queries", type=int, default=10, help="queries of 100 documents each (17m; larger models use fewer)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--report-only", action="store_true", help="redraw docs/bench.* from docs/bench.json")
    args = ap.parse_args()
    if args.report_only:
        saved = json.loads((REPO / "docs" / "bench.json").read_text())
        for r in saved["results"].values():
            r["ettin"]["lat"] = {int(k): v for k, v in r["ettin"]["lat"].items()}
        return write_report(saved["results"], saved["threads"])

    from make_fixtures import corpus_sentences

    sentences = corpus_sentences()
    models_dir = ROOT / "models"
    results = {}
    cluster("start", f"ettin.model_dir = '{models_dir}'")
    try:
        subprocess.run(["psql", "-Xq", "-h", str(ROOT), "-p", str(PORT), "-U", "postgres", "-d", "postgres",
                        "-c", "DROP DATABASE IF EXISTS ettin_bench", "-c", "CREATE DATABASE ettin_bench"], check=True)
        subprocess.run(["psql", "-Xq", "-h", str(ROOT), "-p", str(PORT), "-U", "postgres", "-d", "ettin_bench",
                        "-f", "sql/load_demo_corpus.sql"], check=True, cwd=REPO, stdout=subprocess.DEVNULL)
        for arch in args.models.split(","):
            model_dir = build_model(arch, models_dir / "bench" / f"ettin-{arch}")
            subprocess.run(["chmod", "-R", "a+rX", str(models_dir)], check=True)
            queries = max(1, args.queries // {"17m": 1, "32m": 2, "68m": 4, "150m": 8}[arch])
            groups = nq_like_pairs(sentences, queries, 100)
            pairs = [(q, d) for q, docs in groups for d in docs]
            print(f"== {arch}: {len(pairs)} pairs", file=sys.stderr)
            st = bench_st(model_dir, pairs, args.threads)
            ort_rate = bench_ort(model_dir, groups, args.threads)
            et = bench_ettin(f"bench/ettin-{arch}", groups, args.threads)
            results[arch] = {"pairs": len(pairs), "st": st, "ort": ort_rate, "ettin": et}
            print(json.dumps(results[arch]), file=sys.stderr)
    finally:
        cluster("stop")
    write_report(results, args.threads)


def write_report(results: dict, threads: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    lines = [
        "# ettin benchmark",
        "",
        f"Machine: {cpu}, {os.cpu_count()} cores; {threads} threads for every engine; fp32; max_length 512; "
        "NQ-like pairs, 100 documents per query; produced by `bench/run.py`.",
        "",
        "| model | pairs | sentence-transformers pairs/s | onnxruntime-Python pairs/s | ettin SQL pairs/s | ettin / ST | ettin / ORT | top-20 p50 / p95 ms | top-100 p50 / p95 ms | load ms | backend RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arch, r in results.items():
        e = r["ettin"]
        lines.append(
            f"| ettin-{arch} (random) | {r['pairs']} | {r['st']:.1f} | {r['ort']:.1f} | {e['rate']:.1f} | {e['rate'] / r['st']:.2f}× | "
            f"{e['rate'] / r['ort']:.2f}× | {e['lat'][20][0]:.0f} / {e['lat'][20][1]:.0f} | {e['lat'][100][0]:.0f} / {e['lat'][100][1]:.0f} | "
            f"{e['load_ms']:.0f} | {e['rss_mb']} |"
        )
    (REPO / "docs" / "bench.md").write_text("\n".join(lines) + "\n")
    (REPO / "docs" / "bench.json").write_text(json.dumps({"threads": threads, "results": results}, indent=1))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    archs = list(results)
    x = np.arange(len(archs))
    for i, (key, label) in enumerate([("st", "sentence-transformers"), ("ort", "onnxruntime-Python"), ("ettin", "ettin (SQL)")]):
        vals = [results[a][key]["rate"] if key == "ettin" else results[a][key] for a in archs]
        ax.bar(x + (i - 1) * 0.27, vals, 0.27, label=label)
    ax.set_xticks(x, [f"ettin-{a}" for a in archs])
    ax.set_ylabel("pairs / s (higher is better)")
    ax.set_title(f"CPU reranking throughput ({os.cpu_count()} cores, {threads} threads)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(REPO / "docs" / "bench.png", dpi=120)
    print((REPO / "docs" / "bench.md").read_text())


if __name__ == "__main__":
    main()
