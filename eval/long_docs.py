"""Long documents on NFCorpus test: each document scored as overlapping chunks (max) vs cut to the budget.

For each preset, two conditions over the same BM25 candidates (top ``--depth`` per query):

  truncate   the preset as it is: a document longer than what the reranker reads is cut
             (cosine-minilm: the model's 256-token window; pointwise-smollm2-135m: max_doc_tokens=512)
  max        chunking="max": windows of that same budget, overlapping by budget // 8 tokens, every window
             scored, the document gets its best window's score

and reports nDCG@10 (BEIR NFCorpus test qrels), how many candidates exceed the budget, windows scored,
model calls, prompt tokens and wall time. ``--budget N`` sets the budget of both conditions
(``max_doc_tokens=N``, windows of N). Writes JSON and prints a Markdown table.

    python eval/long_docs.py --out eval/results/long_docs.json                       # full: 323 queries
    python eval/long_docs.py --queries 2 --depth 5 --out /tmp/long_docs_slice.json   # a check
"""

from __future__ import annotations

import argparse
import json
import platform
import time

from rerankkit import Reranker, Retriever, evaluate
from rerankkit.data import load_dataset


def over_budget(reranker: Reranker, run) -> tuple[int, int, int]:
    """(candidates, candidates longer than the reranker's budget, that budget) over the run."""
    backend, strategy = reranker.backend, reranker.strategy
    total = over = 0
    budget = None
    for ranking in run.values():
        budget = strategy.doc_budget(ranking.query, backend)
        texts = [sd.doc.prompt_text() for sd in ranking.docs]
        counts = backend.count_tokens(texts)
        total += len(texts)
        over += sum(1 for n in counts if budget is not None and n > budget)
    return total, over, budget or 0


def measure(preset: str, run, qrels, depth: int, overrides: dict) -> dict:
    reranker = Reranker(preset, **overrides)
    first = next(iter(run.values()))
    reranker.rerank_many([(first.query, [sd.doc for sd in first.docs[:2]])])  # load the model, warm up
    before = reranker.backend.usage.snapshot()
    t = time.perf_counter()
    out = reranker.rerank_run(run, depth=depth, chunk_size=16)
    wall = time.perf_counter() - t
    after = reranker.backend.usage.snapshot()
    totals = out.metadata["totals"]
    row = {"nDCG@10": round(evaluate(out, qrels, ["nDCG@10"]).aggregate["nDCG@10"], 4), "wall_s": round(wall, 1),
           "model_calls": after["model_calls"] - before["model_calls"],
           "prompt_tokens": after["prompt_tokens"] - before["prompt_tokens"],
           "chunks": int(totals.get("chunks", 0)), "chunked_docs": int(totals.get("chunked_docs", 0)),
           "truncated_docs": int(totals.get("truncated_docs", 0))}
    cands, over, budget = over_budget(reranker, run)
    row.update(candidates=cands, over_budget=over, budget=budget)
    reranker.close()
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["cosine-minilm", "pointwise-smollm2-135m"])
    ap.add_argument("--queries", type=int, default=None, help="first N test queries (default: all 323)")
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--budget", type=int, default=None, help="max_doc_tokens and window size for both conditions")
    ap.add_argument("--dtype", default="fp32", help="fp32: batch composition cannot move scores (bf16 can)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default="eval/results/long_docs.json")
    args = ap.parse_args()

    ds = load_dataset("beir/nfcorpus", split="test")
    queries = ds.queries()[: args.queries] if args.queries else ds.queries()
    bm25 = Retriever("bm25")
    bm25.index(ds)
    run = bm25.search(queries, k=args.depth)
    qrels = ds.qrels()
    report = {"dataset": "beir/nfcorpus test", "queries": len(queries), "depth": args.depth, "budget": args.budget,
              "dtype": args.dtype, "machine": platform.processor() or platform.machine(),
              "bm25": round(evaluate(run, qrels, ["nDCG@10"]).aggregate["nDCG@10"], 4), "rows": []}
    base: dict = {"dtype": args.dtype}
    if args.threads:
        base["threads"] = args.threads
    if args.budget:
        base["max_doc_tokens"] = args.budget
    for preset in args.presets:
        for condition in ("truncate", "max"):
            overrides = dict(base)
            if condition == "max":
                overrides["chunking"] = "max"
                if args.budget:
                    overrides["chunk_tokens"] = args.budget
            row = {"preset": preset, "condition": condition, **measure(preset, run, qrels, args.depth, overrides)}
            report["rows"].append(row)
            print(json.dumps(row), flush=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"\nNFCorpus test, {report['queries']} queries x BM25 top-{args.depth} (BM25 nDCG@10 {report['bm25']}), "
          f"{args.dtype}\n")
    print("| preset | condition | nDCG@10 | over budget (budget) | windows | model calls | prompt tokens | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in report["rows"]:
        print(f"| {r['preset']} | {r['condition']} | {r['nDCG@10']:.4f} | {r['over_budget']}/{r['candidates']} "
              f"({r['budget']}) | {r['chunks'] or r['candidates']} | {r['model_calls']} | {r['prompt_tokens']} "
              f"| {r['wall_s']} |")


if __name__ == "__main__":
    main()
