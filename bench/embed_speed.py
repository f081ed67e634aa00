#!/usr/bin/env python3
"""Embedding speed, side by side in one run on the same model files and texts:

  bench/embed_speed.py [--texts 2000] [--rounds 3]

* StaticEmbedding: a random-weight twin of sentence-transformers/static-retrieval-mrl-en-v1
  (its tokenizer is bert-base-uncased's, which all-MiniLM-L6-v2 shares; 1024 dimensions):
  `SentenceTransformer.encode` (batch 32, numpy out) vs `ettin_embed(text[])` over arrays of 500
  through SQL; and the server time of one short query (`ettin_embed(text)` in a PL/pgSQL loop).
* Transformer embedder: the real all-MiniLM-L6-v2 (bench/quality.py prepares it): ettin through SQL
  vs onnxruntime from Python on the same graph and batches (length-sorted, 1024 padded tokens and
  at most 32 texts a batch — ettin's CPU defaults — tokenizer.json, mean pooling and
  normalization in numpy) vs `SentenceTransformer.encode` (batch 32); fp32 and the int8 graph.

Texts: the MS MARCO passages of ../shared/data/msmarco-dl19-5k (read in place). ettin's figures
count vectors computed in the server (`SELECT count(*) FROM ettin_embed(...)`: nothing shipped
back). Medians of --rounds interleaved rounds. Writes docs/bench-embed.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from quality import MODEL, ROOT, cluster, connect, passage_text, prepare_model  # noqa: E402

STATIC = "bench/static-retrieval-twin"


def build_static_twin(models: Path, minilm: Path) -> Path:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from tokenizers import Tokenizer

    out = models / STATIC
    if (out / "modules.json").exists():
        return out
    import torch

    torch.manual_seed(0)
    tokenizer = Tokenizer.from_file(str(minilm / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    model = SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_dim=1024)], device="cpu")
    model.save(str(out))
    subprocess.run(["chmod", "-R", "a+rX", str(models)], check=True)
    return out


def ort_embed(session, tokenizer, texts, max_pairs=32, max_tokens=1024) -> np.ndarray:
    """What ettin does for a transformer embedder, in Python: tokenize, plan length-sorted batches
    under the same limits, run, mean-pool over the mask, L2-normalize."""
    enc = tokenizer.encode_batch(texts)
    order = sorted(range(len(texts)), key=lambda i: -len(enc[i].ids))
    out = np.zeros((len(texts), 384), dtype=np.float32)
    names = {i.name for i in session.get_inputs()}
    i = 0
    while i < len(order):
        longest = len(enc[order[i]].ids)
        take = max(1, min(max_pairs, max_tokens // max(longest, 1)))
        batch = order[i : i + take]
        i += take
        ids = np.zeros((len(batch), longest), dtype=np.int64)
        mask = np.zeros_like(ids)
        for r, j in enumerate(batch):
            n = len(enc[j].ids)
            ids[r, :n] = enc[j].ids
            mask[r, :n] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = session.run(["last_hidden_state"], feeds)[0]
        pooled = (hidden * mask[..., None]).sum(1) / np.clip(mask.sum(1, keepdims=True), 1e-9, None)
        out[batch] = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
    return out


def query_server_us(conn, model: str, n: int) -> float:
    """Server time of one short ettin_embed(text) call: a PL/pgSQL loop of n distinct queries (no
    memo hits), timed inside the server."""
    conn.execute(f"""
      DO $$ DECLARE t0 timestamptz := clock_timestamp(); v real[];
      BEGIN
        FOR i IN 1..{n} LOOP v := ettin_embed('what is the capital of france ' || i, '{model}'); END LOOP;
        PERFORM set_config('bench.query_us', (extract(epoch FROM clock_timestamp() - t0) * 1e6 / {n})::text, false);
      END $$""")
    return float(conn.execute("SELECT current_setting('bench.query_us')").fetchone()[0])


def rate(fn, n: int) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "msmarco-dl19-5k")
    ap.add_argument("--texts", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    import onnxruntime as ort
    import torch
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

    if not (args.data / "corpus.jsonl").exists():
        sys.exit(f"{args.data}: the MS MARCO test set is absent; skipping")
    texts = [passage_text(json.loads(line)) for line in (args.data / "corpus.jsonl").open()][: args.texts]
    threads = os.cpu_count() or 2
    torch.set_num_threads(threads)
    models = ROOT / "models"
    minilm = prepare_model(models)
    static = build_static_twin(models, minilm)
    st_static = SentenceTransformer(str(static), device="cpu")
    st_minilm = SentenceTransformer(str(minilm), device="cpu")
    tok = Tokenizer.from_file(str(minilm / "tokenizer.json"))
    tok.enable_truncation(256)  # all-MiniLM-L6-v2's max_seq_length, not the file's 128
    tok.no_padding()
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sessions = {g: ort.InferenceSession(str(minilm / "onnx" / f"{g}.onnx"), so, providers=["CPUExecutionProvider"])
                for g in ("model", "model_int8")}
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
    flags = subprocess.run(["sh", "-c", "grep -m1 '^flags' /proc/cpuinfo"], capture_output=True, text=True).stdout.split()
    cpu_flags = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8") if f in flags]

    # The same vectors, before timing anything: ORT-Python's pipeline equals encode().
    check = st_minilm.encode(texts[:200], batch_size=32)
    assert np.max(np.abs(ort_embed(sessions["model"], tok, texts[:200]) - check)) < 1e-5

    # ONNX Runtime's Python sessions let idle threads spin by default; ettin.spinning gives ettin
    # the same (its default is off, for servers whose cores are shared).
    cluster("start", f"ettin.model_dir = '{models}'", f"ettin.threads = {threads}", "ettin.spinning = on")
    results: dict[str, list[float]] = {}
    try:
        with connect("postgres") as c:
            c.execute("DROP DATABASE IF EXISTS ettin_embed_bench")
            c.execute("CREATE DATABASE ettin_embed_bench")
        with connect("ettin_embed_bench") as conn:
            conn.execute("CREATE EXTENSION ettin")

            def ettin(model: str, onnx_file: str = ""):
                def run():
                    conn.execute(f"SET ettin.embed_onnx_file = '{onnx_file}'")
                    for i in range(0, len(texts), 500):
                        n = conn.execute("SELECT count(*) FROM ettin_embed(%s::text[], %s)", (texts[i : i + 500], model)).fetchone()[0]
                        assert n == len(texts[i : i + 500])
                return run

            ettin(STATIC)()  # load models before timing
            ettin(MODEL, "onnx/model.onnx")()
            ettin(MODEL, "onnx/model_int8.onnx")()
            cases = {
                "static: sentence-transformers encode": lambda: st_static.encode(texts, batch_size=32),
                "static: ettin_embed(text[])": ettin(STATIC),
                "MiniLM fp32: sentence-transformers encode": lambda: st_minilm.encode(texts, batch_size=32),
                "MiniLM fp32: onnxruntime Python": lambda: ort_embed(sessions["model"], tok, texts),
                "MiniLM fp32: ettin_embed(text[])": ettin(MODEL, "onnx/model.onnx"),
                "MiniLM int8: onnxruntime Python": lambda: ort_embed(sessions["model_int8"], tok, texts),
                "MiniLM int8: ettin_embed(text[])": ettin(MODEL, "onnx/model_int8.onnx"),
            }
            for r in range(args.rounds):
                for name, fn in cases.items():
                    results.setdefault(name, []).append(rate(fn, len(texts)))
                print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in results.items()))
            # One short query, server time: a PL/pgSQL loop of distinct queries (no memo hits).
            conn.execute("SET ettin.embed_onnx_file = ''")
            static_query_us = query_server_us(conn, STATIC, 2000)
            minilm_query_us = query_server_us(conn, MODEL, 300)
    finally:
        cluster("stop")
    med = {k: statistics.median(v) for k, v in results.items()}
    report = {
        "machine": {"cpu": cpu, "flags": cpu_flags, "cores": threads},
        "texts": len(texts),
        "texts_per_s": med,
        "rounds": results,
        "one_query_server_us": {"static": static_query_us, "MiniLM fp32": minilm_query_us},
        "ratios": {
            "static: ettin / sentence-transformers": med["static: ettin_embed(text[])"] / med["static: sentence-transformers encode"],
            "MiniLM fp32: ettin / onnxruntime Python": med["MiniLM fp32: ettin_embed(text[])"] / med["MiniLM fp32: onnxruntime Python"],
            "MiniLM fp32: ettin / sentence-transformers": med["MiniLM fp32: ettin_embed(text[])"] / med["MiniLM fp32: sentence-transformers encode"],
            "MiniLM int8: ettin / onnxruntime Python": med["MiniLM int8: ettin_embed(text[])"] / med["MiniLM int8: onnxruntime Python"],
        },
    }
    (REPO / "docs" / "bench-embed.json").write_text(json.dumps(report, indent=1))
    rows = "\n".join(f"| {k} | {v:.0f} |" for k, v in med.items())
    ratios = "\n".join(f"| {k} | {v:.2f}× |" for k, v in report["ratios"].items())
    md = f"""# Embedding speed (bench/embed_speed.py)

Machine: {cpu}, {threads} cores, flags {', '.join(cpu_flags)}. {len(texts)} MS MARCO passages
(mean ~59 words), medians of {args.rounds} interleaved rounds, every runtime on {threads} threads
(ONNX Runtime with its default spinning threads in Python, `ettin.spinning = on` for ettin).
ettin's figures are vectors computed in the server (`SELECT count(*) FROM ettin_embed(texts[], model)`,
arrays of 500, nothing shipped back); sentence-transformers and onnxruntime return numpy arrays.

| runtime | texts/s |
|---|---|
{rows}

| ratio | |
|---|---|
{ratios}

One short query through SQL, server time per `ettin_embed(text)` call (PL/pgSQL loop of 2000
distinct queries): StaticEmbedding {static_query_us:.0f} µs; all-MiniLM-L6-v2 fp32 {minilm_query_us:.0f} µs.
"""
    (REPO / "docs" / "bench-embed.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
