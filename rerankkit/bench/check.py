"""Reproduction checks: each expected metric against the results, within its tolerance."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .config import BenchConfig


@dataclass(frozen=True)
class CheckRow:
    condition: str
    dataset: str
    label: str
    measure: str
    expected: float
    tolerance: float
    actual: float | None
    status: str  # "ok" | "FAIL" | "missing" (no result) | "error" (the run failed)
    line: int = 0

    @property
    def passed(self) -> bool:
        return self.status == "ok"

    @property
    def delta(self) -> float | None:
        return None if self.actual is None else self.actual - self.expected


def check(config: BenchConfig, records: Iterable[dict[str, Any]], only: Sequence[str] | None = None) -> list[CheckRow]:
    """One row per expectation of the selected pairs (``only`` as in :meth:`BenchConfig.pairs`)."""
    selected = {(c.name, d) for c, d in config.pairs(only)}
    by_pair = {(r["condition"], r["dataset"]): r for r in records}
    rows = []
    for cond, exp in config.expectations():
        if (cond.name, exp.dataset) not in selected:
            continue
        rec = by_pair.get((cond.name, exp.dataset))
        actual = None
        if rec is None:
            status = "missing"
        elif rec.get("error"):
            status = "error"
        else:
            actual = rec.get("metrics", {}).get(exp.measure)
            if actual is None:
                status = "missing"
            else:
                status = "ok" if abs(float(actual) - exp.value) <= exp.tolerance + 1e-9 else "FAIL"
        rows.append(CheckRow(cond.name, exp.dataset, config.label(exp.dataset), exp.measure, exp.value,
                             exp.tolerance, None if actual is None else float(actual), status, exp.line))
    return rows


def format_check(rows: Sequence[CheckRow]) -> str:
    """A plain-text table of the checks and a one-line verdict."""
    if not rows:
        return "no expectations to check"
    header = ["condition", "dataset", "measure", "expected", "actual", "delta", "status"]
    body = [[r.condition, r.label, r.measure, f"{r.expected:.4f} ± {r.tolerance:g}",
             "-" if r.actual is None else f"{r.actual:.4f}", "-" if r.delta is None else f"{r.delta:+.4f}", r.status]
            for r in rows]
    widths = [max(len(x[i]) for x in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    bad = sum(not r.passed for r in rows)
    lines.append(f"{len(rows) - bad} of {len(rows)} expectations met" + (f"; {bad} not met" if bad else ""))
    return "\n".join(lines)
