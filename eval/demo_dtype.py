"""The demo's rerank step (``scripts/demo``) before and after the dtype default (issue 22).

``scripts/demo`` runs ``rerankkit rerank PRESET --dataset trec-dl-2019/passage --queries 5 --depth N`` for each
of its presets and times the command (model load included). This script runs exactly those commands twice
per preset: as shipped (``dtype = "auto"``: bf16 on a CPU with native bf16) and with ``--set dtype=fp32`` (what
``auto`` meant before it detected bf16), interleaved and alternating which goes first, ``--repeats`` times,
and reports the median wall seconds and each run's nDCG@10 (``rerankkit eval``).

    PYTHONPATH=$PWD RERANKKIT_DATA=/work/shared/data HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \\
        python eval/demo_dtype.py --out eval/results/demo_dtype.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATASET = "trec-dl-2019/passage"
DEMO_PRESETS = "cosine-minilm:100 pointwise-smollm2-135m:20"  # scripts/demo's default


def rerankkit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rerankkit", *args], check=True, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                               "TOKENIZERS_PARALLELISM": "false"})


def timed_rerank(preset: str, depth: int, queries: int, extra: list[str], out: Path) -> tuple[float, float]:
    """(wall seconds of the demo's rerank command, nDCG@10 of its run)."""
    t = time.perf_counter()
    rerankkit("rerank", preset, "--dataset", DATASET, "--queries", str(queries), "--depth", str(depth),
              "--no-progress", "-o", str(out), *extra)
    wall = time.perf_counter() - t
    # the demo's convention: the mean over the queries it reranked (not over every judged query)
    scores = json.loads(rerankkit("eval", str(out), "--dataset", DATASET, "-m", "nDCG@10", "--no-missing-as-zero",
                                  "--json").stdout)
    return wall, scores["aggregate"]["nDCG@10"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default=DEMO_PRESETS, help="'PRESET:DEPTH ...' as scripts/demo takes them")
    ap.add_argument("--queries", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="eval/results/demo_dtype.json")
    args = ap.parse_args()

    arms = {"fp32 (before)": ["--set", "dtype=fp32"], "auto (after)": []}
    work = Path(tempfile.mkdtemp(prefix="demo-dtype-"))
    rows = []
    for item in args.presets.split():
        preset, _, depth = item.partition(":")
        walls: dict[str, list[float]] = {a: [] for a in arms}
        ndcg: dict[str, float] = {}
        for rep in range(args.repeats):
            order = list(arms) if rep % 2 == 0 else list(reversed(arms))
            for arm in order:
                wall, score = timed_rerank(preset, int(depth or 20), args.queries, arms[arm],
                                           work / f"{preset}-{rep}-{arm.split()[0]}.run")
                walls[arm].append(wall)
                ndcg[arm] = score
        row = {"preset": preset, "depth": int(depth or 20), "walls_s": walls,
               "median_s": {a: round(statistics.median(w), 2) for a, w in walls.items()},
               "nDCG@10": {a: round(s, 4) for a, s in ndcg.items()}}
        row["speedup"] = round(row["median_s"]["fp32 (before)"] / row["median_s"]["auto (after)"], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    report = {"command": "rerankkit rerank PRESET --dataset trec-dl-2019/passage --queries Q --depth N [--set dtype=fp32]",
              "queries": args.queries, "repeats": args.repeats, "machine": platform.processor() or platform.machine(),
              "load_average_at_start": os.getloadavg()[0], "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nDL19, first {args.queries} queries, {args.repeats} repeats, median wall s of the demo's rerank command "
          f"(model load included)\n")
    print("| preset (depth) | fp32 (before) s | auto (after) s | speed-up | nDCG@10 fp32 / auto |")
    print("|---|---|---|---|---|")
    for r in rows:
        m, n = r["median_s"], r["nDCG@10"]
        print(f"| {r['preset']} ({r['depth']}) | {m['fp32 (before)']} | {m['auto (after)']} | {r['speedup']}x "
              f"| {n['fp32 (before)']:.4f} / {n['auto (after)']:.4f} |")


if __name__ == "__main__":
    main()
