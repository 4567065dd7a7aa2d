"""Pointwise SmolLM2 on 10 DL19 queries x BM25 top-20: plain batches vs the hf prefix cache, in fp32 and bf16.

    PYTHONPATH=$PWD:$PWD/eval RERANKKIT_DATA=/work/shared/data HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
        python eval/prefix_cache_pointwise.py

Prints nDCG@10 of each arm and, per dtype, how far the prefix cache's scores are from plain batches
(eval/speed.md quotes it: fp32 agrees to ~1e-5, bf16's quantised log-odds move with the batch).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from pairwise_common import hf_backend, load_dl19, ndcg10  # noqa: E402

from rerankkit import Reranker  # noqa: E402
from rerankkit.types import Run  # noqa: E402

torch.set_num_threads(1)
run, qrels = load_dl19(20, queries=10)
items = [(r.query, [d.doc for d in r.docs]) for r in run.values()]
res = {}
for dt in ("fp32", "bf16"):
    for on in (False, True):
        be = hf_backend(dt, prefix_cache=on)
        rr = Reranker("pointwise-smollm2-135m", backend_instance=be)
        out = rr.rerank_many(items)
        res[dt, on] = out
        scores = {(r.query.qid, sd.doc.docid): sd.score for r in out for sd in r.docs}
        res[dt, on, "s"] = scores
        print(dt, "prefix_cache" if on else "plain", f"nDCG@10 {ndcg10(Run(out), qrels):.4f}", flush=True)
    a, b = res[dt, False, "s"], res[dt, True, "s"]
    d = np.array([abs(a[k] - b[k]) for k in a])
    same = sum(x.docids == y.docids for x, y in zip(res[dt, False], res[dt, True]))
    print(dt, f"cache vs plain: max|d| {d.max():.2e} median {np.median(d):.2e}, same rankings {same}/10", flush=True)
