#!/usr/bin/env python3
"""Long documents: one (query, document) pair of 512, 2K, 4K and ~8K tokens, side by side in one run.

  bench/long_docs.py [--arch 17m] [--lengths 512,2048,4096,7999] [--threads 2]

The model is a random-weight twin of an Ettin reranker (tools/make_fixtures.py's builder) saved
with the real models' 7999 positions, so every engine scores the whole pair. For each length:

* ettin through SQL (`rerank_score`, `ettin.max_length` = the length, `ettin.max_batch_memory`
  raised so the pair runs), with the Hub's graph (onnx/model.onnx, "ettin") and the export tool's
  long graph (onnx/model_long.onnx, "ettin-long"), in a fresh backend each time: seconds per pair, the backend's peak RSS
  (VmHWM) and its RSS after the call next to before it; and whether the default
  `ettin.max_batch_memory` would have taken the pair (else ERROR 54000);
* onnxruntime from Python on the same graph (arena default, the peak and what it keeps);
* sentence-transformers `CrossEncoder.predict(batch_size=1)`, fp32 and bf16.

Then short pairs, where most reranking happens: NQ-like queries of 100 documents (~174 tokens on
average, bench/run.py's pairs) through ettin with each graph, pairs/s.

Every engine runs in its own process, so peak RSS is that process's own. Writes docs/long.md and
docs/long.json with the CPU. Needs `make install` and the tools' Python packages (pip install -r
tools/requirements.txt psycopg[binary]).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "bench"))

from run import ARCHITECTURES, ROOT, cluster, connect, cpu_features, ettin_rate, nq_like_pairs  # noqa: E402

QUERY = "what does the license say about warranty and liability"


def status_mb(pid: str = "self") -> dict:
    text = open(f"/proc/{pid}/status").read()
    return {k: int(line.split()[1]) // 1024 for line in text.splitlines() for k in ("VmRSS", "VmHWM") if line.startswith(k + ":")}


def build_twin(arch: str) -> Path:
    out = ROOT / "models" / "bench" / f"ettin-{arch}-long"
    if not (out / "onnx" / "model.onnx").exists():
        from make_fixtures import build_modular, corpus_sentences

        hidden, layers, heads = ARCHITECTURES[arch]
        build_modular(out, corpus_sentences(), [], [], 0, hidden, layers, 0.1, heads=heads, reference=False, max_positions=7999)
    subprocess.run(["chmod", "-R", "a+rX", str(ROOT / "models")], check=True)
    return out


def document(model_dir: Path, tokens: int) -> str:
    """Local English text whose pair with QUERY has at least `tokens` tokens."""
    from make_fixtures import corpus_sentences
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_truncation()
    sentences, doc = corpus_sentences(), []
    step = max(1, tokens // 20)
    while len(tok.encode(QUERY, " ".join(doc)).ids) < tokens:
        doc.extend(sentences[len(doc) % len(sentences) : len(doc) % len(sentences) + step])
    return " ".join(doc)


def child(engine: str, model_dir: Path, tokens: int, threads: int, doc: str) -> dict:
    """One engine, one length, in this (fresh) process."""
    if engine.startswith("st"):
        import torch
        from sentence_transformers import CrossEncoder

        torch.set_num_threads(threads)
        kwargs = {"model_kwargs": {"dtype": torch.bfloat16}} if engine == "st-bf16" else {}
        model = CrossEncoder(str(model_dir), device="cpu", max_length=tokens, **kwargs)
        model.predict([(QUERY, "warm up")], batch_size=1)
        run = lambda: model.predict([(QUERY, doc)], batch_size=1)  # noqa: E731
    else:
        import numpy as np
        import onnxruntime as ort
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        tok.no_padding()
        tok.enable_truncation(tokens, strategy="longest_first")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        sess = ort.InferenceSession(str(model_dir / "onnx" / "model.onnx"), opts, providers=["CPUExecutionProvider"])

        def run():
            ids = np.array([tok.encode(QUERY, doc).ids], dtype=np.int64)
            return sess.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})

        sess.run(None, {"input_ids": np.ones((1, 8), np.int64), "attention_mask": np.ones((1, 8), np.int64)})
    before = status_mb()["VmRSS"]
    reps = 3 if tokens <= 2048 else 1
    t = time.perf_counter()
    for _ in range(reps):
        run()
    seconds = (time.perf_counter() - t) / reps
    after = status_mb()
    return {"seconds": seconds, "rss_before_mb": before, "peak_mb": after["VmHWM"], "rss_after_mb": after["VmRSS"]}


def measure_child(engine: str, model_dir: Path, tokens: int, threads: int, doc_file: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", engine, "--model", str(model_dir), "--lengths", str(tokens),
         "--threads", str(threads), "--doc", str(doc_file)],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure_ettin(model_name: str, tokens: int, doc: str, onnx_file: str | None) -> dict:
    """A fresh backend (its peak RSS is this pair's), the budget lifted; then, in another backend,
    whether the default ettin.max_batch_memory takes the pair."""
    graph = f"SET ettin.onnx_file = '{onnx_file}'" if onnx_file else "RESET ettin.onnx_file"
    with connect() as conn:  # autocommit: each call its own transaction, so none is remembered
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        conn.execute(graph)
        conn.execute("SET ettin.max_batch_memory = '64GB'")
        conn.execute("SET ettin.max_length = %s" % tokens)
        conn.execute("SELECT rerank_score(%s, 'warm up', %s)", (QUERY, model_name))
        before = status_mb(pid)["VmRSS"]
        reps = 3 if tokens <= 2048 else 1
        t = time.perf_counter()
        for _ in range(reps):
            conn.execute("SELECT rerank_score(%s, %s, %s)", (QUERY, doc, model_name))
        seconds = (time.perf_counter() - t) / reps
        after = status_mb(pid)
    with connect() as conn:
        refused = None
        conn.execute(graph)
        try:
            conn.execute("SET ettin.max_length = %s" % tokens)
            conn.execute("SELECT rerank_score(%s, %s, %s)", (QUERY, doc, model_name))
        except Exception as e:  # the default budget's answer, reported as is
            refused = f"{getattr(e, 'sqlstate', '')}: {str(e).splitlines()[0]}"
        default_budget = conn.execute("SHOW ettin.max_batch_memory").fetchone()[0]
    return {"seconds": seconds, "rss_before_mb": before, "peak_mb": after["VmHWM"], "rss_after_mb": after["VmRSS"],
            "default_budget": default_budget, "default_budget_refused": refused}


GRAPHS = ("onnx/model.onnx", "onnx/model_cls.onnx", "onnx/model_long.onnx")


def short_pairs_rates(model_name: str) -> dict:
    """pairs/s of each graph on NQ-like queries of 100 documents (the default max_length: these
    pairs are all far below the model's length)."""
    from make_fixtures import corpus_sentences

    groups = nq_like_pairs(corpus_sentences(), 10, 100)
    rates = {}
    for graph in GRAPHS:
        with connect() as conn:
            conn.execute(f"SET ettin.onnx_file = '{graph}'")
            ettin_rate(conn, model_name, groups[:1])  # load and warm up
            rates[graph] = ettin_rate(conn, model_name, groups)[0]
    return rates


def write_report(results: dict, short: dict, args, cpu: dict) -> None:
    (REPO / "docs" / "long.json").write_text(
        json.dumps({"cpu": cpu, "threads": args.threads, "arch": args.arch, "results": results, "short_pairs_per_s": short}, indent=1))
    lines = [
        "# Long documents: one pair per call, ettin vs onnxruntime-Python vs sentence-transformers",
        "",
        f"`bench/long_docs.py --arch {args.arch} --threads {args.threads}`; random-weight ettin-reranker-{args.arch} twin with 7999 positions; "
        f"CPU: {cpu['model']} ({', '.join(cpu['flags'])}), {args.threads} threads. Peak = the process's VmHWM; "
        "after = its RSS once the call returned (before = right before it, model loaded).",
        "",
        "| tokens | engine | s/pair | peak RSS MB | RSS before → after MB |",
        "|---|---|---|---|---|",
    ]
    for tokens, engines in results.items():
        for engine, r in engines.items():
            note = ""
            if engine.startswith("ettin"):
                note = " (default budget: " + ("refused, " + r["default_budget_refused"] if r["default_budget_refused"] else "runs") + ")"
            lines.append(f"| {tokens} | {engine}{note} | {r['seconds']:.2f} | {r['peak_mb']} | {r['rss_before_mb']} → {r['rss_after_mb']} |")
    lines += ["", "ST bf16 time ÷ ettin time (× = how many times faster ettin is):", ""]
    for t, e in results.items():
        for graph in ("ettin", "ettin-long"):
            if graph in e and "st-bf16" in e:
                lines.append(f"- {t} tokens, {graph}: {e['st-bf16']['seconds'] / e[graph]['seconds']:.2f}×")
    lines += ["", "Short pairs (NQ-like, 10 queries × 100 documents, `rerank_score(q, docs[])`), pairs/s by graph:", ""]
    lines += [f"- `{graph}`: {rate:.0f}" for graph, rate in short.items()]
    lines.append("")
    (REPO / "docs" / "long.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="17m", choices=sorted(ARCHITECTURES))
    ap.add_argument("--lengths", default="512,2048,4096,7999")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--engines", default="ettin,ettin-long,ort,st,st-bf16")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--doc", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.model), int(args.lengths), args.threads, Path(args.doc).read_text())))
        return
    model_dir = build_twin(args.arch)
    model_name = f"bench/ettin-{args.arch}-long"
    engines = args.engines.split(",")
    results: dict = {}
    cluster("start", f"ettin.model_dir = '{ROOT / 'models'}'", f"ettin.threads = {args.threads}")
    try:
        with connect("postgres") as c:
            c.execute("DROP DATABASE IF EXISTS ettin_bench")
            c.execute("CREATE DATABASE ettin_bench")
        with connect() as c:
            c.execute("CREATE EXTENSION ettin")
        for tokens in (int(x) for x in args.lengths.split(",")):
            doc = document(model_dir, tokens)
            doc_file = ROOT / f"long-doc-{tokens}.txt"
            doc_file.write_text(doc)
            results[tokens] = {}
            for engine in engines:
                if engine.startswith("ettin"):
                    r = measure_ettin(model_name, tokens, doc, "onnx/model_long.onnx" if engine == "ettin-long" else None)
                else:
                    r = measure_child(engine, model_dir, tokens, args.threads, doc_file)
                results[tokens][engine] = r
                print(f"{tokens} tokens, {engine}: {r}", flush=True)
        short = short_pairs_rates(model_name)
        print(f"short pairs: {short}", flush=True)
    finally:
        cluster("stop")
    write_report(results, short, args, cpu_features())


if __name__ == "__main__":
    main()
