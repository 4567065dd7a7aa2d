"""The study's plots (PNG, matplotlib from the ``bench`` extra): the measure per format, and position bias."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._lazy import require


def _pyplot() -> Any:
    matplotlib = require("matplotlib", "bench", "the robustness plots")
    matplotlib.use("Agg")
    return importlib.import_module("matplotlib.pyplot")


def formats_plot(summary: Mapping[str, Any], path: str | Path, title: str = "") -> Path:
    """One horizontal bar per format (sorted by the measure), the template as written in a darker colour."""
    plt = _pyplot()
    f = summary["formats"]
    rows = sorted(f["formats"], key=lambda r: r["mean"])
    measure = summary["setup"]["settings"]["measure"]
    fig, ax = plt.subplots(figsize=(9, 0.38 * len(rows) + 1.6))
    colors = ["#1f4e79" if r["index"] == 0 else "#7fa7cf" for r in rows]
    ax.barh(range(len(rows)), [r["mean"] for r in rows], color=colors)
    ax.set_yticks(range(len(rows)), [f"F{r['index']:02d} {r['key']}" for r in rows], fontsize=7)
    lo = min(r["mean"] for r in rows)
    hi = max(r["mean"] for r in rows)
    pad = max(0.02, (hi - lo) * 0.5)
    ax.set_xlim(max(0.0, lo - pad), min(1.0, hi + pad) if hi <= 1.0 else hi + pad)
    ax.set_xlabel(f"{measure} (F00: the template as written)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title(title or f"{measure} per prompt format", fontsize=10)
    return _save(fig, plt, path)


def position_plot(summary: Mapping[str, Any], path: str | Path, title: str = "") -> Path:
    """Left: share of shuffled inputs whose top document was shown at position i, against an order-blind
    judge; right: mean final rank of the document shown at position i."""
    plt = _pyplot()
    pb = summary["position_bias"]
    n = len(pb["top1"])
    xs = list(range(1, n + 1))
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
    a.bar(xs, pb["top1"], color="#7fa7cf", label="observed")
    a.step(xs, pb["uniform"], where="mid", color="#b00020", label="order-blind judge")
    a.set_xlabel("position shown (1 = first)")
    a.set_ylabel("share ending at rank 1")
    a.legend(fontsize=8, frameon=False)
    b.plot(xs, pb["mean_final_rank"], marker="o", color="#1f4e79")
    b.set_xlabel("position shown (1 = first)")
    b.set_ylabel("mean final rank")
    step = max(1, n // 20)
    for ax in (a, b):
        ax.set_xticks(xs[::step])
        ax.grid(True, alpha=0.3)
    fig.suptitle(title or f"position bias over {pb['samples']} shuffled inputs", fontsize=10)
    return _save(fig, plt, path)


def _save(fig: Any, plt: Any, path: str | Path) -> Path:
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


__all__ = ["formats_plot", "position_plot"]
