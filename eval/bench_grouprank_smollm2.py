"""GroupRank plumbing with the packaged SmolLM2-135M: do its replies parse, and what does a group cost?

Reranks the BM25 top-``docs`` of the first ``queries`` DL19 queries with ``grouprank-smollm2-135m`` (two
sampled groupings of 20 per query since issue 15, all groups in one batched generation) and reports the
parse counters, the time per group and a few replies; nDCG@10 is the mean over those queries. Extra
``--set KEY=VALUE`` pairs override the preset (e.g. ``repeats=1 temperature=0 parse=lenient`` for the
settings before issue 15). SmolLM2-135M is far too small for this prompt: this is not a quality number.

    nice -n 10 python eval/bench_grouprank_smollm2.py --queries 3 --threads 1 --out eval/results/grouprank_smollm2_dl19.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from rerankkit import Reranker
from rerankkit.data import load_dataset
from rerankkit.eval import evaluate


class Recording:
    """Wraps a backend and keeps the generated replies."""

    def __init__(self, inner):
        self.inner = inner
        self.replies: list[str] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, prompts, max_new_tokens, sampling=None):
        out = self.inner.generate(prompts, max_new_tokens, sampling)
        self.replies.extend(g.text for g in out)
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=3)
    ap.add_argument("--docs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--dtype", default=None, help="the hf backend's dtype (default: the preset's, auto)")
    ap.add_argument("--out", default="eval/results/grouprank_smollm2_dl19.json")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="override a preset parameter (repeatable)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ds = load_dataset("trec-dl-2019/passage")
    run = ds.candidates().head(args.queries).top(args.docs)
    base = Reranker("grouprank-smollm2-135m", **({"dtype": args.dtype} if args.dtype else {}))
    rec = Recording(base.backend)
    from rerankkit.cli._common import parse_sets

    r = Reranker("grouprank-smollm2-135m", backend_instance=rec, **parse_sets(args.sets))
    t = time.perf_counter()
    out_run = r.rerank_run(run)
    wall = time.perf_counter() - t
    counters = {}
    for ranking in out_run.values():
        for k, v in ranking.metadata.items():
            if k.startswith("grouprank_"):
                counters[k] = counters.get(k, 0) + v
    usage = out_run.metadata["usage"]
    out = {"queries": len(run), "docs_per_query": args.docs, "threads": torch.get_num_threads(),
           "dtype": getattr(base.backend, "dtype_name", None), "sets": args.sets,
           "wall_s": round(wall, 1), "s_per_group": round(wall / max(1, counters.get("grouprank_groups", 1)), 1),
           "generated_tokens": usage["generated_tokens"], "prompt_tokens": usage["prompt_tokens"],
           "counters": counters, "ndcg@10_bm25": round(evaluate(run, ds, queries=list(run))["nDCG@10"], 4),
           "ndcg@10_grouprank": round(evaluate(out_run, ds, queries=list(run))["nDCG@10"], 4),
           "replies": [x[:400] for x in rec.replies]}
    print(json.dumps(out, indent=1))
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
