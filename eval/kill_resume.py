"""Kill a real benchmark run with SIGKILL mid-way, resume it, and compare with an uninterrupted run.

    python eval/kill_resume.py eval/configs/quick-cpu.yaml --out eval/results/quick-cpu --kill-after 64

1. reference: the config run uninterrupted into a scratch folder with its own cache;
2. the same config into --out, killed with SIGKILL once --kill-after answers are committed to its cache;
3. resumed (same command): its new model calls must equal the answers not stored before the kill,
   and its metrics and run files must equal the reference's;
4. the reference rerun: 0 model calls.
Prints one JSON object with every number.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def bench(config: str, out: Path, wait: bool = True) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "rerankkit.cli.main", "bench", config, "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    if wait and proc.wait() != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with {proc.returncode}")
    return proc


def stored(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def lines(out: Path) -> dict[str, dict]:
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines() if x.strip()]
    return {f"{r['condition']}/{r['dataset_label']}": r for r in rows}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--out", required=True)
    ap.add_argument("--kill-after", type=int, default=64, help="kill once this many answers are in the cache")
    args = ap.parse_args()
    out = Path(args.out)
    for f in ("cache.sqlite", "cache.sqlite-wal", "cache.sqlite-shm", "results.jsonl", "history.jsonl"):
        (out / f).unlink(missing_ok=True)
    ref = Path(tempfile.mkdtemp(prefix="bench-ref-"))
    t0 = time.perf_counter()
    bench(args.config, ref)
    ref_s = time.perf_counter() - t0
    proc = bench(args.config, out, wait=False)
    while proc.poll() is None and stored(out / "cache.sqlite") < args.kill_after:
        time.sleep(0.05)
    if proc.poll() is not None:
        raise SystemExit("the run finished before the kill: lower --kill-after")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = stored(out / "cache.sqlite")
    lines_after_kill = sorted(lines(out)) if (out / "results.jsonl").exists() else []
    bench(args.config, out)
    bench(args.config, ref)
    resumed, rerun = lines(out), lines(ref)  # the reference folder's latest lines are the rerun's
    report = {"reference_wall_s": round(ref_s, 1), "answers_stored_before_kill": done,
              "results_lines_after_kill": lines_after_kill, "runs": {}}
    first = {}
    for row in (json.loads(x) for x in (ref / "history.jsonl").read_text().splitlines()):
        first.setdefault(f"{row['condition']}/{row['dataset_label']}", row)
    for key in rerun:
        a, b = first[key], resumed[key]
        report["runs"][key] = {
            "reference_model_calls": a["model_calls"], "resumed_model_calls": b["model_calls"],
            "resumed_cached_calls": b["cached_calls"], "rerun_model_calls": rerun[key]["model_calls"],
            "metrics_identical": a["metrics"] == b["metrics"], "metrics": b["metrics"],
            "run_file_identical": (ref / a["run_file"]).read_bytes() == (out / b["run_file"]).read_bytes(),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
