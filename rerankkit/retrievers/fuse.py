"""Hybrid retrieval: fuse runs by reciprocal-rank fusion or by interpolating normalised scores.

Fusion works on any :class:`~rerankkit.types.Run` objects (BM25 + dense, two dense models, ...).
The result keeps every query seen in any input and the union of their documents (with texts).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ConfigError, InputError
from ..types import Doc, Query, Ranking, Run

NORMS = ("minmax", "zscore", "none")


def rrf(runs: Sequence[Run], k: float = 60.0, depth: int | None = None, weights: Sequence[float] | None = None,
        top_k: int | None = None) -> Run:
    """Reciprocal-rank fusion: ``score(d) = sum_i w_i / (k + rank_i(d))`` with ranks from 1.

    ``depth`` uses only each run's first ``depth`` documents; ``top_k`` cuts the fused rankings.
    Cormack, Clarke & Buettcher, SIGIR 2009 (k = 60).
    """
    if not runs:
        raise InputError("rrf needs at least one run")
    if k < 0:
        raise ConfigError(f"rrf k must be >= 0, got {k}")
    w = list(weights) if weights is not None else [1.0] * len(runs)
    if len(w) != len(runs):
        raise ConfigError(f"{len(w)} weights for {len(runs)} runs")

    def scores(rankings: list[Ranking | None]) -> dict[str, float]:
        out: dict[str, float] = {}
        for wi, r in zip(w, rankings):
            if r is None:
                continue
            for rank, d in enumerate(r.docs[:depth], start=1):
                out[d.docid] = out.get(d.docid, 0.0) + wi / (k + rank)
        return out

    return _combine(runs, scores, depth, top_k, {"method": "rrf", "k": k, "weights": w, "depth": depth})


def interpolate(a: Run, b: Run, alpha: float = 0.5, norm: str = "minmax", depth: int | None = None,
                top_k: int | None = None) -> Run:
    """``alpha * norm(score_a) + (1 - alpha) * norm(score_b)`` per query.

    ``norm`` is ``"minmax"`` (each ranking mapped to [0, 1]), ``"zscore"`` or ``"none"``. A document
    missing from one run gets that run's lowest normalised score for the query.
    """
    if norm not in NORMS:
        raise ConfigError(f"norm must be one of {NORMS}, got {norm!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must be in [0, 1], got {alpha}")

    def scores(rankings: list[Ranking | None]) -> dict[str, float]:
        parts = [_normalise(r, norm, depth) if r is not None else {} for r in rankings]
        floors = [min(p.values(), default=0.0) for p in parts]
        ids = list(dict.fromkeys([*parts[0], *parts[1]]))
        return {d: alpha * parts[0].get(d, floors[0]) + (1 - alpha) * parts[1].get(d, floors[1]) for d in ids}

    return _combine([a, b], scores, depth, top_k,
                    {"method": "interpolate", "alpha": alpha, "norm": norm, "depth": depth})


def fuse(*runs: Run, method: str = "rrf", **options: Any) -> Run:
    """``fuse(a, b, method="rrf", k=60)`` or ``fuse(a, b, method="interpolate", alpha=0.5)``."""
    if method == "rrf":
        return rrf(runs, **options)
    if method in ("interpolate", "linear"):
        if len(runs) != 2:
            raise InputError(f"interpolation fuses exactly two runs, got {len(runs)}")
        return interpolate(runs[0], runs[1], **options)
    raise ConfigError(f"unknown fusion method {method!r}; use 'rrf' or 'interpolate'")


def _normalise(r: Ranking, norm: str, depth: int | None) -> dict[str, float]:
    docs = r.docs[:depth]
    raw = {d.docid: (d.score if math.isfinite(d.score) else -1e30) for d in docs}
    if norm == "none" or not raw:
        return raw
    vals = list(raw.values())
    if norm == "minmax":
        lo, hi = min(vals), max(vals)
        return {d: (s - lo) / (hi - lo) if hi > lo else 1.0 for d, s in raw.items()}
    mean = sum(vals) / len(vals)
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))
    return {d: (s - mean) / sd if sd > 0 else 0.0 for d, s in raw.items()}


def _combine(runs: Sequence[Run], scorer: Callable[[list[Ranking | None]], dict[str, float]],
             depth: int | None, top_k: int | None, info: dict[str, Any]) -> Run:
    qids = list(dict.fromkeys(q for run in runs for q in run))
    out = []
    for qid in qids:
        rankings = [run.get(qid) for run in runs]
        query: Query = next(r.query for r in rankings if r is not None)
        docs: dict[str, Doc] = {}
        for r in rankings:
            for d in (r.docs[:depth] if r is not None else ()):
                docs.setdefault(d.docid, d.doc)
        s = scorer(rankings)
        ids = list(docs)
        out.append(Ranking.from_scores(query, [docs[i] for i in ids], [s[i] for i in ids]).top(top_k))
    sources = [run.metadata.get("retriever", {}).get("name", "") for run in runs]
    return Run(out, {"fusion": info, "sources": sources})
