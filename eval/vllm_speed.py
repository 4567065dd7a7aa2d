"""vLLM's CPU build against transformers (the hf backend) on this CPU: throughput, latency and engine start.

One process, the same model (SmolLM2-135M-Instruct, the packaged GGUF dequantised once to a safetensors folder
that every engine loads), the same rendered prompts (rerankkit's presets), DL19 BM25 candidates. The engines
are loaded side by side and interleaved query by query (the order rotates every query, so load from other
processes hits them alike):

- pointwise yes/no over the top ``--pointwise-depth`` (100) of ``--queries`` (10) queries: documents/s;
- PRP-Sliding-10 (scoring mode) over the top ``--prp-depth`` (20) of ``--prp-queries`` (3): s/query;
- FIRST (single-token listwise, window 20, stride 10) over the top ``--first-depth`` (100): s/query;

for each arm of ``--arms`` (hf-fp32, hf-bf16, vllm-fp32, vllm-bf16: vLLM compiled, as it starts by default;
``vllm-bf16-eager`` etc. for ``enforce_eager``), plus every ranking's Kendall tau against the first arm.
Engine start times are measured separately first: eager, compiled with an empty compile cache (cold), and
compiled again (warm), each engine started and closed on its own.

Run from the repository root with .venv-vllm's python, alone on the machine (~50 min on 2 cores):

    flock /tmp/rerankkit-heavy.lock .venv-vllm/bin/python eval/vllm_speed.py --out eval/results/vllm_speed.json

(Not ``eval/vllm.py``: a script's folder comes first on ``sys.path``, so ``import vllm`` would import the script.)
Check on a tiny slice (~8 min): ``--queries 2 --pointwise-depth 30 --prp-queries 1 --prp-depth 5
--first-depth 20 --start-dtypes bf16 --out /tmp/vllm_speed_tiny.json``. ``--report FILE`` prints the tables
of eval/vllm.md from a result file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from vllm_parity import dl19_items, kendall_tau  # noqa: E402

MODEL = "packaged:smollm2-135m-instruct"
TASKS = {  # task -> (preset, overrides)
    "pointwise": ("pointwise-smollm2-135m", {}),
    "prp-sliding-10": ("prp-smollm2-135m", {"method": "sliding", "k": 10, "mode": "score"}),
    "first": ("first-smollm2-135m", {"window": 20, "stride": 10}),
}


def make_backend(arm: str, kv_cache_gb: float, threads: int | None) -> Any:
    """``hf-fp32`` | ``hf-bf16`` | ``vllm-fp32`` | ``vllm-bf16`` (compiled) | ``vllm-<dtype>-eager``; a ``-tN``
    suffix runs that arm on N threads."""
    engine, dtype, *mode = arm.split("-")
    if mode and mode[-1].startswith("t") and mode[-1][1:].isdigit():
        threads = int(mode.pop()[1:])
    if engine == "hf":
        from rerankkit.backends.hf import HFBackend

        return HFBackend(MODEL, dtype=dtype, device="cpu", threads=threads)
    from rerankkit.backends.vllm import VLLMBackend

    return VLLMBackend(MODEL, dtype=dtype, kv_cache_gb=kv_cache_gb, max_model_len=4096, threads=threads,
                       enforce_eager=mode == ["eager"])


def start_times(dtypes: list[str], kv_cache_gb: float, threads: int | None) -> list[dict[str, Any]]:
    """Each engine started alone and closed: eager, compiled with an empty compile cache, compiled again."""
    rows = []
    cache = tempfile.mkdtemp(prefix="vllm-cache-")
    old = os.environ.get("VLLM_CACHE_ROOT")
    os.environ["VLLM_CACHE_ROOT"] = cache  # an empty cache: the first compiled start compiles everything
    try:
        for dtype in dtypes:
            for label, arm in (("eager", f"vllm-{dtype}-eager"), ("compiled, cold cache", f"vllm-{dtype}"),
                               ("compiled, warm cache", f"vllm-{dtype}")):
                t = time.perf_counter()
                be = make_backend(arm, kv_cache_gb, threads)
                seconds = time.perf_counter() - t
                be.close()
                del be
                rows.append({"dtype": dtype, "mode": label, "start_s": round(seconds, 1)})
                print("start", rows[-1], flush=True)
    finally:
        if old is None:
            os.environ.pop("VLLM_CACHE_ROOT", None)
        else:
            os.environ["VLLM_CACHE_ROOT"] = old
    return rows


def markdown(report: dict[str, Any]) -> str:
    """The tables of eval/vllm.md from a result file: per engine the throughput and latency, the speed against
    hf in the same dtype (time of hf / time of the engine), and the rankings' Kendall tau against the first arm."""
    arms = report["arms"]
    ref = arms[0]
    res = report["results"]
    tasks = ("pointwise", "prp-sliding-10", "first")
    lines = ["| engine | pointwise docs/s | PRP-Sliding-10 s/query | FIRST s/query | speed vs hf, same dtype "
             "(pointwise / PRP / FIRST) | Kendall tau vs " + ref + " (pointwise / PRP / FIRST) |",
             "|---|---|---|---|---|---|"]
    for arm in arms:
        p, q, f = (res[t][arm] for t in tasks)
        hf = "hf-" + arm.split("-")[1]
        speed = (" / ".join(f"{res[t][hf]['total_s'] / res[t][arm]['total_s']:.2f}x" for t in tasks)
                 if hf in arms and hf != arm else "–")
        tau = " / ".join(f"{x['kendall_tau_vs_' + ref]:.3f}" for x in (p, q, f))
        lines.append(f"| {arm} | {p['docs_per_s']:.1f} | {q['s_per_query']:.1f} | {f['s_per_query']:.1f} | {speed} "
                     f"| {tau} |")
    lines += ["", "| engine start | dtype | seconds |", "|---|---|---|"]
    lines += [f"| vLLM {r['mode']} | {r['dtype']} | {r['start_s']:.0f} |" for r in report.get("start", [])]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--report":  # print the Markdown tables of a finished run
        print(markdown(json.loads(Path(sys.argv[2]).read_text())))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--pointwise-depth", type=int, default=100)
    ap.add_argument("--prp-queries", type=int, default=3)
    ap.add_argument("--prp-depth", type=int, default=20)
    ap.add_argument("--first-depth", type=int, default=100)
    ap.add_argument("--arms", default="hf-fp32,hf-bf16,vllm-fp32,vllm-bf16")
    ap.add_argument("--start-dtypes", default="bf16,fp32", help="dtypes whose start times are measured ('' skips)")
    ap.add_argument("--kv-cache-gb", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=None, help="threads for every engine (default: all cores)")
    ap.add_argument("--out", default="eval/results/vllm_speed.json")
    args = ap.parse_args()

    from rerankkit import Reranker

    arms = args.arms.split(",")
    report: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "arms": arms,
                              "model": "SmolLM2-135M-Instruct (packaged GGUF dequantised to safetensors)",
                              "args": vars(args)}
    report["start"] = start_times([d for d in args.start_dtypes.split(",") if d], args.kv_cache_gb, args.threads)

    t = time.perf_counter()
    backends = {}
    for arm in arms:
        s = time.perf_counter()
        backends[arm] = make_backend(arm, args.kv_cache_gb, args.threads)
        print(f"loaded {arm} in {time.perf_counter() - s:.1f} s", flush=True)
    report["versions"] = {arm: getattr(be, "build", "transformers") for arm, be in backends.items()}
    report["load_s"] = round(time.perf_counter() - t, 1)
    depth = {"pointwise": (args.queries, args.pointwise_depth), "prp-sliding-10": (args.prp_queries, args.prp_depth),
             "first": (args.queries, args.first_depth)}
    results: dict[str, Any] = {}
    for task, (preset, overrides) in TASKS.items():
        n_q, n_d = depth[task]
        *items, spare = dl19_items(n_q + 1, n_d)
        rerankers = {arm: Reranker(preset, backend_instance=be, **overrides) for arm, be in backends.items()}
        for rr in rerankers.values():  # warm-up on a query not measured (allocators, kernels; no cached prefix)
            rr.rerank_many([(spare[0], spare[1][:4])])
        rows: dict[str, dict[str, Any]] = {arm: {"seconds": [], "rankings": [], "calls": 0, "prompt_tokens": 0}
                                           for arm in arms}
        for i, item in enumerate(items):
            order = arms[i % len(arms):] + arms[: i % len(arms)]
            for arm in order:
                be = backends[arm]
                before = be.usage.snapshot()
                s = time.perf_counter()
                [ranking] = rerankers[arm].rerank_many([item])
                rows[arm]["seconds"].append(time.perf_counter() - s)
                after = be.usage.snapshot()
                rows[arm]["rankings"].append(ranking.docids)
                rows[arm]["calls"] += after["model_calls"] - before["model_calls"]
                rows[arm]["prompt_tokens"] += after["prompt_tokens"] - before["prompt_tokens"]
            print(task, i, {arm: round(rows[arm]["seconds"][-1], 2) for arm in arms}, flush=True)
        ref = arms[0]
        out = {}
        for arm in arms:
            r = rows[arm]
            total = sum(r["seconds"])
            out[arm] = {"queries": len(items), "docs": sum(len(d) for _, d in items), "total_s": round(total, 2),
                        "s_per_query": round(total / len(items), 3),
                        "docs_per_s": round(sum(len(d) for _, d in items) / total, 2),
                        "model_calls": r["calls"], "prompt_tokens": r["prompt_tokens"],
                        "tokens_per_s": round(r["prompt_tokens"] / total, 1),
                        "kendall_tau_vs_" + ref: round(statistics.mean(
                            kendall_tau(a, b) for a, b in zip(rows[ref]["rankings"], r["rankings"])), 4)}
        for arm in arms:
            out[arm]["speed_vs_" + ref] = round(out[ref]["total_s"] / out[arm]["total_s"], 3)
        results[task] = out
        print(task, json.dumps(out), flush=True)
    report["results"] = results
    for be in backends.values():
        be.close()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
