"""Seeded shuffles of a first-stage run: the input orders a robustness study shows its reranker."""

from __future__ import annotations

import hashlib

import numpy as np

from ..types import Ranking, Run


def permutation(qid: str, n: int, seed: int, index: int) -> list[int]:
    """A permutation of ``range(n)`` that depends only on (seed, index, qid): the same for a query whatever
    else is in the run. Index 0 is the identity (the first-stage order)."""
    if index == 0:
        return list(range(n))
    h = hashlib.sha256(f"rerankkit-order\0{seed}\0{index}\0{qid}".encode()).digest()
    return [int(i) for i in np.random.default_rng(int.from_bytes(h[:8], "little")).permutation(n)]


def shuffled(run: Run, depth: int | None, seed: int, index: int) -> Run:
    """``run`` with each query's first ``depth`` candidates (all when ``None``) in the order
    :func:`permutation` gives; the candidates below ``depth`` keep their place. Each document keeps its
    first-stage score (the order is what changes)."""
    if index == 0:
        return run
    out = []
    for qid, r in run.items():
        k = len(r.docs) if depth is None else min(depth, len(r.docs))
        head = r.docs[:k]
        perm = permutation(qid, k, seed, index)
        out.append(Ranking(r.query, tuple(head[i] for i in perm) + r.docs[k:], r.metadata))
    return Run(out, {**run.metadata, "order": index, "order_seed": seed})


def shown(run: Run, depth: int | None) -> dict[str, list[str]]:
    """Per query, the document ids a reranker is shown (the first ``depth``), in input order."""
    return {qid: [sd.docid for sd in (r.docs if depth is None else r.docs[:depth])] for qid, r in run.items()}


__all__ = ["permutation", "shown", "shuffled"]
