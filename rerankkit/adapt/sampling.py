"""DUQGen's document sampling: across clusters in proportion to their size, within a cluster by closeness to
its centroid (Chandradevan, Dhole & Agichtein, "DUQGen: Effective Unsupervised Domain Adaptation of Neural
Rankers by Diversifying Synthetic Query Generation", NAACL 2024, §3.2; the released code,
``data_preparation/target_representation/sample_target_collection_documents.py``, fixes the details used here:
the quota formula, a softmax over cosine similarity at temperature T, several probabilistic draws pooled per
cluster, and a maximal-marginal-relevance pick from that pool)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .cluster import Clustering


@dataclass(frozen=True)
class Sampled:
    """One sampled document: its row in the embedding matrix, its cluster and its cosine to the centroid."""

    row: int
    cluster: int
    centroid_cosine: float


def cluster_quotas(sizes: Sequence[int], n: int) -> np.ndarray:
    """How many documents to take from each cluster so that ``n`` are taken in all.

    Every cluster gets ``1 + floor((n - K) * size / total)``; what is still missing goes one each to the
    largest clusters (DUQGen's rule). No cluster is asked for more documents than it has: the excess moves
    to the largest clusters that still have room."""
    sizes = np.asarray(sizes, dtype=np.int64)
    k, total = len(sizes), int(sizes.sum())
    if k == 0 or total == 0:
        raise ConfigError("no documents to sample from")
    if (sizes <= 0).any():
        raise ConfigError("every cluster must hold at least one document")
    if not k <= n <= total:
        raise ConfigError(f"cannot sample {n} documents from {k} clusters of {total} documents: the number of "
                          f"documents must be between the number of clusters and the collection size")
    quotas = 1 + np.floor((n - k) * sizes / total).astype(np.int64)
    by_size = sorted(range(k), key=lambda c: (-sizes[c], c))
    missing = n - int(quotas.sum())
    for c in by_size[:missing]:
        quotas[c] += 1
    excess = int(np.maximum(quotas - sizes, 0).sum())
    quotas = np.minimum(quotas, sizes)
    for c in by_size:
        if excess == 0:
            break
        room = int(sizes[c] - quotas[c])
        add = min(room, excess)
        quotas[c] += add
        excess -= add
    return quotas


def sample_documents(emb: np.ndarray, clustering: Clustering, n: int, seed: int, temperature: float = 1.0,
                     rounds: int = 5, mmr_lambda: float = 1.0) -> list[Sampled]:
    """``n`` documents (rows of ``emb``) drawn across ``clustering`` as DUQGen does.

    Per cluster: its quota (:func:`cluster_quotas`); ``rounds`` draws without replacement with probability
    ``softmax(cos(doc, centroid) / temperature)``, pooled; then the quota is picked from the pool by maximal
    marginal relevance: relevance = cosine to the cluster's most central document, ``mmr_lambda`` = 1 keeps
    the most central, lower values trade centrality for spread. With ``rounds`` = 1 the single draw is kept
    as drawn. Seeded: the same inputs give the same documents."""
    if temperature <= 0:
        raise ConfigError(f"sampling temperature must be > 0, not {temperature}")
    if rounds < 1:
        raise ConfigError(f"sampling rounds must be at least 1, not {rounds}")
    rng = np.random.default_rng(seed)
    x = _unit(np.asarray(emb, dtype=np.float64))
    cents = _unit(np.asarray(clustering.centroids, dtype=np.float64))
    quotas = cluster_quotas(clustering.sizes(), n)
    out: list[Sampled] = []
    for c in range(len(cents)):
        rows = np.flatnonzero(clustering.assign == c)
        cos = x[rows] @ cents[c]
        picked = _pick(rows, cos, x, int(quotas[c]), temperature, rounds, mmr_lambda, rng)
        cos_of = dict(zip(rows.tolist(), cos.tolist()))
        out += [Sampled(int(r), c, float(cos_of[r])) for r in picked]
    return out


def _pick(rows: np.ndarray, cos: np.ndarray, x: np.ndarray, quota: int, temperature: float, rounds: int,
          mmr_lambda: float, rng: np.random.Generator) -> list[int]:
    if quota <= 0:
        return []
    z = cos / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    drawn: list[int] = []
    for _ in range(rounds):
        for r in rng.choice(rows, size=quota, replace=False, p=p).tolist():
            if r not in drawn:
                drawn.append(int(r))
    if rounds == 1:
        return drawn
    seed_row = int(rows[int(np.argmax(cos))])  # the document nearest the centroid
    return mmr(drawn, x, seed_row, quota, mmr_lambda)


def mmr(candidates: Sequence[int], x: np.ndarray, seed_row: int, k: int, lam: float) -> list[int]:
    """Greedy maximal marginal relevance (Carbonell & Goldstein, SIGIR 1998) over rows of unit vectors ``x``:
    relevance = cosine to ``seed_row``, redundancy = the largest cosine to an already picked row."""
    cand = list(dict.fromkeys(int(c) for c in candidates))
    rel = {c: float(x[c] @ x[seed_row]) for c in cand}
    picked: list[int] = []
    best_sim = dict.fromkeys(cand, 0.0)
    while cand and len(picked) < k:
        nxt = max(cand, key=lambda c: (lam * rel[c] - (1 - lam) * best_sim[c], -c))
        picked.append(nxt)
        cand.remove(nxt)
        for c in cand:
            best_sim[c] = max(best_sim[c], float(x[c] @ x[nxt]))
    return picked


def _unit(a: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(a, axis=-1, keepdims=True)
    return a / np.where(n > 0, n, 1.0)
