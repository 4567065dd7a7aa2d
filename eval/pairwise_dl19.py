"""nDCG@10 of every PRP / setwise variant and mode with SmolLM2-135M on DL19 BM25 candidates.

    PYTHONPATH=$PWD RERANKKIT_DATA=/work/shared/data python eval/pairwise_dl19.py \
        --depth 20 --dtype bf16 --out eval/results/pairwise_dl19.json

Each variant runs on the BM25 order and on the inverted BM25 order (the PRP paper's robustness
check). Results are appended to ``--out`` as they finish; a rerun skips what is already there.
The persistent answer cache (``rerankkit.backends.cached.CachedBackend``, ``--cache``) makes prompts
shared between variants cost once and lets a killed run resume, so wall times here are not speed
measurements (see ``pairwise_bench.py`` for those).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from pairwise_common import hf_backend, load_dl19, ndcg10

from rerankkit.backends.cached import CachedBackend
from rerankkit.reranker import Reranker

# Cheapest first, so an interrupted run has filled the most cells. Every PRP variant asks a subset of
# allpair's prompts (each pair in both orders, same rendering), so the persistent answer cache makes a
# prompt cost once across variants, modes of the same kind and input orders; a rerun resumes from it.
VARIANTS: list[tuple[str, str, dict]] = [
    ("PRP heapsort k=10, score", "prp-smollm2-135m", {"method": "heapsort", "mode": "score"}),
    ("setwise heapsort c=3, score", "setwise-smollm2-135m", {"method": "heapsort", "mode": "score"}),
    ("PRP heapsort k=10, generate", "prp-smollm2-135m", {"method": "heapsort", "mode": "generate"}),
    ("setwise heapsort c=3, generate", "setwise-smollm2-135m", {"method": "heapsort", "mode": "generate"}),
    ("setwise bubblesort c=3, score", "setwise-smollm2-135m", {"method": "bubblesort", "mode": "score"}),
    ("PRP sliding-10, score", "prp-smollm2-135m", {"method": "sliding", "mode": "score"}),
    ("setwise bubblesort c=3, generate", "setwise-smollm2-135m", {"method": "bubblesort", "mode": "generate"}),
    ("PRP sliding-10, generate", "prp-smollm2-135m", {"method": "sliding", "mode": "generate"}),
    ("PRP allpair, score", "prp-smollm2-135m", {"method": "allpair", "mode": "score"}),
    ("PRP allpair, generate", "prp-smollm2-135m", {"method": "allpair", "mode": "generate"}),
]

META_KEYS = ("model_calls", "comparisons", "ties", "unparsed", "rounds", "truncated_docs")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--queries", type=int, default=None, help="first N queries only (smoke test)")
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core box)")
    ap.add_argument("--only", default="", help="';'-separated substrings of variant names")
    ap.add_argument("--orders", default="bm25,inverted", help="comma-separated input orders to rerank: bm25, inverted")
    ap.add_argument("--out", default="eval/results/pairwise_dl19.json")
    ap.add_argument("--cache", default="runs/pairwise_dl19.sqlite", help="persistent answer cache (resume, sharing)")
    args = ap.parse_args()
    orders = args.orders.split(",")
    if unknown := sorted(set(orders) - {"bm25", "inverted"}):
        ap.error(f"--orders: unknown order(s) {unknown}; choose from bm25, inverted")
    logging.basicConfig(level=logging.WARNING)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(out.read_text()) if out.exists() else []
    done = {(r["variant"], r["order"]) for r in results}
    backend = CachedBackend(hf_backend(args.dtype, threads=args.threads), args.cache)
    runs = {o: load_dl19(args.depth, invert=o == "inverted", queries=args.queries) for o in orders}
    for order, (run, qrels) in runs.items():
        if ("input", order) not in done:
            results.append({"variant": "input", "order": order, "ndcg@10": round(ndcg10(run, qrels), 4)})
    for name, preset, overrides in VARIANTS:
        for order, (run, qrels) in runs.items():
            if (name, order) in done or (args.only and not any(s in name for s in args.only.split(";"))):
                continue
            reranker = Reranker(preset, backend_instance=backend, **overrides)
            computed0, t0 = backend.usage.snapshot()["model_calls"], time.perf_counter()
            reranked = reranker.rerank_run(run, depth=args.depth)
            wall = time.perf_counter() - t0
            n = len(reranked)
            row = {"variant": name, "order": order, "preset": preset, "overrides": overrides,
                   "ndcg@10": round(ndcg10(reranked, qrels), 4), "queries": n, "depth": args.depth,
                   "dtype": args.dtype, "threads": args.threads, "computed_prompts": backend.usage.snapshot()["model_calls"] - computed0,
                   "wall_s": round(wall, 1)}
            for key in META_KEYS:
                vals = [r.metadata[key] for r in reranked.values() if key in r.metadata]
                if vals:
                    row[f"{key}_per_query"] = round(sum(vals) / n, 1)
                    row[f"{key}_total"] = sum(vals)
            results.append(row)
            out.write_text(json.dumps(results, indent=1))
            print(json.dumps(row), flush=True)
    out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
