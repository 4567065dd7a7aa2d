"""What fp32 answer-choice logits (the hf backend's ``fp32_choices``) change in bf16: SmolLM2 on DL19, BM25 top-20.

    PYTHONPATH=$PWD:$PWD/eval RERANKKIT_DATA=/work/shared/data HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \\
        TOKENIZERS_PARALLELISM=false python eval/fp32_choices.py --queries 10 --threads 2 \\
        --out eval/results/fp32_choices.json

Arms per preset (pointwise, PRP sliding-10 and setwise heapsort, with their shipped defaults): fp32 (the
reference), bf16 with the model's own logits (``fp32_choices=false``) and bf16 with the choices' logits
recomputed in fp32 (the default). Each bf16 arm is compared with fp32: rankings identical per query, Kendall tau,
nDCG@10, and for pointwise the |difference| of each document's log-odds; s/query of each arm (the arms run one
query after another, interleaved, so machine load hits them alike).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from pairwise_common import hf_backend, load_dl19, ndcg10  # noqa: E402
from vllm_parity import kendall_tau  # noqa: E402  (plain Python: no vLLM import)

from rerankkit import Reranker  # noqa: E402
from rerankkit.types import Run  # noqa: E402

PRESETS = {  # name -> (preset, overrides)
    "pointwise": ("pointwise-smollm2-135m", {}),
    "PRP sliding-10": ("prp-smollm2-135m", {"method": "sliding", "k": 10}),
    "setwise heapsort": ("setwise-smollm2-135m", {"method": "heapsort", "k": 10}),
}
ARMS = {"fp32": ("fp32", True), "bf16 model logits": ("bf16", False), "bf16 fp32 choices": ("bf16", True)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    run, qrels = load_dl19(args.depth, queries=args.queries)
    items = [(r.query, [d.doc for d in r.docs]) for r in run.values()]
    backends = {arm: hf_backend(dt, fp32_choices=on) for arm, (dt, on) in ARMS.items()}
    report: dict = {"queries": len(items), "depth": args.depth, "threads": args.threads,
                    "date": time.strftime("%Y-%m-%d %H:%M"), "presets": {}}
    for name in [p for p in args.presets.split(",") if p]:
        preset, overrides = PRESETS[name]
        rr = {arm: Reranker(preset, backend_instance=be, **overrides) for arm, be in backends.items()}
        out: dict = {arm: [] for arm in ARMS}
        wall: dict = {arm: [] for arm in ARMS}
        for i, item in enumerate(items):
            order = list(ARMS)[i % 3:] + list(ARMS)[: i % 3]
            for arm in order:
                t = time.perf_counter()
                out[arm].append(rr[arm].rerank_many([item])[0])
                wall[arm].append(time.perf_counter() - t)
        ref = out["fp32"]
        entry: dict = {}
        for arm in ARMS:
            e = {"s_per_query": statistics.mean(wall[arm]), "ndcg10": ndcg10(Run(out[arm]), qrels)}
            if arm != "fp32":
                e["same_rankings"] = sum(a.docids == b.docids for a, b in zip(out[arm], ref))
                e["same_top10"] = sum(a.docids[:10] == b.docids[:10] for a, b in zip(out[arm], ref))
                e["kendall_tau_mean"] = statistics.mean(kendall_tau(a.docids, b.docids) for a, b in zip(out[arm], ref))
                if name == "pointwise":
                    s_ref = {(r.query.qid, sd.doc.docid): sd.score for r in ref for sd in r.docs}
                    d = np.array([abs(sd.score - s_ref[r.query.qid, sd.doc.docid]) for r in out[arm] for sd in r.docs])
                    e["abs_diff_log_odds"] = {"median": float(np.median(d)), "max": float(d.max())}
            entry[arm] = e
            print(name, arm, json.dumps(e), flush=True)
        report["presets"][name] = entry
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
