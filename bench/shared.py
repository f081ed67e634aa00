#!/usr/bin/env python3
"""Per-backend vs shared inference: memory and throughput with many connections.

  bench/shared.py [--model 150m] [--clients 16] [--rounds 2] [--docs 20]

Runs the same workload twice on the benchmark cluster (scripts/cluster.sh): first with
ettin.inference = backend (every connection loads the model), then restarted with
shared_preload_libraries = 'ettin' and ettin.inference = shared (one ettin-inferd owns it). Each of
--clients connections reranks --rounds queries of --docs demo passages at the same time. Reports
aggregate pairs/s and memory as PSS (proportional set size: shared pages counted once overall)
summed over the backends and, in shared mode, the worker, against one model copy (the median
backend's PSS in per-backend mode). Appends the table to docs/bench.md and saves
docs/bench-shared.json. Needs bench/run.py's model (run it first) and `make install`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from run import ROOT, cluster, connect, run_concurrently  # noqa: E402


def pss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("Pss:"))


def worker_pid() -> int | None:
    out = subprocess.run(["pgrep", "-f", "ettin-inferd --socket"], capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else None


def run(mode: str, name: str, clients: int, rounds: int, docs: int) -> dict:
    settings = [f"ettin.model_dir = '{ROOT / 'models'}'"]
    if mode == "shared":
        settings += ["shared_preload_libraries = 'ettin'", "ettin.inference = 'shared'"]
    cluster("start", *settings)
    time.sleep(1.0)
    with connect() as c:
        queries = c.execute("SELECT query FROM demo_queries ORDER BY id").fetchall()
        passages = [r[0] for r in c.execute("SELECT body FROM passages ORDER BY id LIMIT %s", (docs * 8,)).fetchall()]
    conns = [connect() for _ in range(clients)]
    # First use loads the model (per backend, or once in the worker): not part of the timing.
    first_use_s = run_concurrently(conns, lambda i, c: c.execute("SELECT rerank_score('warm up', ARRAY['a'], %s)", (name,)))
    def work(i, c):
        for r in range(rounds):
            q = queries[(i + r) % len(queries)][0]
            start = ((i + r) * docs) % (len(passages) - docs)
            c.execute("SELECT rerank_score(%s, %s::text[], %s)", (q, passages[start : start + docs], name))

    rate = clients * rounds * docs / run_concurrently(conns, work)
    backends = [pss_kb(c.info.backend_pid) for c in conns]
    wpid = worker_pid() if mode == "shared" else None
    worker = pss_kb(wpid) if wpid else 0
    for c in conns:
        c.close()
    cluster("stop")
    return {"rate": rate, "first_use_s": first_use_s, "backend_pss_kb": backends, "worker_pss_kb": worker,
            "total_mb": (sum(backends) + worker) / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="150m")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--docs", type=int, default=20)
    args = ap.parse_args()
    name = f"bench/ettin-{args.model}"
    results = {}
    for mode in ("backend", "shared"):
        print(f"== {mode}", file=sys.stderr)
        results[mode] = run(mode, name, args.clients, args.rounds, args.docs)
        print(json.dumps({k: v for k, v in results[mode].items() if k != "backend_pss_kb"}), file=sys.stderr)
    one_copy_mb = statistics.median(results["backend"]["backend_pss_kb"]) / 1024
    lines = [
        "",
        f"## Per-backend vs shared inference (ettin-{args.model}, {args.clients} connections × {args.rounds} "
        f"queries × {args.docs} demo passages, at once; `bench/shared.py`)",
        "",
        "Memory is PSS (shared pages counted once) summed over the backends and, in shared mode, "
        "ettin-inferd; one model copy = the median backend's PSS in per-backend mode.",
        "",
        "| inference | aggregate pairs/s | first use of all connections s | total memory MB | vs one model copy |",
        "|---|---|---|---|---|",
    ]
    for mode, r in results.items():
        lines.append(f"| {mode} | {r['rate']:.1f} | {r['first_use_s']:.1f} | {r['total_mb']:.0f} | {r['total_mb'] / one_copy_mb:.2f}× |")
    lines.append(f"\nOne model copy: {one_copy_mb:.0f} MB. Shared / per-backend throughput: "
                 f"{results['shared']['rate'] / results['backend']['rate']:.2f}×.")
    text = (REPO / "docs" / "bench.md").read_text()
    marker = "\n## Per-backend vs shared inference"
    if marker in text:
        text = text[: text.index(marker)]
    (REPO / "docs" / "bench.md").write_text(text.rstrip("\n") + "\n" + "\n".join(lines) + "\n")
    (REPO / "docs" / "bench-shared.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
