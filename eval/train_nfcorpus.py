"""NFCorpus test, BM25 top-20, pointwise SmolLM2-135M before and after LoRA training (issue 10).

    rerankkit train eval/training/nfcorpus-pointwise.yaml            # trains on NFCorpus dev (resumable)
    python eval/train_nfcorpus.py --adapter runs/train/nfcorpus-pointwise-smollm2/adapter \
        --out eval/results/train_nfcorpus.json

Both rerankings use the same preset, dtype and document budget as training (max_doc_tokens=128, bf16).
"""

from __future__ import annotations

import argparse
import json
import time

from rerankkit import Reranker
from rerankkit.data import load_dataset
from rerankkit.eval import evaluate
from rerankkit.retrievers import Retriever


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--adapter", required=True)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--queries", type=int, default=None, help="first N test queries (default: all)")
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--max-doc-tokens", type=int, default=128)
    ap.add_argument("--arms", nargs="+", default=["before", "after"], choices=["before", "after"],
                    help="which rerankings to run (the base model's 'before' does not depend on the adapter)")
    ap.add_argument("--out", default="eval/results/train_nfcorpus.json")
    args = ap.parse_args()

    ds = load_dataset("beir/nfcorpus", split="test")
    queries = ds.queries()[: args.queries] if args.queries else ds.queries()
    bm25 = Retriever("bm25")
    bm25.index(ds)
    run = bm25.search(queries, k=args.depth)
    qrels = ds.qrels()
    scope = [q.qid for q in queries]  # the evaluated queries (all, or the first N)
    rows = {"bm25": evaluate(run, qrels, ["nDCG@10"], queries=scope).aggregate}
    for name, extra in (("before", {}), ("after", {"adapter": args.adapter})):
        if name not in args.arms:
            continue
        rr = Reranker("pointwise-smollm2-135m", dtype=args.dtype, max_doc_tokens=args.max_doc_tokens, **extra)
        t = time.perf_counter()
        out = rr.rerank_run(run, depth=args.depth, chunk_size=16)
        rows[name] = {**evaluate(out, qrels, ["nDCG@10"], queries=scope).aggregate, "wall_s": round(time.perf_counter() - t, 1)}
        print(name, rows[name], flush=True)
        rr.close()
    result = {"queries": len(queries), "depth": args.depth, "dtype": args.dtype,
              "max_doc_tokens": args.max_doc_tokens, "adapter": args.adapter, "results": rows}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
