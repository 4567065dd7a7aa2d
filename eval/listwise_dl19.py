"""DL19 BM25 top-N reranked by listwise generation and FIRST with one shared model; nDCG@10, time, tokens.

    PYTHONPATH=. python eval/listwise_dl19.py --depth 20 --dtype bf16 --out eval/results/listwise_dl19_bf16.json

Every configuration reranks all queries together (lock-step: one backend call per window round)
through the same backend object, so model, dtype, windows and documents are identical; only the
strategy (and, for one row, the template) differs. Runs alternate, repeated ``--repeats`` times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import ir_measures
from ir_measures import nDCG

from rerankkit import Reranker, Run
from rerankkit.backends import create_backend
from rerankkit.data import load_dataset

CONFIGS = {  # name -> (preset, overrides)
    "first": ("first-smollm2-135m", {}),
    "generation-first-prompt": ("first-smollm2-135m", {"strategy": "listwise"}),
    "generation-rankzephyr-prompt": ("listwise-smollm2-135m", {}),
    # fidelity ablations (#15): FIRST with every identifier sorted by log-prob instead of rank_llm's top-30
    # rule; FIRST with rank_llm's own alphabetic prompt; RankGPT's conversation prompt
    "first-all-logits": ("first-smollm2-135m", {"top_logprobs": None}),
    "first-rankllm-prompt": ("first-smollm2-135m", {"template": "first-rankllm"}),
    "generation-rankgpt-prompt": ("listwise-smollm2-135m", {"template": "rank-gpt"}),
}


def load_dl19(depth: int) -> tuple[Run, list]:
    """BM25 top-``depth`` candidates of TREC DL19 (43 judged queries) and the NIST qrels (ir-measures records)."""
    ds = load_dataset("trec-dl-2019/passage")
    qrels = [ir_measures.Qrel(q.qid, q.docid, q.relevance) for q in ds.qrels()]
    return ds.candidates("bm25").top(depth), qrels


def ndcg10(run: Run, qrels: list) -> float:
    return float(ir_measures.calc_aggregate([nDCG @ 10], qrels, list(run.to_ir_measures()))[nDCG @ 10])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("RERANKKIT_DATA", "../shared/data"))
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--window", type=int, default=20)
    ap.add_argument("--stride", type=int, default=10)
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--queries", type=int, default=0, help="first N queries only (0 = all 43)")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--chunk-size", type=int, default=0,
                    help="queries reranked together (0 = all: lock-step batches; 1 = one query at a time, latency)")
    ap.add_argument("--out", default="")
    args = ap.parse_args()

    os.environ["RERANKKIT_DATA"] = args.data  # the data root searched first
    run, qrels = load_dl19(args.depth)
    if args.queries:
        run = Run(list(run.values())[: args.queries])
    qids = set(run)
    qrels = [q for q in qrels if q.query_id in qids]
    t0 = time.perf_counter()
    backend = create_backend("hf", "packaged:smollm2-135m-instruct", dtype=args.dtype, batch_size=args.batch_size)
    load_s = time.perf_counter() - t0
    samples: list[str] = []
    generate = backend.generate

    def recording_generate(prompts, max_new_tokens, *args, **kwargs):  # keep a few raw answers for the report
        outs = generate(prompts, max_new_tokens, *args, **kwargs)
        samples.extend(g.text for g in outs[: max(0, 3 - len(samples))])
        return outs

    backend.generate = recording_generate
    result = {
        "depth": args.depth, "window": args.window, "stride": args.stride, "dtype": args.dtype,
        "chunk_size": args.chunk_size or len(run), "batch_size": args.batch_size,
        "queries": len(run), "model_load_s": round(load_s, 2), "bm25_ndcg10": round(ndcg10(run, qrels), 4),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus", "torch_threads": backend.torch.get_num_threads(),
        "configs": {},
    }
    names = [c for c in args.configs.split(",") if c]
    for rep in range(args.repeats):
        for name in names:
            preset, over = CONFIGS[name]
            rr = Reranker(preset, backend_instance=backend, window=args.window, stride=args.stride, **over)
            load_before = round(os.getloadavg()[0], 1)
            out = rr.rerank_run(run, depth=args.depth, chunk_size=args.chunk_size or None)
            m = out.metadata
            row = result["configs"].setdefault(name, {"preset": preset, "overrides": over, "wall_s": []})
            row["wall_s"].append(m["wall_s"])
            row.setdefault("load_avg_before_after", []).append([load_before, round(os.getloadavg()[0], 1)])
            row.update(ndcg10=round(ndcg10(out, qrels), 4), usage=m["usage"], totals=m["totals"],
                       truncated_docs=m["truncated_docs"])
            if name != "first":
                row["raw_answer_samples"] = samples[:3]
                samples.clear()
            print(f"[rep {rep}] {name}: nDCG@10 {row['ndcg10']}  wall {m['wall_s']} s  usage {m['usage']}  "
                  f"totals {m['totals']}", flush=True)
            if args.out:  # keep what is done if a later configuration is interrupted
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                Path(args.out).with_suffix(".partial.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    for row in result["configs"].values():
        row["wall_s_median"] = round(statistics.median(row["wall_s"]), 2)
    if "first" in result["configs"]:
        f = result["configs"]["first"]["wall_s_median"]
        for row in result["configs"].values():
            row["slowdown_vs_first"] = round(row["wall_s_median"] / f, 2)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        Path(args.out).with_suffix(".partial.json").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
