"""Pointwise throughput on DL19 with SmolLM2-135M: rerankkit vs a naive loop vs the forward-pass floor.

Side by side in one process, same model weights, same rendered prompts, interleaved query by query:
  rerankkit  Reranker("pointwise-smollm2-135m").rerank_many(...)  (render, tokenise, batch, score, sort)
  naive      one document at a time, full logits for every position, log-softmax of the last one
  floor      one length-sorted batched forward over the pre-tokenised prompts, last-position logits only
             (no rendering, tokenisation, log-softmax or sorting: the compute a pointwise reranker cannot avoid)

    python eval/bench_pointwise.py --queries 10 --docs 100 --dtypes fp32 bf16 --out eval/results/pointwise_speed.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from rerankkit import Reranker
from rerankkit.data import load_dataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--docs", type=int, default=100)
    ap.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--out", default="eval/results/pointwise_speed.json")
    args = ap.parse_args()

    run = load_dataset("trec-dl-2019/passage").candidates().head(args.queries).top(args.docs)
    items = [(r.query, [sd.doc for sd in r.docs]) for r in run.values()]
    n_docs = sum(len(d) for _, d in items)
    results = {"queries": len(items), "docs": n_docs, "threads": torch.get_num_threads(),
               "machine": platform.processor() or platform.machine(), "torch": torch.__version__, "rows": []}
    for dtype in args.dtypes:
        rr = Reranker("pointwise-smollm2-135m", dtype=dtype, batch_size=args.batch_size)
        be = rr.backend
        strategy = rr.strategy
        # the exact token sequences rerankkit scores (same truncation, same rendering)
        from rerankkit.strategies.base import QueryContext
        from rerankkit.strategies.truncation import Truncator

        ctx = QueryContext(be, Truncator(be, strategy.max_doc_tokens))
        reqs = [req for q, docs in items for req in strategy.requests(q, docs, ctx)]
        seqs = [be.encode(be.render(r.prompt)) for r in reqs]
        tokens = sum(len(s) for s in seqs)
        choice_ids = sorted({be.continuation_ids(be.render(reqs[0].prompt), c)[0] for c in reqs[0].choices})

        rr.rerank_many(items[:1])  # warm-up (allocator, kernels)
        # interleaved per query, so load from other processes hits all three methods alike
        ours = floor = naive = 0.0
        offset = 0
        for item in items:
            q_seqs = seqs[offset : offset + len(item[1])]
            offset += len(item[1])
            t = time.perf_counter()
            rr.rerank_many([item])
            ours += time.perf_counter() - t

            t = time.perf_counter()
            with torch.inference_mode():
                for batch in be._batches([len(s) for s in q_seqs]):
                    be._causal_forward([q_seqs[i] for i in batch], keep=1)
            floor += time.perf_counter() - t

            t = time.perf_counter()
            with torch.inference_mode():
                for s in q_seqs:
                    logits = be.model(input_ids=torch.tensor([s], device=be.device)).logits  # every position
                    torch.log_softmax(logits[0, -1].float(), -1)[choice_ids].tolist()
            naive += time.perf_counter() - t

        row = {"dtype": dtype, "prompt_tokens": tokens, "rerankkit_s": round(ours, 2), "floor_s": round(floor, 2),
               "naive_s": round(naive, 2), "rerankkit_docs_per_s": round(n_docs / ours, 2),
               "floor_docs_per_s": round(n_docs / floor, 2), "naive_docs_per_s": round(n_docs / naive, 2),
               "speedup_vs_naive": round(naive / ours, 2), "ratio_to_floor": round(ours / floor, 3)}
        results["rows"].append(row)
        print(json.dumps(row), flush=True)
        rr.close()
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
