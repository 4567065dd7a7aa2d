"""The results file: one JSON line per condition x dataset (the latest), plus an append-only history."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS = "results.jsonl"
HISTORY = "history.jsonl"


def read_results(out_dir: str | Path) -> list[dict[str, Any]]:
    """The records in ``OUT/results.jsonl`` (empty when there is none yet)."""
    p = Path(out_dir) / RESULTS
    if not p.exists():
        return []
    out = []
    for line in p.read_text(encoding="utf-8").splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out


def save_record(out_dir: str | Path, record: dict[str, Any], order: Sequence[tuple[str, str]] = ()) -> None:
    """Put ``record`` into ``results.jsonl`` (replacing the same condition x dataset) and append it to the history.

    Lines follow ``order`` (condition, dataset) pairs; others keep their place after them. The file
    is replaced atomically, so a kill never leaves it half-written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pair = (record["condition"], record["dataset"])
    records = [r for r in read_results(out) if (r["condition"], r["dataset"]) != pair] + [record]
    rank = {p: i for i, p in enumerate(order)}
    records.sort(key=lambda r: rank.get((r["condition"], r["dataset"]), len(rank)))
    tmp = out / f".{RESULTS}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(_line(r))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out / RESULTS)
    with open(out / HISTORY, "a", encoding="utf-8") as f:
        f.write(_line(record))


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=False, default=str) + "\n"


def machine() -> dict[str, Any]:
    """Where the run happened: platform, CPU count, torch threads and GPU (when torch is loaded)."""
    out: dict[str, Any] = {"platform": platform.platform(terse=True), "machine": platform.machine(),
                           "cpus": os.cpu_count()}
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            out["torch_threads"] = torch.get_num_threads()
            if torch.cuda.is_available():
                out["gpu"] = torch.cuda.get_device_name(0)
        except Exception:  # noqa: BLE001 - informational only
            pass
    return out


def versions() -> dict[str, str]:
    """Python, rerankkit and the libraries in use."""
    from ..data.trec import versions as run_versions

    out = run_versions()
    for mod in ("numpy", "yaml", "matplotlib", "bm25s", "faiss"):
        m = sys.modules.get(mod)
        if m is not None and getattr(m, "__version__", None):
            out[mod] = str(m.__version__)
    return out
