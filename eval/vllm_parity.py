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

Two more cases, named with ``--cases``: ``serve`` starts ``vllm serve`` (vLLM's OpenAI-compatible server, the
same fp32 settings) and compares the ``openai`` backend on it with vLLM in-process (pointwise and PRP sliding);
``adapter`` compares a LoRA adapter served through vLLM's ``LoRARequest`` with hf + peft on the same adapter
(``--adapter DIR``, or one trained here by ``rerankkit train`` as tests/vllm_tier does):

    flock /tmp/rerankkit-heavy.lock .venv-vllm/bin/python eval/vllm_parity.py --queries 10 --depth 20 \\
        --cases serve,adapter --out eval/results/vllm_parity_serve_adapter.json

The tests in tests/vllm_tier run the same functions on a slice (3 queries x 10 documents).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
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


ADAPTER_TOPICS = ["apples", "rivers", "engines", "violins", "glaciers", "tax law"]


def train_small_adapter(root: Path) -> Path:
    """``rerankkit train`` (the command line) on a tiny BEIR-layout collection written under ``root``: a few
    steps of LoRA on every linear layer of SmolLM2, with a learning rate high enough that the adapter visibly
    changes scores. Returns the adapter folder."""
    import yaml

    coll = root / "collection"
    (coll / "qrels").mkdir(parents=True, exist_ok=True)
    topics = ADAPTER_TOPICS
    with open(coll / "corpus.jsonl", "w") as f:
        for t, topic in enumerate(topics):
            for k in range(3):
                f.write(json.dumps({"_id": f"d{t}-{k}", "title": "", "text": f"a short note {k} about {topic}"}) + "\n")
    with open(coll / "queries.jsonl", "w") as f:
        for t, topic in enumerate(topics):
            f.write(json.dumps({"_id": f"q{t}", "text": f"tell me about {topic}"}) + "\n")
    for split, qs in (("dev", range(4)), ("test", range(4, 6))):
        with open(coll / "qrels" / f"{split}.tsv", "w") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            f.writelines(f"q{t}\td{t}-0\t1\n" for t in qs)
    with open(coll / "teacher.run", "w") as f:
        for t in range(len(topics)):
            docs = [f"d{t}-{k}" for k in range(3)] + [f"d{(t + 1) % len(topics)}-{k}" for k in range(3)]
            f.writelines(f"q{t} Q0 {d} {r + 1} {10 - r} teacher\n" for r, d in enumerate(docs))
    cfg = {"preset": "pointwise-smollm2-135m", "output_dir": str(root / "out"), "dataset": str(coll), "split": "dev",
           "eval_split": "test", "negatives": None, "teacher_run": str(coll / "teacher.run"),
           "negatives_per_query": 2, "batch_size": 4, "learning_rate": 2e-3, "max_steps": 4, "warmup_steps": 0,
           "checkpoint_every": 4, "seed": 5, "dtype": "fp32",
           "lora": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": "all-linear"}}
    (root / "train.yaml").write_text(yaml.safe_dump(cfg))
    subprocess.run([sys.executable, "-m", "rerankkit", "train", str(root / "train.yaml")], check=True, timeout=600,
                   env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True)
    return root / "out" / "adapter"


def served_parity(in_process: Any, items: list, *, prp_k: int, kv_cache_gb: float, max_model_len: int,
                  log_dir: Path) -> dict[str, Any]:
    """``vllm serve`` + the ``openai`` backend against vLLM in-process: pointwise log-odds and rankings, PRP
    sliding decisions and rankings."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "vllm_tier"))
    from serve_vllm import start_vllm_server

    from rerankkit.backends.openai_compat import OpenAIBackend

    t = time.perf_counter()  # the server loads the very folder the in-process engine loaded
    server = start_vllm_server(in_process.kw["model"], log_dir, max_model_len=max_model_len, kv_cache_gb=kv_cache_gb)
    start_s = round(time.perf_counter() - t, 1)
    backend = OpenAIBackend("packaged:smollm2-135m-instruct", base_url=server.url, max_concurrency=8, timeout=300)
    try:
        return {"server_start_s": start_s, "endpoint": backend.options()["endpoint"],
                "pointwise": pointwise_parity(in_process, backend, items),
                "prp-sliding": decision_parity(in_process, backend, items, "prp-smollm2-135m", method="sliding",
                                               k=prp_k)}
    finally:
        backend.close()
        server.stop()


def adapter_parity(base_hf: Any, items: list, adapter: Path, *, kv_cache_gb: float,
                   max_model_len: int) -> dict[str, Any]:
    """hf + peft against vLLM + ``LoRARequest`` on the same adapter (pointwise), and how far the adapter moves
    hf's scores from the base model's (so that the comparison is not the base model's)."""
    from rerankkit.backends.hf import HFBackend
    from rerankkit.backends.vllm import VLLMBackend

    hf = HFBackend("packaged:smollm2-135m-instruct", dtype="fp32", device="cpu", adapter=str(adapter))
    vl = VLLMBackend("packaged:smollm2-135m-instruct", dtype="fp32", enforce_eager=True, adapter=str(adapter),
                     kv_cache_gb=kv_cache_gb, max_model_len=max_model_len)
    try:
        moved = pointwise_parity(base_hf, hf, items)
        return {"adapter": str(adapter), "lora_request": vl.options()["adapter"],
                "adapter_moves_hf_scores_by_max": moved["max_abs_delta"],
                "adapter_moves_hf_scores_by_median": moved["median_abs_delta"],
                **pointwise_parity(hf, vl, items)}
    finally:
        vl.close()


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
    ap.add_argument("--cases", default="pointwise,prp-sliding,setwise-heapsort",
                    help="comma-separated: pointwise, prp-sliding, setwise-heapsort, serve, adapter")
    ap.add_argument("--adapter", default=None,
                    help="LoRA adapter folder for the adapter case (default: train a small one with rerankkit train)")
    ap.add_argument("--out", default="eval/results/vllm_parity.json")
    args = ap.parse_args()

    from rerankkit.backends.hf import HFBackend
    from rerankkit.backends.vllm import VLLMBackend

    wanted = [c.strip() for c in args.cases.split(",") if c.strip()]
    known = ("pointwise", "prp-sliding", "setwise-heapsort", "serve", "adapter")
    if unknown := [c for c in wanted if c not in known]:
        ap.error(f"unknown case(s) {unknown}; known: {', '.join(known)}")
    items = dl19_items(args.queries, args.depth)
    work = Path(tempfile.mkdtemp(prefix="vllm-parity-"))
    hf = HFBackend("packaged:smollm2-135m-instruct", dtype="fp32", device="cpu")
    t0 = time.perf_counter()
    vl = VLLMBackend("packaged:smollm2-135m-instruct", dtype="fp32", enforce_eager=True,
                     kv_cache_gb=args.kv_cache_gb, max_model_len=4096)
    report: dict[str, Any] = {"model": "SmolLM2-135M-Instruct (packaged GGUF, dequantised to fp32)",
                              "dtype": "fp32", "vllm": vl.build, "queries": args.queries, "depth": args.depth,
                              "vllm_start_s": round(time.perf_counter() - t0, 1)}
    cases = {"pointwise": lambda: pointwise_parity(hf, vl, items),
             "prp-sliding": lambda: decision_parity(hf, vl, items, "prp-smollm2-135m", method="sliding", k=args.prp_k),
             "setwise-heapsort": lambda: decision_parity(hf, vl, items, "setwise-smollm2-135m", method="heapsort",
                                                         k=args.setwise_k),
             "serve": lambda: served_parity(vl, items, prp_k=args.prp_k, kv_cache_gb=args.kv_cache_gb,
                                            max_model_len=4096, log_dir=work),
             "adapter": lambda: adapter_parity(hf, items, Path(args.adapter) if args.adapter else
                                               train_small_adapter(work / "adapter"),
                                               kv_cache_gb=args.kv_cache_gb, max_model_len=4096)}
    for name in wanted:
        fn = cases[name]
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
