"""The effectiveness-vs-cost plot (PNG): a metric against calls and model seconds per query."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._lazy import require

_MARKERS = "osD^vP*Xh<>p"


def cost_plot(records: Sequence[dict[str, Any]], measure: str, path: str | Path, title: str = "") -> Path:
    """Two panels, ``measure`` against model calls per query and model seconds per query; one point per run."""
    matplotlib = require("matplotlib", "bench", "the benchmark plot")
    matplotlib.use("Agg")
    plt = importlib.import_module("matplotlib.pyplot")
    rows = [r for r in records if not r.get("error") and measure in r.get("metrics", {})]
    conditions = list(dict.fromkeys(r["condition"] for r in rows))
    datasets = list(dict.fromkeys(r.get("dataset_label", r["dataset"]) for r in rows))
    colors = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True)
    panels = (("requests", "model calls per query (made + cached)"),
              ("model_s", "model seconds per query (cached answers at their measured cost)"))
    for ax, (key, xlabel) in zip(axes, panels):
        for r in rows:
            ci = conditions.index(r["condition"])
            di = datasets.index(r.get("dataset_label", r["dataset"]))
            x = float(r.get("per_query", {}).get(key, 0.0))
            y = float(r["metrics"][measure])
            ax.scatter([x], [y], color=colors(ci % 10), marker=_MARKERS[di % len(_MARKERS)], s=60, zorder=3)
            ax.annotate(r["condition"], (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
        xs = [float(r.get("per_query", {}).get(key, 0.0)) for r in rows]
        nonzero = [x for x in xs if x > 0]
        if nonzero and max(nonzero) / min(nonzero) > 50:  # methods differ by orders of magnitude
            ax.set_xscale("symlog", linthresh=min(nonzero))
        ax.margins(x=0.1, y=0.08)
        ax.set_xlabel(xlabel)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel(measure)
    handles = [plt.Line2D([], [], color=colors(i % 10), marker="o", linestyle="", label=c)
               for i, c in enumerate(conditions)]
    handles += [plt.Line2D([], [], color="black", marker=_MARKERS[i % len(_MARKERS)], linestyle="", label=d)
                for i, d in enumerate(datasets)]
    fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), fontsize=8, frameon=False)
    fig.suptitle(title or f"{measure} vs cost")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
