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
    """The architecture with random weights: the Hub layout (onnx/model.onnx) plus what the export
    tool adds: model_cls.onnx (CLS-only last layer) and its dynamic-int8 variant."""
    from make_fixtures import build_modular, corpus_sentences
    from export_model import write_int8

    hidden, layers, heads = ARCHITECTURES[arch]
    if not (out / "onnx" / "model.onnx").exists():
        build_modular(out, corpus_sentences(), [], [], 0, hidden, layers, 0.1, heads=heads, reference=False)
    if not (out / "onnx" / "model_cls.onnx").exists():
        from export_model import ClsBackbone, export_onnx
        from sentence_transformers import CrossEncoder

        ce = CrossEncoder(str(out), device="cpu")
        export_onnx(ClsBackbone(ce[0].auto_model.eval()), ce[0].tokenizer, "cls_hidden_state", out / "onnx" / "model_cls.onnx", False)
    if not (out / "onnx" / "model_cls_int8.onnx").exists():
        write_int8(out / "onnx" / "model_cls.onnx", out / "onnx" / "model_cls_int8.onnx")
    if not (out / "onnx" / "model_cls_int8_vnni.onnx").exists():
        write_int8(out / "onnx" / "model_cls.onnx", out / "onnx" / "model_cls_int8_vnni.onnx", full_range=True)
    return out


def cpu_features() -> dict:
    """The features that decide int8 and bf16 speed (what ettin_info()->'cpu' reports)."""
    text = open("/proc/cpuinfo").read()
    flags = next((l.split(":", 1)[1].split() for l in text.splitlines() if l.startswith("flags")), [])
    model = next((l.split(":", 1)[1].strip() for l in text.splitlines() if l.startswith("model name")), platform.processor())
    wanted = ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16"]
    return {"model": model, "flags": [f for f in wanted if f in flags]}


