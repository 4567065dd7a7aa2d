"""Does vLLM (CPU build, in-process) score like the hf backend on the same model and prompts?

SmolLM2-135M-Instruct (the packaged GGUF, dequantised to one fp32 folder that both engines load), fp32 on
both sides, DL19 BM25 candidates:

- pointwise yes/no: per-document log-odds |Δ| (max, median) and Kendall tau per query;
- PRP (sliding, scoring mode) and setwise (heapsort, scoring mode): every comparison the hf run asked is
  asked again of vLLM, word for word; a decision is the answer with the highest log-prob; reported: the
  share of identical decisions and the largest |Δ| between the two answers' log-prob margins; then the
  whole run on vLLM, whose ranking is compared with hf's.

Run it from the repository root with .venv-vllm's python (it needs vLLM's CPU build; ~30 min on 2 cores):

    flock /tmp/rerankkit-heavy.lock .venv-vllm/bin/python eval/vllm_parity.py --queries 10 --depth 20 \\
        --out eval/results/vllm_parity.json

The tests in tests/vllm_tier run the same functions on a slice (3 queries x 10 documents).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def kendall_tau(a: Sequence[str], b: Sequence[str]) -> float:
    """Kendall tau between two orderings of the same items (1.0: identical)."""
    pos = {x: i for i, x in enumerate(b)}
    n = len(a)
    s = sum(1 if pos[a[i]] < pos[a[j]] else -1 for i in range(n) for j in range(i + 1, n))
    return s / (n * (n - 1) / 2) if n > 1 else 1.0


class Recording:
    """A backend that passes every call through and keeps the score requests with their answers."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.scored: list[tuple[Any, np.ndarray]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def score(self, requests):
        out = self.inner.score(requests)
        self.scored.extend(zip(requests, out))
        return out


def pointwise_parity(ref: Any, other: Any, items: list, preset: str = "pointwise-smollm2-135m") -> dict[str, Any]:
    """Per-document log-odds |Δ| and per-query Kendall tau of ``other`` against ``ref``."""
    from rerankkit import Reranker

    a = Reranker(preset, backend_instance=ref).rerank_many(items)
    b = Reranker(preset, backend_instance=other).rerank_many(items)
    deltas, taus = [], []
    for ra, rb in zip(a, b):
        sa = {sd.docid: sd.score for sd in ra.docs}
        deltas += [abs(sa[sd.docid] - sd.score) for sd in rb.docs]
        taus.append(kendall_tau(ra.docids, rb.docids))
    return {"queries": len(items), "documents": len(deltas), "max_abs_delta": max(deltas),
            "median_abs_delta": statistics.median(deltas), "kendall_tau": taus, "min_kendall_tau": min(taus),
            "rankings_identical": sum(ra.docids == rb.docids for ra, rb in zip(a, b))}


def decision_parity(ref: Any, other: Any, items: list, preset: str, **overrides: Any) -> dict[str, Any]:
    """The comparisons of a ``ref`` run asked again of ``other``: identical decisions, margin |Δ|, and the
    rankings of a full run on each."""
    from rerankkit import Reranker

    rec = Recording(ref)
    a = Reranker(preset, backend_instance=rec, **overrides).rerank_many(items)
    requests = [r for r, _ in rec.scored]
    again = other.score(requests) if requests else []
    same, margins = 0, []
    for (_, x), y in zip(rec.scored, again):
        same += int(np.argmax(x) == np.argmax(y))
        if len(x) > 1:  # the best answer's lead over the second, on each side
            xs, ys = np.sort(x)[::-1], np.sort(y)[::-1]
            margins.append(abs((xs[0] - xs[1]) - (ys[0] - ys[1])))
    b = Reranker(preset, backend_instance=other, **overrides).rerank_many(items)
    return {"comparisons": len(requests), "identical_decisions": same,
            "identical_share": same / len(requests) if requests else 1.0,
            "max_margin_delta": max(margins, default=0.0),
            "rankings_identical": sum(ra.docids == rb.docids for ra, rb in zip(a, b)), "queries": len(items),
            "kendall_tau": [kendall_tau(ra.docids, rb.docids) for ra, rb in zip(a, b)]}


def dl19_items(queries: int, depth: int) -> list:
    from rerankkit.data import load_dataset

    run = load_dataset("trec-dl-2019/passage").candidates("bm25")
    return [(r.query, [sd.doc for sd in r.docs[:depth]]) for r in list(run.values())[:queries]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--prp-k", type=int, default=3, help="PRP sliding passes (each: 2 x (depth - 1) comparisons)")
    ap.add_argument("--setwise-k", type=int, default=10, help="setwise heapsort top-k")
    ap.add_argument("--kv-cache-gb", type=float, default=1.0)
    ap.add_argument("--out", default="eval/results/vllm_parity.json")
    args = ap.parse_args()

    from rerankkit.backends.hf import HFBackend
    from rerankkit.backends.vllm import VLLMBackend

    items = dl19_items(args.queries, args.depth)
    hf = HFBackend("packaged:smollm2-135m-instruct", dtype="fp32", device="cpu")
    t0 = time.perf_counter()
    vl = VLLMBackend("packaged:smollm2-135m-instruct", dtype="fp32", enforce_eager=True,
                     kv_cache_gb=args.kv_cache_gb, max_model_len=4096)
    report: dict[str, Any] = {"model": "SmolLM2-135M-Instruct (packaged GGUF, dequantised to fp32)",
                              "dtype": "fp32", "vllm": vl.build, "queries": args.queries, "depth": args.depth,
                              "vllm_start_s": round(time.perf_counter() - t0, 1)}
    cases = [("pointwise", lambda: pointwise_parity(hf, vl, items)),
             ("prp-sliding", lambda: decision_parity(hf, vl, items, "prp-smollm2-135m", method="sliding", k=args.prp_k)),
             ("setwise-heapsort", lambda: decision_parity(hf, vl, items, "setwise-smollm2-135m", method="heapsort",
                                                          k=args.setwise_k))]
    for name, fn in cases:
        t = time.perf_counter()
        report[name] = fn()
        report[name]["wall_s"] = round(time.perf_counter() - t, 1)
        print(name, json.dumps(report[name]), flush=True)
    vl.close()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
