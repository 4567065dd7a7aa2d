"""What a study's runs say: the spread over formats, stability over input orders, and position bias.

- **Formats** (FormatSpread, Sclar et al. 2024): the measure per format, averaged over the orders every format
  was run with (the first-stage order, unless the study is a grid); min, max, spread (max - min), standard
  deviation (over formats, ddof=1); per format the difference from the template as written and its per-query
  win/tie/loss; and the paired tests (t-test and bootstrap over queries) of the best format against the worst.
  Best and worst are picked after seeing the results, so their p-value overstates the evidence for *some*
  difference between formats chosen in advance; it says whether the spread is larger than query noise.
- **Orders**: per format run under several orders, the measure per order, Kendall's tau between the
  rankings each pair of orders produced for the same query (1: the input order changed nothing), and the
  overlap of their top 10 (a sorting strategy that fixes only its top k, such as PRP-Sliding-k, leaves the
  rest in input order, which lowers tau over the whole depth but not the top-10 overlap).
- **Position bias**: over the shuffled orders only (where position is independent of relevance), how often
  the document shown at position i ends at the top, against the share an order-blind judge gives
  (1/n per position); the mean final rank per shown position; and the mean Kendall tau between the shown
  order and the output (about 0 for an order-blind judge, positive when the input order carries over).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from ..eval.significance import compare, ranking_tau, win_tie_loss

TOP = 10  # the cut-off of the top-k overlap between two orders' rankings


def spread(values: Sequence[float]) -> dict[str, float]:
    """min, max, spread (max - min), mean and std (ddof=1; 0 for a single value) of ``values``."""
    v = np.asarray(values, dtype=np.float64)
    return {"min": float(v.min()), "max": float(v.max()), "spread": float(v.max() - v.min()),
            "mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0}


def _common_orders(records: Sequence[Mapping[str, Any]], formats: int) -> list[int]:
    per = [{r["order"] for r in records if r["format"] == f} for f in range(formats)]
    common = set.intersection(*per) if per else set()
    return sorted(common)


def format_scores(records: Sequence[Mapping[str, Any]], formats: int) -> tuple[list[int], list[dict[str, float]]]:
    """(the orders used, per format its per-query measure averaged over those orders)."""
    orders = _common_orders(records, formats)
    out = []
    for f in range(formats):
        cells = [r for r in records if r["format"] == f and r["order"] in orders]
        qids = sorted(set.intersection(*(set(r["per_query"]) for r in cells))) if cells else []
        out.append({q: float(np.mean([r["per_query"][q] for r in cells])) for q in qids})
    return orders, out


def format_summary(records: Sequence[Mapping[str, Any]], keys: Sequence[str], resamples: int = 10000,
                   seed: int = 0) -> dict[str, Any]:
    """The per-format table, the spread, and best against worst (see the module docstring)."""
    orders, per_format = format_scores(records, len(keys))
    qids = sorted(set.intersection(*(set(p) for p in per_format))) if per_format else []
    means = [float(np.mean([p[q] for q in qids])) if qids else math.nan for p in per_format]
    base = [per_format[0][q] for q in qids]
    rows = []
    for i, (key, m) in enumerate(zip(keys, means)):
        vals = [per_format[i][q] for q in qids]
        w, t, lo = win_tie_loss(vals, base) if qids else (0, 0, 0)
        rows.append({"index": i, "key": key, "mean": m, "delta": m - means[0], "wins": w, "ties": t, "losses": lo})
    out: dict[str, Any] = {"orders": orders, "queries": len(qids), "formats": rows,
                           "per_query": [{q: p[q] for q in qids} for p in per_format]}
    if qids:
        out["spread"] = spread(means)
        best = int(np.argmax(means))
        worst = int(np.argmin(means))
        out["best"], out["worst"] = best, worst
        if best != worst:
            out["best_vs_worst"] = compare([per_format[best][q] for q in qids], [per_format[worst][q] for q in qids],
                                           resamples, seed).to_dict()
    return out


def order_summary(records: Sequence[Mapping[str, Any]], fmt: int) -> dict[str, Any] | None:
    """For format ``fmt``: the measure per input order and Kendall's tau between the orders' rankings."""
    cells = sorted((r for r in records if r["format"] == fmt), key=lambda r: r["order"])
    if len(cells) < 2:
        return None
    taus: list[float] = []
    overlaps: list[float] = []
    identical = 0
    pairs = []
    for a, b in combinations(cells, 2):
        qs = sorted(set(a["rankings"]) & set(b["rankings"]))
        tq = [_tau(a["rankings"][q], b["rankings"][q]) for q in qs]
        oq = [_overlap(a["rankings"][q], b["rankings"][q], TOP) for q in qs]
        same = sum(1 for q in qs if a["rankings"][q] == b["rankings"][q])
        identical += same
        taus += tq
        overlaps += oq
        pairs.append({"orders": [a["order"], b["order"]], "tau": _mean(tq), f"top{TOP}_overlap": _mean(oq),
                      "identical": same, "queries": len(qs)})
    return {"format": fmt, "per_order": [{"order": r["order"], "mean": r["mean"]} for r in cells],
            "measure": spread([r["mean"] for r in cells]), "tau_mean": _mean(taus),
            f"top{TOP}_overlap": _mean(overlaps),
            "tau_min": float(min(taus)) if taus else math.nan, "identical_share": identical / len(taus) if taus else math.nan,
            "pairs": pairs}


def position_bias(records: Sequence[Mapping[str, Any]], shown: Mapping[int, Mapping[str, Sequence[str]]]) -> dict[str, Any] | None:
    """Over the runs on shuffled orders: P(the document shown at position i ends first) per i, the same under
    an order-blind judge, the mean final rank (1-based) per shown position, and the mean tau(shown, output)."""
    cells = [r for r in records if r["order"] > 0]
    if not cells:
        return None
    width = max(len(ids) for r in cells for ids in shown[r["order"]].values())
    top = np.zeros(width)
    uniform = np.zeros(width)
    rank_sum = np.zeros(width)
    rank_n = np.zeros(width)
    taus = []
    samples = 0
    for r in cells:
        for q, ranking in r["rankings"].items():
            ids = list(shown[r["order"]][q])
            if len(ids) < 2 or not ranking:
                continue
            samples += 1
            top[ids.index(ranking[0])] += 1
            uniform[: len(ids)] += 1.0 / len(ids)
            where = {d: k for k, d in enumerate(ranking)}
            for i, d in enumerate(ids):
                rank_sum[i] += where[d] + 1
                rank_n[i] += 1
            taus.append(_tau(ids, ranking))
    if not samples:
        return None
    return {"samples": samples, "top1": (top / samples).tolist(), "uniform": (uniform / samples).tolist(),
            "mean_final_rank": [float(s / n) if n else math.nan for s, n in zip(rank_sum, rank_n)],
            "input_tau": _mean(taus)}


def _overlap(a: Sequence[str], b: Sequence[str], k: int) -> float:
    k = min(k, len(a), len(b))
    return len(set(a[:k]) & set(b[:k])) / k if k else 1.0


def _tau(a: Sequence[str], b: Sequence[str]) -> float:
    if list(a) == list(b):
        return 1.0
    return ranking_tau(list(a), list(b)) if len(a) > 1 else 1.0


def _mean(xs: Sequence[float]) -> float:
    return float(np.mean(xs)) if len(xs) else math.nan


def summarize(setup: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
              shown: Mapping[int, Mapping[str, Sequence[str]]]) -> dict[str, Any]:
    """Everything the report shows, as one JSON-ready mapping."""
    settings = setup["settings"]
    keys = [f["key"] for f in setup["formats"]]
    orders = [o for f in range(len(keys)) if (o := order_summary(records, f)) is not None]
    return {
        "setup": dict(setup),
        "formats": format_summary(records, keys, settings["resamples"], settings["seed"]),
        "orders": orders,
        "position_bias": position_bias(records, shown),
        "cost": {"requests": sum(r["requests"] for r in records), "model_calls": sum(r["model_calls"] for r in records),
                 "cached_calls": sum(r["cached_calls"] for r in records), "wall_s": round(sum(r["wall_s"] for r in records), 2)},
        "cells": [{k: v for k, v in r.items()} for r in records],
    }


__all__ = ["format_scores", "format_summary", "order_summary", "position_bias", "spread", "summarize"]