def has_int8_dot_product() -> bool:
    return any(f in cpu_features()["flags"] for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


def bench_st(model_dir: Path, groups, threads: int, batch_size: int = 32, bf16: bool = False) -> tuple[float, list]:
    """CrossEncoder.predict per query of 100 (fp32, or bf16 on the CPU: torch uses AVX512-BF16 /
    AMX where the CPU has them); pairs/s and the scores per query."""
    import torch
    from sentence_transformers import CrossEncoder

    torch.set_num_threads(threads)
    kwargs = {"model_kwargs": {"dtype": torch.bfloat16}} if bf16 else {}
    model = CrossEncoder(str(model_dir), device="cpu", max_length=512, **kwargs)
    model.predict([(groups[0][0], d) for d in groups[0][1][:32]], batch_size=batch_size)
    t = time.perf_counter()
    scores = [np.asarray(model.predict([(q, d) for d in docs], batch_size=batch_size), dtype=np.float64) for q, docs in groups]
    return sum(len(d) for _, d in groups) / (time.perf_counter() - t), scores


def bench_ort(model_dir: Path, groups, threads: int, batch_tokens: int | None = None, onnx_file: str = "onnx/model.onnx", spinning: bool = True) -> float:
    """Per query of 100 documents, like ettin's calls: tokenize, sort by length, then batches of
    32 (the usual recipe) or, with batch_tokens, ettin's plan (at most 32 pairs and batch_tokens
    padded tokens per batch)."""
    import onnxruntime as ort
    from safetensors.numpy import load_file
    from scipy.special import erf
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(512, strategy="longest_first")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    # onnxruntime's default is to spin; ettin's default (ettin.spinning) is not to.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    sess = ort.InferenceSession(str(model_dir / onnx_file), opts, providers=["CPUExecutionProvider"])
    d2 = load_file(model_dir / "2_Dense" / "model.safetensors")["linear.weight"]
    ln = load_file(model_dir / "3_LayerNorm" / "model.safetensors")
    d4 = load_file(model_dir / "4_Dense" / "model.safetensors")

    def run(batch_pairs):
        encs = [tok.encode(q, d) for q, d in batch_pairs]
        order = sorted(range(len(encs)), key=lambda i: -len(encs[i].ids))
        scores = np.zeros(len(encs), dtype=np.float32)
        s = 0
        while s < len(order):
            L = len(encs[order[s]].ids)
            n = 32 if batch_tokens is None else max(1, min(32, batch_tokens // L))
            idx = order[s : s + n]
            s += n
            ids = np.zeros((len(idx), L), dtype=np.int64)
            mask = np.zeros((len(idx), L), dtype=np.int64)
            for r, i in enumerate(idx):
                n = len(encs[i].ids)
                ids[r, :n] = encs[i].ids
                mask[r, :n] = 1
            (h,) = sess.run(None, {"input_ids": ids, "attention_mask": mask})
            x = (h[:, 0] if h.ndim == 3 else h) @ d2.T  # last_hidden_state, or the CLS graph's output
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
    env = dict(os.environ, ETTIN_CLUSTER_ROOT=str(ROOT))
    subprocess.run(["bash", str(REPO / "scripts" / "cluster.sh"), *args], check=True, env=env, stdout=subprocess.DEVNULL)


def port() -> str:
    """The port scripts/cluster.sh drew for the cluster (it keeps it in ROOT/port)."""
    return (ROOT / "port").read_text().strip()


def connect(db="ettin_bench"):
    import psycopg

    return psycopg.connect(f"host={ROOT} port={port()} user=postgres dbname={db}", autocommit=True)


def ettin_rate(conn, name: str, groups) -> tuple[float, list]:
    pairs, scores = 0, []
    t = time.perf_counter()
    for q, docs in groups:
        scores.append(conn.execute("SELECT rerank_score(%s, %s::text[], %s)", (q, docs, name)).fetchone()[0])
        pairs += len(docs)
    return pairs / (time.perf_counter() - t), scores


def mean_spearman(a: list, b: list) -> float:
    from scipy.stats import spearmanr

    return float(np.mean([spearmanr(x, y).statistic for x, y in zip(a, b)]))


def run_concurrently(conns, work) -> float:
    """Run work(i, conn) for every connection at once (released together); seconds taken."""
    import threading

    barrier = threading.Barrier(len(conns) + 1)

    def body(i, c):
        barrier.wait()
        work(i, c)

    threads = [threading.Thread(target=body, args=(i, c)) for i, c in enumerate(conns)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def bench_concurrency(name: str, groups, threads: int, clients: int, onnx_file: str) -> float:
    """Aggregate pairs/s of `clients` connections reranking the same queries at once."""
    conns = [connect() for _ in range(clients)]
    for c in conns:
        c.execute(f"SET ettin.threads = {threads}")
        c.execute(f"SET ettin.onnx_file = '{onnx_file}'")
        c.execute("SELECT rerank_score('warm up', ARRAY['a', 'b'], %s)", (name,))
    rate = clients * sum(len(d) for _, d in groups) / run_concurrently(conns, lambda i, c: ettin_rate(c, name, groups))
    for c in conns:
        c.close()
    return rate


def backend_rss_mb(conn) -> int:
    with open(f"/proc/{conn.info.backend_pid}/status") as f:
        return next(int(l.split()[1]) // 1024 for l in f if l.startswith("VmRSS:"))


def int8_variants() -> list[str]:
    return ["onnx/model_cls_int8.onnx"] + (["onnx/model_cls_int8_vnni.onnx"] if has_int8_dot_product() else [])


def bench_ettin(name: str, groups, threads: int, concurrency: bool) -> dict:
    with connect() as conn:
        conn.execute(f"SET ettin.threads = {threads}")
        t = time.perf_counter()
        conn.execute("SELECT rerank_score('warm up', ARRAY['a', 'b'], %s)", (name,))
        load_ms = conn.execute("SELECT load_ms FROM ettin_models() WHERE name = %s", (name,)).fetchone()[0]
        first_call = time.perf_counter() - t
        rate, plain_scores = ettin_rate(conn, name, groups)
        rss = backend_rss_mb(conn)  # one model, default settings, after 100-document calls
        conn.execute("SET ettin.batch_tokens = 16384")  # batches of 32, the usual recipe
        rate_b32, _ = ettin_rate(conn, name, groups)
        conn.execute("RESET ettin.batch_tokens")
        # The Hub graph, the CLS graph and the int8 variants (the export tool's 7-bit one
        # everywhere, its full-range one where the CPU has VNNI/AMX; ettin refuses it elsewhere),
        # interleaved over 3 rounds and reported as medians: this kind of machine's speed drifts
        # by 10–20% from minute to minute.
        graphs = ["", "onnx/model_cls.onnx"] + int8_variants()
        rates, scores = {g: [] for g in graphs}, {}
        for _ in range(3):
            for g in graphs:
                conn.execute(f"SET ettin.onnx_file = '{g}'")
                conn.execute("SELECT rerank_score('warm up', ARRAY['a', 'b'], %s)", (name,))
                r_g, scores[g] = ettin_rate(conn, name, groups)
                rates[g].append(r_g)
        rate = statistics.median(rates[""])
        rate_cls, cls_scores = statistics.median(rates["onnx/model_cls.onnx"]), scores["onnx/model_cls.onnx"]
        sigma = float(np.std(np.concatenate(plain_scores)))
        cls_vs_plain = float(np.max(np.abs(np.concatenate(cls_scores) - np.concatenate(plain_scores)))) / sigma
        # Spearman per query against ettin's fp32 (the Hub graph)
        int8 = {f: {"rate": statistics.median(rates[f]), "spearman": mean_spearman(scores[f], plain_scores)} for f in int8_variants()}
        best_int8 = max(int8, key=lambda f: int8[f]["rate"])
    # ettin.spinning applies when a backend loads a model: a new connection; the Hub fp32 graph
    # and the fastest int8 graph interleaved, medians of 3.
    with connect() as conn:
        conn.execute(f"SET ettin.threads = {threads}")
        conn.execute("SET ettin.spinning = on")
        spin = {"": [], best_int8: []}
        for _ in range(3):
            for g in spin:
                conn.execute(f"SET ettin.onnx_file = '{g}'")
                conn.execute("SELECT rerank_score('warm up', ARRAY['a', 'b'], %s)", (name,))
                spin[g].append(ettin_rate(conn, name, groups)[0])
        rate_spin, rate_int8_spin = statistics.median(spin[""]), statistics.median(spin[best_int8])
    with connect() as conn:
        conn.execute(f"SET ettin.threads = {threads}")
        conn.execute("SET ettin.onnx_file = 'onnx/model_cls.onnx'")
        conn.execute("SELECT rerank_score('warm up', ARRAY['a', 'b'], %s)", (name,))
        # pgvector candidates + rerank latency on the demo corpus
        lat, outside = {}, {}
        qs = conn.execute("SELECT query, embedding::text FROM demo_queries ORDER BY id").fetchall()
        counters = "SELECT inference_ms FROM ettin_models() WHERE name = %s AND onnx_file = 'onnx/model_cls.onnx'"
        for k in (20, 100):
            times, inference = [], []
            for rep in range(3):
                for query, emb in qs:
                    before = conn.execute(counters, (name,)).fetchone()[0]
                    t = time.perf_counter()
                    conn.execute(
                        """WITH c AS (SELECT id, body FROM passages ORDER BY embedding <=> %s::vector LIMIT %s),
                                b AS (SELECT array_agg(id) ids, array_agg(body) bodies FROM c)
                           SELECT b.ids[r.idx], r.score FROM b, ettin_rerank(%s, b.bodies, 10, %s) r""",
                        (emb, k, query, name),
                    ).fetchall()
                    times.append((time.perf_counter() - t) * 1000)
                    inference.append(conn.execute(counters, (name,)).fetchone()[0] - before)
            lat[k] = (statistics.median(times), float(np.percentile(times, 95)))
            # Share of the statement's wall time (client round trip included) spent outside
            # ONNX Runtime's run: pgvector, tokenization, head, SQL, transfer.
            outside[k] = 1 - sum(inference) / sum(times)
    result = {"rate": rate, "rate_b32": rate_b32, "rate_cls": rate_cls, "int8": int8, "best_int8": best_int8,
              "rate_int8": int8[best_int8]["rate"], "rate_int8_spin": rate_int8_spin, "rate_spin": rate_spin,
              "cls_max_diff_sigma": cls_vs_plain, "int8_spearman": int8[best_int8]["spearman"], "load_ms": load_ms,
              "first_call_s": first_call, "lat": lat, "outside_inference": outside, "rss_mb": rss}
    if concurrency:
        one = bench_concurrency(name, groups, threads, 1, "onnx/model_cls.onnx")
        result["concurrency"] = {"1 conn": one}
        for t in sorted({threads, 1}, reverse=True):
            result["concurrency"][f"4 conn, threads={t}"] = bench_concurrency(name, groups, t, 4, "onnx/model_cls.onnx")
    return result


def saved_results() -> dict:
    saved = json.loads((REPO / "docs" / "bench.json").read_text())
    for r in saved["results"].values():
        r["ettin"]["lat"] = {int(k): v for k, v in r["ettin"]["lat"].items()}
        r["ettin"]["outside_inference"] = {int(k): v for k, v in r["ettin"]["outside_inference"].items()}
    return saved["results"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="17m,150m")
    ap.add_argument("--queries", type=int, default=10, help="queries of 100 documents each (17m; larger models use fewer)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--report-only", action="store_true", help="redraw docs/bench.* from docs/bench.json")
    ap.add_argument("--keep", action="store_true", help="keep docs/bench.json's results for models not run now")
    args = ap.parse_args()
    if args.report_only:
        saved = json.loads((REPO / "docs" / "bench.json").read_text())
        return write_report(saved_results(), saved["threads"], saved.get("cpu"))

    from make_fixtures import corpus_sentences

    sentences = corpus_sentences()
    models_dir = ROOT / "models"
    results = saved_results() if args.keep else {}
    cluster("start", f"ettin.model_dir = '{models_dir}'")
    try:
        subprocess.run(["psql", "-Xq", "-h", str(ROOT), "-p", port(), "-U", "postgres", "-d", "postgres",
                        "-c", "DROP DATABASE IF EXISTS ettin_bench", "-c", "CREATE DATABASE ettin_bench"], check=True)
        subprocess.run(["psql", "-Xq", "-h", str(ROOT), "-p", port(), "-U", "postgres", "-d", "ettin_bench",
                        "-f", "sql/load_demo_corpus.sql"], check=True, cwd=REPO, stdout=subprocess.DEVNULL)
        for arch in args.models.split(","):
            model_dir = build_model(arch, models_dir / "bench" / f"ettin-{arch}")
            subprocess.run(["chmod", "-R", "a+rX", str(models_dir)], check=True)
            queries = max(1, args.queries // {"17m": 1, "32m": 2, "68m": 4, "150m": 8}[arch])
            groups = nq_like_pairs(sentences, queries, 100)
            pairs = [(q, d) for q, docs in groups for d in docs]
            print(f"== {arch}: {len(pairs)} pairs", file=sys.stderr)
            st, _ = bench_st(model_dir, groups, args.threads)
            # sentence-transformers at its best batch on CPU (8), in fp32 and in bf16
            st_b8, st_scores = bench_st(model_dir, groups, args.threads, batch_size=8)
            st_bf16, bf16_scores = bench_st(model_dir, groups, args.threads, batch_size=8, bf16=True)
            ort_rate = bench_ort(model_dir, groups, args.threads)
            ort_budget = bench_ort(model_dir, groups, args.threads, batch_tokens=1024)
            et = bench_ettin(f"bench/ettin-{arch}", groups, args.threads, concurrency=arch == "17m")
            # onnxruntime from Python on ettin's fastest int8 graph and plan, spinning (its
            # default) and not (ettin's default)
            ort_int8 = bench_ort(model_dir, groups, args.threads, batch_tokens=1024, onnx_file=et["best_int8"])
            ort_int8_nospin = bench_ort(model_dir, groups, args.threads, batch_tokens=1024, onnx_file=et["best_int8"], spinning=False)
            results[arch] = {"pairs": len(pairs), "st": st, "st_b8": st_b8, "st_bf16": st_bf16,
                             "st_bf16_spearman": mean_spearman(bf16_scores, st_scores), "ort": ort_rate,
                             "ort_budget": ort_budget, "ort_int8": ort_int8, "ort_int8_nospin": ort_int8_nospin, "ettin": et}
            print(json.dumps(results[arch]), file=sys.stderr)
    finally:
        cluster("stop")
    write_report(results, args.threads)


def write_report(results: dict, threads: int, cpu: dict | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cpu = cpu or cpu_features()  # the machine the results came from
    lines = [
        "# ettin benchmark",
        "",
        f"Machine: {cpu['model']}, {os.cpu_count()} cores, CPU features {', '.join(cpu['flags']) or 'none of note'} "
        f"(no {', '.join(f for f in ['avx512_vnni', 'avx_vnni', 'avx512_bf16', 'amx_int8'] if f not in cpu['flags']) or '—'}); "
        f"{threads} threads for every engine; max_length 512; "
        "NQ-like pairs, 100 documents per query; random-weight Ettin architectures (init std 0.1); "
        "produced by `bench/run.py` in one run (same model files, same pairs).",
        "",
        "Throughput in pairs/s (tokenization and head included). ST = sentence-transformers "
        "`CrossEncoder.predict` per query of 100 (*b32* its default batch, *b8* its best on CPU). "
        "ORT-Python = onnxruntime 1.31.1 from "
        "Python on the same ONNX file, per query of 100; *b32* = length-sorted batches of 32, *1K* = "
        "ettin's plan (≤ 1024 padded tokens per batch). ettin columns go through SQL "
        "(`rerank_score(query, documents[])` over psycopg): *default* = Hub graph and default settings, "
        "*b32* = `ettin.batch_tokens = 16384`, *CLS* = the export tool's `onnx/model_cls.onnx`. "
        "ettin's default, CLS and int8 rates are medians of 3 interleaved rounds.",
        "",
        "| model | pairs | ST fp32 b32 | ST fp32 b8 | ORT-Py b32 | ORT-Py 1K | ettin default | ettin b32 | ettin CLS "
        "| default / ORT-Py 1K | b32 / ORT-Py b32 | CLS / ST b32 | CLS max diff |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arch, r in results.items():
        e = r["ettin"]
        lines.append(
            f"| ettin-{arch} | {r['pairs']} | {r['st']:.1f} | {r.get('st_b8', float('nan')):.1f} | {r['ort']:.1f} | {r['ort_budget']:.1f} | "
            f"{e['rate']:.1f} | {e['rate_b32']:.1f} | {e['rate_cls']:.1f} | {e['rate'] / r['ort_budget']:.2f}× | "
            f"{e['rate_b32'] / r['ort']:.2f}× | **{e['rate_cls'] / r['st']:.2f}×** | {e['cls_max_diff_sigma']:.1e} σ |"
        )
    lines += [
        "",
        "int8 and bf16. *ST bf16* = sentence-transformers with the model in bfloat16 on the CPU "
        "(batch 8; torch uses AVX512-BF16/AMX where present), Spearman per query against its fp32. "
        "ettin int8 = the export tool's `--int8` variants of the CLS graph: *7-bit* "
        "(`model_cls_int8.onnx`, reduce_range, any x86 CPU) and *full* (`model_cls_int8_vnni.onnx`, "
        "full-range weights, only measured and only loaded on CPUs with VNNI/AMX); Spearman per query "
        "against ettin fp32 (Hub graph). *spin* = the faster int8 variant with `ettin.spinning = on` "
        "(*both spin*: against the fp32 Hub graph with spinning on too). "
        "ORT-Py int8 = onnxruntime from Python on that same file and plan, spinning (its default) / not.",
        "",
        "| model | ST bf16 | its Spearman | ettin fp32 default | ettin int8 7-bit (Spearman) | ettin int8 full (Spearman) "
        "| ettin int8 spin | ORT-Py int8 spin / no spin | **int8 / ettin fp32** | **int8 / ST bf16** | int8 / ORT-Py int8 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arch, r in results.items():
        e = r["ettin"]
        if "int8" not in e or "st_bf16" not in r:
            continue
        v7 = e["int8"].get("onnx/model_cls_int8.onnx")
        vf = e["int8"].get("onnx/model_cls_int8_vnni.onnx")
        cell = lambda v: f"{v['rate']:.1f} ({v['spearman']:.3f})" if v else "refused (no VNNI)"  # noqa: E731
        lines.append(
            f"| ettin-{arch} | {r['st_bf16']:.1f} | {r['st_bf16_spearman']:.4f} | {e['rate']:.1f} | {cell(v7)} | {cell(vf)} | "
            f"{e['rate_int8_spin']:.1f} | {r['ort_int8']:.1f} / {r['ort_int8_nospin']:.1f} | "
            f"**{e['rate_int8'] / e['rate']:.2f}×** (spin {e['rate_int8_spin'] / e['rate']:.2f}×"
            + (f", both spin {e['rate_int8_spin'] / e['rate_spin']:.2f}×" if "rate_spin" in e else "") + ") | "
            f"**{e['rate_int8'] / r['st_bf16']:.2f}×** | {e['rate_int8'] / r['ort_int8_nospin']:.2f}× (spin {e['rate_int8_spin'] / r['ort_int8']:.2f}×) |"
        )
    lines += [
        "",
        "Latency of one SQL statement: pgvector HNSW top-k on the demo corpus (3000 passages) + "
        "`ettin_rerank` of the k candidates with the CLS graph (8 queries × 3). *outside inference* = share of "
        "the statement's wall time (client round trip included) not spent in ONNX Runtime's run "
        "(from `ettin_models().inference_ms`).",
        "",
        "| model | top-20 p50 / p95 ms | top-100 p50 / p95 ms | outside inference top-20 / top-100 | load ms | backend RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for arch, r in results.items():
        e = r["ettin"]
        lines.append(
            f"| ettin-{arch} | {e['lat'][20][0]:.0f} / {e['lat'][20][1]:.0f} | {e['lat'][100][0]:.0f} / {e['lat'][100][1]:.0f} | "
            f"{e['outside_inference'][20] * 100:.1f}% / {e['outside_inference'][100] * 100:.1f}% | {e['load_ms']:.0f} | {e['rss_mb']} |"
        )
    for arch, r in results.items():
        conc = r["ettin"].get("concurrency")
        if not conc:
            continue
        one = conc["1 conn"]
        lines += ["", f"Concurrent connections (ettin-{arch}, CLS graph, aggregate pairs/s):", "", "| setting | pairs/s | vs 1 connection |", "|---|---|---|"]
        lines += [f"| {k} | {v:.1f} | {v / one:.2f}× |" for k, v in conc.items()]
    # Keep the section bench/shared.py appends.
    previous = (REPO / "docs" / "bench.md").read_text() if (REPO / "docs" / "bench.md").exists() else ""
    marker = "\n## Per-backend vs shared inference"
    shared = previous[previous.index(marker):] if marker in previous else ""
    (REPO / "docs" / "bench.md").write_text("\n".join(lines) + "\n" + shared)
    (REPO / "docs" / "bench.json").write_text(json.dumps({"threads": threads, "cpu": cpu, "results": results}, indent=1))
    fig, ax = plt.subplots(figsize=(8, 3.8))
    archs = list(results)
    series = [
        ("ST fp32 b32", lambda r: r["st"]),
        ("ST bf16 b8", lambda r: r.get("st_bf16", 0)),
        ("ORT-Python b32", lambda r: r["ort"]),
        ("ORT-Python 1K", lambda r: r["ort_budget"]),
        ("ettin default", lambda r: r["ettin"]["rate"]),
        ("ettin CLS", lambda r: r["ettin"]["rate_cls"]),
        ("ettin CLS int8", lambda r: r["ettin"]["rate_int8"]),
        ("ettin CLS int8 spin", lambda r: r["ettin"].get("rate_int8_spin", 0)),
    ]
    width = 0.8 / len(series)
    x = np.arange(len(archs))
    for i, (label, get) in enumerate(series):
        # Each model relative to sentence-transformers, so 17m and 150m share one axis.
        ax.bar(x + (i - (len(series) - 1) / 2) * width, [get(results[a]) / results[a]["st"] for a in archs], width, label=label)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xticks(x, [f"ettin-{a}" for a in archs])
    ax.set_ylabel("throughput vs ST fp32 b32")
    ax.set_title(f"CPU reranking throughput ({cpu['model']}, {os.cpu_count()} cores, {threads} threads; {'VNNI' if any(f in cpu['flags'] for f in ('avx512_vnni', 'avx_vnni', 'amx_int8')) else 'no VNNI'})", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(REPO / "docs" / "bench.png", dpi=120)
    print((REPO / "docs" / "bench.md").read_text())


if __name__ == "__main__":
    main()
