"""Heapsort ties: the incumbent stays (llm-rankers) or the passage ranked higher in the input wins.

    PYTHONPATH=$PWD RERANKKIT_DATA=/work/shared/data HF_HUB_OFFLINE=1 \
        python eval/ties.py --dtype fp32 --out eval/results/ties.json --cache runs/ties.sqlite

For PRP heapsort (k=10) and setwise heapsort (c=3, k=10), in scoring and generation mode, with each tie
rule (``ties=incumbent`` | ``input_order``): nDCG@10 and cost (prompts per query) on all TREC DL19 (43) and
DL20 (54) judged queries, BM25 top-20, SmolLM2-135M-Instruct. Sliding (bubble passes) does not depend on the
rule: an undecided window keeps its arrangement either way. Every answer goes through a persistent cache
(``--cache``): both rules ask many of the same prompts, so the second costs only its new ones, and a killed
run resumes. Rows are appended to ``--out`` as they finish; a rerun skips what is there. ``--queries N``:
the first N queries of each dataset (a smoke test).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

DATASETS = ("trec-dl-2019/passage", "trec-dl-2020/passage")
VARIANTS = [  # (name, preset, overrides); cheapest first
    ("setwise heapsort c=3, score", "setwise-smollm2-135m", {"method": "heapsort", "mode": "score"}),
    ("setwise heapsort c=3, generate", "setwise-smollm2-135m", {"method": "heapsort", "mode": "generate"}),
    ("PRP heapsort k=10, score", "prp-smollm2-135m", {"method": "heapsort", "mode": "score"}),
    ("PRP heapsort k=10, generate", "prp-smollm2-135m", {"method": "heapsort", "mode": "generate"}),
]
RULES = ("incumbent", "input_order")
META = ("model_calls", "comparisons", "ties", "unparsed", "rounds")


def candidates(name: str, depth: int, queries: int | None):
    """BM25 top-``depth`` of the judged queries of ``name``, and its qrels."""
    from rerankkit.data import load_dataset
    from rerankkit.types import Run

    ds = load_dataset(name)
    qrels = list(ds.qrels())
    judged = {q.qid for q in qrels}
    run = ds.candidates("bm25").top(depth)
    chosen = [qid for qid in run if qid in judged][:queries]
    return Run([run[qid] for qid in chosen]), qrels


def ndcg10(run, qrels) -> float:
    """Mean over the run's queries (every judged query when run in full, so both conventions agree)."""
    from rerankkit.eval import evaluate

    return float(evaluate(run, qrels, ["nDCG@10"], missing_as_zero=False).aggregate["nDCG@10"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--queries", type=int, default=None, help="first N judged queries per dataset (smoke test)")
    ap.add_argument("--dtype", default="fp32", help="fp32 (deterministic, the parity setting), bf16 (~3x faster) or auto (as shipped)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="eval/results/ties.json")
    ap.add_argument("--cache", default="runs/ties.sqlite")
    ap.add_argument("--modes", default="score,generate", help="comma-separated: score, generate")
    args = ap.parse_args()
    modes = set(args.modes.split(","))
    logging.basicConfig(level=logging.WARNING)
    from rerankkit.backends import create_backend
    from rerankkit.backends.cached import CachedBackend
    from rerankkit.reranker import Reranker

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(args.cache).parent.mkdir(parents=True, exist_ok=True)
    rows = json.loads(out.read_text()) if out.exists() else []
    done = {(r["dataset"], r["variant"], r.get("ties")) for r in rows}
    backend = CachedBackend(create_backend("hf", "packaged:smollm2-135m-instruct", dtype=args.dtype,
                                           threads=args.threads), args.cache)
    for dataset in DATASETS:
        run, qrels = candidates(dataset, args.depth, args.queries)
        if (dataset, "input", None) not in done:
            rows.append({"dataset": dataset, "variant": "input", "ties": None, "queries": len(run),
                         "ndcg@10": round(ndcg10(run, qrels), 4)})
        for name, preset, overrides in VARIANTS:
            if overrides["mode"] not in modes:
                continue
            for rule in RULES:
                if (dataset, name, rule) in done:
                    continue
                reranker = Reranker(preset, backend_instance=backend, ties=rule, **overrides)
                computed0, t0 = backend.usage.snapshot()["model_calls"], time.perf_counter()
                reranked = reranker.rerank_run(run, depth=args.depth)
                n = len(reranked)
                row = {"dataset": dataset, "variant": name, "ties": rule, "queries": n, "depth": args.depth,
                       "dtype": args.dtype, "ndcg@10": round(ndcg10(reranked, qrels), 4),
                       "computed_prompts": backend.usage.snapshot()["model_calls"] - computed0,
                       "wall_s": round(time.perf_counter() - t0, 1)}
                for key in META:
                    vals = [r.metadata.get(key, 0) for r in reranked.values()]
                    row[f"{key}_per_query"] = round(sum(vals) / max(n, 1), 1)
                rows.append(row)
                out.write_text(json.dumps(rows, indent=1))
                print(json.dumps(row), flush=True)
    out.write_text(json.dumps(rows, indent=1))
    print(table(rows))


def table(rows: list[dict]) -> str:
    """Markdown: per dataset and variant, nDCG@10 and prompts/query under each tie rule."""
    lines = ["| dataset | variant | nDCG@10 incumbent | nDCG@10 input_order | prompts/query incumbent | "
             "prompts/query input_order |", "|---|---|---|---|---|---|"]
    by = {(r["dataset"], r["variant"], r["ties"]): r for r in rows}
    for dataset in DATASETS:
        if (dataset, "input", None) in by:
            lines.append(f"| {dataset} | BM25 (input) | {by[dataset, 'input', None]['ndcg@10']} | | | |")
        for name, _, _ in VARIANTS:
            a, b = by.get((dataset, name, "incumbent")), by.get((dataset, name, "input_order"))
            if a or b:
                cell = [str(x["ndcg@10"]) if x else "" for x in (a, b)]
                cost = [str(x["model_calls_per_query"]) if x else "" for x in (a, b)]
                lines.append(f"| {dataset} | {name} | {cell[0]} | {cell[1]} | {cost[0]} | {cost[1]} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
