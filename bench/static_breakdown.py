#!/usr/bin/env python3
"""Where a StaticEmbedding ingest's time goes, ettin next to sentence-transformers, on two kinds of
text (docs/static-breakdown.md, with the CPU):

  bench/static_breakdown.py [--texts 2000] [--rounds 3]

* msmarco: MS MARCO passages (../shared/data/msmarco-dl19-5k, read in place; ~59 words).
* mix: a quarter each of passages, long texts (10 passages joined, ~600 words), the same
  passages in Cyrillic letters (a letter-for-letter transliteration: words the English vocabulary
  does not hold, split into many pieces) and CJK text (characters drawn from the CJK block, each
  its own token).

Parts, µs per text: engine only (engine/examples/static_breakdown.rs: the tokenizer on whole
texts, token ids by the word (engine/src/word_ids.rs) on a first pass and with the words known, the
whole embed() on one thread — pool = the difference — and on all cores); in SQL, the engine's own
time of an `ettin_embed(text[])` call (ettin_models().total_ms), the whole call
(`SELECT count(*) FROM ettin_embed(...)`: + arrays and rows), and `INSERT ... SELECT` of its
vectors into a `real[]` column (+ the row write). sentence-transformers 6: its StaticEmbedding's
tokenize() (tokenizers' encode_batch, on all cores), forward() (EmbeddingBag), and encode().
The model: a random-weight twin of static-retrieval-mrl-en-v1 (bert-base-uncased's vocabulary,
1024 dimensions; bench/embed_speed.py builds it). Needs `make install`, torch and
sentence-transformers (tools/requirements.txt) and psycopg.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from quality import passage_text  # noqa: E402
from sync import ROOT, cluster, connect, cpu  # noqa: E402  (the same private cluster and model directory)

TWIN = "bench/static-retrieval-twin"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
CYRILLIC = dict(zip("abcdefghijklmnopqrstuvwxyz", "абцдефгхийклмнопярстуввхыз"))


def text_sets(data: Path, n: int) -> dict[str, list[str]]:
    passages = [passage_text(json.loads(line)) for line in (data / "corpus.jsonl").open()]
    rng = random.Random(0)
    mix = []
    for i in range(n):
        p = passages[i % len(passages)]
        kind = i % 4
        if kind == 1:
            mix.append(" ".join(passages[(i + j) % len(passages)] for j in range(10)))
        elif kind == 2:
            mix.append("".join(CYRILLIC.get(ch, ch) for ch in p.lower()))
        elif kind == 3:
            words = ["".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(rng.randrange(2, 5))) for _ in range(60)]
            mix.append("，".join(" ".join(words[k : k + 6]) for k in range(0, 60, 6)) + "。")
        else:
            mix.append(p)
    return {"msmarco": passages[:n], "mix": mix}


def best_us(fn, n: int, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times) * 1e6 / n


def sql_parts(conn, texts: list[str], rounds: int) -> dict:
    n = len(texts)
    conn.execute("DROP TABLE IF EXISTS sink")
    conn.execute("CREATE TABLE sink (v real[])")

    def engine_ms() -> float:
        return conn.execute("SELECT coalesce(sum(total_ms), 0) FROM ettin_models() WHERE name = %s", (TWIN,)).fetchone()[0]

    def call():
        assert conn.execute("SELECT count(*) FROM ettin_embed(%s::text[], %s)", (texts, TWIN)).fetchone()[0] == n

    def insert():
        conn.execute("TRUNCATE sink")
        conn.execute("INSERT INTO sink (v) SELECT embedding FROM ettin_embed(%s::text[], %s)", (texts, TWIN))

    call()  # loads the model
    before = engine_ms()
    call_us = best_us(call, n, rounds)
    engine_us = (engine_ms() - before) * 1e3 / (rounds * n)
    insert_us = best_us(insert, n, rounds)
    return {"engine_us": engine_us, "call_us": call_us, "insert_us": insert_us,
            "arrays_and_rows_us": call_us - engine_us, "row_write_us": insert_us - call_us}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "msmarco-dl19-5k")
    ap.add_argument("--texts", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    import torch
    from embed_speed import build_static_twin
    from sentence_transformers import SentenceTransformer

    if not (args.data / "corpus.jsonl").exists():
        sys.exit(f"{args.data}: the MS MARCO test set is absent; skipping")
    threads = os.cpu_count() or 2
    torch.set_num_threads(threads)
    models = ROOT / "models"
    subprocess.run(["bash", str(REPO / "scripts" / "real-models.sh")], check=True, env=dict(os.environ, ETTIN_REAL_MODELS=str(models)))
    twin = build_static_twin(models, models / MINILM)
    st = SentenceTransformer(str(twin), device="cpu")
    sets = text_sets(args.data, args.texts)
    ROOT.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cargo", "build", "-q", "--release", "-p", "ettin-engine", "--example", "static_breakdown"], check=True, cwd=REPO)
    example = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "release" / "examples" / "static_breakdown"
    results: dict = {"cpu": cpu(), "texts": args.texts}
    # The server (user postgres) reads the models below; the data dir must stay 0700.
    subprocess.run(["chmod", "a+rx", str(ROOT)], check=True)
    subprocess.run(["chmod", "-R", "a+rX", str(models)], check=True)
    cluster("start", f"ettin.model_dir = '{models}'", f"ettin.threads = {threads}")
    try:
        with connect("postgres") as c:
            c.execute("DROP DATABASE IF EXISTS ettin_static_bench")
            c.execute("CREATE DATABASE ettin_static_bench")
        with connect("ettin_static_bench") as conn:
            conn.execute("CREATE EXTENSION ettin")
            for name, texts in sets.items():
                path = ROOT / f"{name}.jsonl"
                path.write_text("".join(json.dumps(t) + "\n" for t in texts))
                engine = json.loads(subprocess.run([str(example), str(twin), str(path), str(threads)],
                                                   check=True, capture_output=True, text=True).stdout)
                module = st[0]
                features = module.tokenize(texts)
                st_parts = {
                    "tokenize_us": best_us(lambda: module.tokenize(texts), len(texts), args.rounds),
                    "forward_us": best_us(lambda: module(dict(features)), len(texts), args.rounds),
                    "encode_us": best_us(lambda: st.encode(texts, batch_size=32), len(texts), args.rounds),
                }
                sql = sql_parts(conn, texts, args.rounds)
                # The same vectors first: ettin's (ids by the word) against encode()'s.
                import numpy as np

                got = np.array([r[0] for r in conn.execute(
                    "SELECT embedding FROM ettin_embed(%s::text[], %s) ORDER BY idx", (texts, TWIN)).fetchall()])
                sql["max_abs_diff_vs_encode"] = float(np.max(np.abs(got - st.encode(texts, batch_size=32))))
                assert sql["max_abs_diff_vs_encode"] < 1e-5, sql["max_abs_diff_vs_encode"]
                results[name] = {"engine": engine, "sql": sql, "sentence_transformers": st_parts,
                                 "ratio_encode_over_sql_call": st_parts["encode_us"] / sql["call_us"]}
                print(name, json.dumps(results[name]))
    finally:
        cluster("stop")
    (REPO / "docs" / "static-breakdown.json").write_text(json.dumps(results, indent=1))
    lines = [f"# Where a StaticEmbedding ingest's time goes (bench/static_breakdown.py)", "",
             f"CPU: {results['cpu']}; {args.texts} texts per set, best of {args.rounds}; µs per text.", "",
             "| part | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]

    def row(label, f):
        lines.append(f"| {label} | " + " | ".join(f(results[s]) for s in sets) + " |")

    row("tokens per text", lambda r: f"{r['engine']['tokens_per_text']:.0f}")
    row("ettin engine: tokenizer on whole texts (1 thread; before word_ids.rs)", lambda r: f"{r['engine']['tokenize_us']:.1f}")
    row("ettin engine: ids by the word, every word new (1 thread)", lambda r: f"{r['engine']['words_first_us']:.1f}")
    row("ettin engine: ids by the word, words known (1 thread)", lambda r: f"{r['engine']['words_known_us']:.1f}")
    row("ettin engine: pool (1 thread)", lambda r: f"{r['engine']['pool_us']:.1f}")
    row(f"ettin engine: embed() on {threads} threads", lambda r: f"{r['engine']['embed_us']:.1f}")
    row("ettin in SQL: engine time of the call", lambda r: f"{r['sql']['engine_us']:.1f}")
    row("ettin in SQL: arrays and rows", lambda r: f"{r['sql']['arrays_and_rows_us']:.1f}")
    row("ettin in SQL: whole `ettin_embed(text[])` call", lambda r: f"{r['sql']['call_us']:.1f}")
    row("ettin in SQL: + writing the rows (INSERT ... SELECT)", lambda r: f"{r['sql']['row_write_us']:.1f}")
    row("sentence-transformers: tokenize()", lambda r: f"{r['sentence_transformers']['tokenize_us']:.1f}")
    row("sentence-transformers: forward()", lambda r: f"{r['sentence_transformers']['forward_us']:.1f}")
    row("sentence-transformers: encode()", lambda r: f"{r['sentence_transformers']['encode_us']:.1f}")
    row("max \\|diff\\| of the vectors vs encode()", lambda r: f"{r['sql']['max_abs_diff_vs_encode']:.1e}")
    row("**encode() / ettin_embed(text[])**", lambda r: f"**{r['ratio_encode_over_sql_call']:.2f}×**")
    lines.append("")
    (REPO / "docs" / "static-breakdown.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
