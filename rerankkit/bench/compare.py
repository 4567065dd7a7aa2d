"""Every condition against the config's baseline, query by query: win/tie/loss and paired significance.

For each dataset, each condition that ran on it besides the baseline, and each measure: the mean difference
(condition - baseline), how many queries the condition wins, ties and loses, the paired t-test and the
paired bootstrap over queries (:mod:`rerankkit.eval.significance`). Per-query scores come from the
``runs/*.queries.jsonl`` files a bench run writes. A query one of the two runs lacks scores 0 there when the
config scores missing queries as 0 (the default), else it is left out of that comparison.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..eval.significance import PairedComparison, compare
from .config import BenchConfig

RESAMPLES = 10000


@dataclass(frozen=True)
class BaselineRow:
    condition: str
    dataset: str  # as labelled in the config
    measure: str
    result: PairedComparison


def per_query(out_dir: Path, record: dict[str, Any]) -> dict[str, dict[str, float]] | None:
    """qid -> {measure: value} of one results record (``None`` when its file is missing)."""
    run_file = record.get("run_file")
    if not run_file:
        return None
    p = (Path(out_dir) / run_file).with_suffix(".queries.jsonl")
    if not p.exists():
        return None
    out = {}
    for line in p.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            out[str(row.pop("qid"))] = {k: float(v) for k, v in row.items() if isinstance(v, (int, float))}
    return out


def against_baseline(config: BenchConfig, records: Sequence[dict[str, Any]], out_dir: str | Path,
                     resamples: int = RESAMPLES) -> list[BaselineRow]:
    """The comparison rows of every non-baseline condition, in config order."""
    out = Path(out_dir)
    ok = {(r["condition"], r["dataset"]): r for r in records if not r.get("error")}
    rows: list[BaselineRow] = []
    for ds in config.datasets:
        base = ok.get((config.baseline, ds))
        base_q = per_query(out, base) if base else None
        if base_q is None:
            continue
        for cond in config.conditions:
            rec = ok.get((cond.name, ds))
            if cond.name == config.baseline or rec is None:
                continue
            cond_q = per_query(out, rec)
            if cond_q is None:
                continue
            for m in config.measures:
                pair = _paired(base_q, cond_q, m, config.missing_as_zero)
                if pair is None:
                    continue
                b, c = pair
                rows.append(BaselineRow(cond.name, config.label(ds), m, compare(c, b, resamples=resamples)))
    return rows


def _paired(base: dict[str, dict[str, float]], cond: dict[str, dict[str, float]], measure: str,
            missing_as_zero: bool) -> tuple[list[float], list[float]] | None:
    qids = sorted(q for q in set(base) | set(cond) if measure in base.get(q, {}) or measure in cond.get(q, {}))
    b, c = [], []
    for q in qids:
        vb, vc = base.get(q, {}).get(measure), cond.get(q, {}).get(measure)
        if (vb is None or vc is None) and not missing_as_zero:
            continue
        b.append(vb or 0.0)
        c.append(vc or 0.0)
    return (b, c) if b else None


__all__ = ["BaselineRow", "against_baseline", "per_query"]
