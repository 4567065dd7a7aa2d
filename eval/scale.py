"""Scale-out on Ray: 1 process x 2 threads vs 2 Ray actors x 1 thread on the same work, plus the hub's throughput.

    python eval/scale.py --queries 10 --depth 20 --out eval/results/scale.json          # the full measurement
    python eval/scale.py --queries 2 --depth 5 --methods pointwise --out /tmp/scale.json  # a smoke check

For each method (SmolLM2-135M fp32 on TREC DL19, BM25 top-`depth` of the first `queries` queries):
1. speed, `local_1x2`: one process, torch with 2 threads, all queries in one lock-step run (model load timed
   apart); `ray_2x1`: a local Ray instance with 2 actors x 1 CPU (each: 1 torch thread, its own model),
   queries sharded by candidate count, each shard in lock-step; timed end to end (actors start and load the
   model) and from the moment both actors were ready. Default batching on both sides, so scores may differ
   in the last digits (batch shape and thread count change fp32 sums): rankings and the largest score
   difference are recorded;
2. exactness: the same with 1 thread and one prompt per forward pass on both sides (the arithmetic no
   longer depends on batch mates or threads): the Ray run must equal the single-process run exactly.
Then `hub`: round trips per second of the answer-cache hub (one actor writing chunks of 32 entries and
reading them back), the number that bounds how many GPUs one driver-side cache can feed.
No answer cache is shared between the configurations: every run computes every answer.
Prints and writes one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

METHODS = {
    "pointwise": ("pointwise-smollm2-135m", {}),
    "prp-heapsort": ("prp-smollm2-135m", {"method": "heapsort", "k": 10}),
}


def local_run(preset: str, overrides: dict, run) -> tuple[dict, object]:
    from rerankkit import Reranker

    t0 = time.perf_counter()
    r = Reranker(preset, dtype="fp32", **overrides)
    _ = r.backend
    load = time.perf_counter() - t0
    t1 = time.perf_counter()
    out = r.rerank_run(run)
    wall = time.perf_counter() - t1
    r.close()
    return {"load_s": round(load, 2), "rerank_s": round(wall, 2), "total_s": round(load + wall, 2),
            "usage": out.metadata["usage"]}, out


def ray_run(preset: str, overrides: dict, run, executor) -> tuple[dict, object]:
    from rerankkit import Reranker

    t0 = time.perf_counter()
    out = Reranker(preset, dtype="fp32", **overrides).rerank_run(run, executor=executor)
    total = time.perf_counter() - t0
    ex = out.metadata["executor"]
    return {"total_s": round(total, 2), "start_s": ex.get("start_s"),
            "rerank_s": round(total - (ex.get("start_s") or 0.0), 2), "usage": out.metadata["usage"],
            "executor": {k: ex[k] for k in ("worker_count", "nodes", "shard_sizes", "shard_candidates",
                                            "model_calls", "repeated_calls", "restarts") if k in ex}}, out


def same(a, b) -> dict:
    order = all(a[q].docids == b[q].docids for q in a)
    diff = max((abs(x.score - y.score) for q in a for x, y in zip(a[q].docs, b[q].docs)), default=0.0)
    return {"same_order": order, "max_score_diff": diff, "identical": order and diff == 0.0}


def hub_throughput(executor, rounds: int, chunk: int) -> dict:
    """One actor: `rounds` x (put_many of `chunk` entries, get_many of them) through the hub."""
    res = executor.map(_HubBench(rounds, chunk), [0], total=1)
    return res.results[0]


class _HubBench:
    def __init__(self, rounds: int, chunk: int):
        self.rounds, self.chunk = rounds, chunk

    def setup(self, ctx):
        return None

    def run(self, state, shard, ctx):
        from rerankkit.answer_cache import Entry

        store = ctx.store
        t0 = time.perf_counter()
        for r in range(self.rounds):
            entries = [Entry(f"bench-{r}-{i}", "score", [-0.1, -2.3], 250, 0, 0.01) for i in range(self.chunk)]
            store.put_many(entries, "bench")
            store.get_many([e.key for e in entries])
        dt = time.perf_counter() - t0
        ctx.done("hub")
        return {"rounds": self.rounds, "chunk": self.chunk, "seconds": round(dt, 3),
                "round_trips_per_s": round(2 * self.rounds / dt, 1),
                "entries_per_s": round(self.rounds * self.chunk / dt, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--hub-rounds", type=int, default=500)
    ap.add_argument("--no-exact", dest="exact", action="store_false",
                    help="skip the bit-exactness runs (1 thread, batch size 1 on both sides)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    # a private, throwaway local instance: without this, Ray 2.60 turns on token authentication and leaves
    # ~/.ray/auth_token behind, which later `ray start` nodes on this machine then require
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    from rerankkit import load_dataset
    from rerankkit.executors import RayExecutor

    run = load_dataset("trec-dl-2019/passage").candidates("bm25").head(args.queries).top(args.depth)
    report: dict = {"queries": args.queries, "depth": args.depth, "cpus": os.cpu_count(),
                    "machine": platform.platform(terse=True), "methods": {}}
    executor = RayExecutor(workers=2, num_cpus=1)  # a local Ray instance: 2 actors x 1 CPU
    try:
        executor.connect()
        for name in args.methods.split(","):
            preset, overrides = METHODS[name]
            rows = {}
            # speed: 1 process x 2 torch threads vs 2 actors x 1 thread, default batching on both sides
            loc, a = local_run(preset, {**overrides, "threads": 2}, run)
            ray, b = ray_run(preset, overrides, run, executor)
            rows["speed"] = {"local_1x2": loc, "ray_2x1": ray, "equal": same(a, b),
                             "speedup_rerank": round(loc["rerank_s"] / ray["rerank_s"], 3) if ray["rerank_s"] else None,
                             "speedup_end_to_end": round(loc["total_s"] / ray["total_s"], 3)}
            print(json.dumps({name: rows["speed"]}), flush=True)
            if args.exact:  # the same arithmetic on both sides: 1 thread, one prompt per forward pass
                same_math = {**overrides, "threads": 1, "batch_size": 1}
                loc, a = local_run(preset, same_math, run)
                ray, b = ray_run(preset, same_math, run, executor)
                rows["exact"] = {"local_1x1_batch1": loc, "ray_2x1_batch1": ray, "equal": same(a, b)}
                print(json.dumps({name: rows["exact"]}), flush=True)
            report["methods"][name] = rows
        report["hub"] = hub_throughput(executor, args.hub_rounds, 32)
        print(json.dumps({"hub": report["hub"]}), flush=True)
    finally:
        executor.close()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
