#!/usr/bin/env python3
"""Build the demo corpus: passages of English text and the demo's questions.

Passages are paragraphs of the Python standard library's docstrings (how to parse arguments,
compress files, send mail…) and of the licenses every Debian machine carries. No vectors: the demo
embeds passages and questions in the database (ettin_embed_table, ettin_embed). Output, committed:

  demo/passages.csv.gz   id, source, body
  demo/queries.csv       query

Usage: tools/make_demo_corpus.py
"""

from __future__ import annotations

import ast
import csv
import gzip
import re
import sys
import sysconfig
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


def main() -> None:
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

    out = Path(__file__).resolve().parent.parent / "demo"
    out.mkdir(exist_ok=True)
    with gzip.open(out / "passages.csv.gz", "wt", newline="", compresslevel=9) as f:
        w = csv.writer(f)
        w.writerow(["id", "source", "body"])
        for i, (source, body) in enumerate(passages, 1):
            w.writerow([i, source, body])
    with open(out / "queries.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["query"])
        for q in QUERIES:
            w.writerow([q])
    print(f"{len(passages)} passages, {len(QUERIES)} queries -> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
