"""Speed of PRP sliding-10 and heapsort: lock-step batching vs one query at a time vs llm-rankers.

    PYTHONPATH=$PWD RERANKKIT_DATA=/work/shared/data python eval/pairwise_bench.py \
        --queries 10 --depth 20 --dtype bf16 --threads 1 \
        --llmr-python /tmp/llmr-venv/bin/python --out eval/results/pairwise_bench.json

Same model (SmolLM2-135M-Instruct from the packaged GGUF, materialised as a folder for llm-rankers),
same candidates (DL19 BM25 top-``depth`` of the first ``queries`` queries), same dtype and thread
count, passages cut to 128 tokens on both sides. Configurations, all in scoring mode for rerankkit:

- lock-step: all queries in one ``rerank_many``: every backend call carries the ready comparisons
  of every query (and, within a query, independent comparisons: heapify levels, overlapping passes);
- one query at a time: the same algorithm, ``rerank_many`` per query;
- one comparison per call: one query at a time and ``parallel=False`` (2 prompts per backend call);
- ``--max-padding``: the hf backend's cap on the share of padding per batch (``1.0``, the default: no
  cap); several values run side by side;
- llm-rankers: its PRP heapsort / bubblesort (generation of one token after " Passage:"), one query at
  a time, through ``pairwise_llmrankers.py`` in its own venv.

Wall time and process CPU time are both reported: the box is shared, and CPU time is less
sensitive to other processes. No prompt cache is used here.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

from pairwise_common import hf_backend, load_dl19, ndcg10

from rerankkit.reranker import Reranker
from rerankkit.types import Ranking, Run


def ours(backend, items, method: str, mode: str, lockstep: bool, parallel: bool) -> dict:
    reranker = Reranker("prp-smollm2-135m", backend_instance=backend, method=method, k=10, mode=mode,
                        parallel=parallel)
    u0 = backend.usage.snapshot()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    rankings = reranker.rerank_many(items) if lockstep else [reranker.rerank_many([it])[0] for it in items]
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    u1 = backend.usage.snapshot()
    calls = u1["model_calls"] - u0["model_calls"]
    batches = u1["batches"] - u0["batches"]
    return {"wall_s": wall, "cpu_s": cpu, "prompts": calls, "backend_calls": batches,
            "prompts_per_backend_call": round(calls / max(batches, 1), 1),
            "prompt_tokens": u1["prompt_tokens"] - u0["prompt_tokens"],
            "comparisons": sum(r.metadata["comparisons"] for r in rankings),
            "rankings": {r.query.qid: r.docids for r in rankings}}


def llm_rankers(python: str, model_dir: str, items, method: str, dtype: str, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "items.json"
        src.write_text(json.dumps([{"qid": q.qid, "query": q.text, "docs": [[d.docid, d.prompt_text()] for d in docs]}
                                   for q, docs in items]))
        dst = Path(tmp) / "out.json"
        script = Path(__file__).with_name("pairwise_llmrankers.py")
        subprocess.run([python, str(script), "--model", model_dir, "--items", str(src), "--method", method,
                        "--k", "10", "--dtype", dtype, "--threads", str(threads), "--out", str(dst)], check=True)
        res = json.loads(dst.read_text())
    comps = sum(q["comparisons"] for q in res["queries"])
    return {"wall_s": res["wall_s"], "cpu_s": res["cpu_s"], "prompts": 2 * comps, "backend_calls": comps,
            "prompts_per_backend_call": 2.0, "prompt_tokens": sum(q["prompt_tokens"] for q in res["queries"]),
            "comparisons": comps, "rankings": {q["qid"]: q["ranking"] for q in res["queries"]}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--methods", default="sliding,heapsort")
    ap.add_argument("--configs", default="lockstep,single,sequential,llm-rankers")
    ap.add_argument("--mode", default="score")
    ap.add_argument("--llmr-python", default="/tmp/llmr-venv/bin/python")
    ap.add_argument("--max-padding", default="1.0",
                    help="comma-separated hf backend max_padding values to compare (each runs every rerankkit config)")
    ap.add_argument("--out", default="eval/results/pairwise_bench.json")
    args = ap.parse_args()

    run, qrels = load_dl19(args.depth, queries=args.queries)
    items = [(r.query, [sd.doc for sd in r.docs]) for r in run.values()]
    backend = hf_backend(args.dtype, threads=args.threads)
    backend.score([])  # model loaded before timing
    out_path = Path(args.out)
    results = json.loads(out_path.read_text()) if out_path.exists() else []
    paddings = args.max_padding.split(",")
    for method in args.methods.split(","):
        for config, padding in [(c, p) for c in args.configs.split(",") for p in (paddings if c != "llm-rankers" else [""])]:
            if config == "llm-rankers":
                res = llm_rankers(args.llmr_python, backend.path, items,
                                  "bubblesort" if method == "sliding" else method, args.dtype, args.threads)
            else:
                backend.max_padding = float(padding)  # only batching changes, not the model
                res = ours(backend, items, method, args.mode, lockstep=config == "lockstep",
                           parallel=config != "sequential")
                res["max_padding"] = backend.max_padding
            rankings = res.pop("rankings")
            reranked = Run(Ranking.from_order(r.query, [sd.doc for sd in r.docs],
                                              [r.docids.index(d) for d in rankings[r.query.qid]])
                           for r in run.values())
            row = {"method": method, "config": config, "mode": "generate (1 token)" if config == "llm-rankers"
                   else args.mode, "queries": len(items), "depth": args.depth, "dtype": args.dtype,
                   "threads": args.threads, **{k: round(v, 2) if isinstance(v, float) else v for k, v in res.items()},
                   "wall_s_per_query": round(res["wall_s"] / len(items), 2),
                   "cpu_s_per_query": round(res["cpu_s"] / len(items), 2),
                   "ndcg@10": round(ndcg10(reranked, qrels), 4), "rankings": rankings}
            results.append(row)
            out_path.parent.mkdir(parents=True, exist_ok=True)
            out_path.write_text(json.dumps(results, indent=1))
            print(json.dumps({k: v for k, v in row.items() if k != "rankings"}), flush=True)


if __name__ == "__main__":
    main()
