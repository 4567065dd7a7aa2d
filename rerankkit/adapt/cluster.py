"""Seeded k-means over document embeddings: numpy (always there) or faiss (when installed).

DUQGen clusters the target collection's document embeddings with k-means (faiss, 100 iterations) so that
documents can be sampled across the collection's topics (Chandradevan et al., NAACL 2024, §3.1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

log = logging.getLogger(__name__)
ENGINES = ("auto", "numpy", "faiss")


@dataclass(frozen=True)
class Clustering:
    """``centroids[k]`` (k x d), ``assign[i]``: the cluster of row i, and which implementation made it."""

    centroids: np.ndarray
    assign: np.ndarray
    engine: str

    def sizes(self) -> np.ndarray:
        return np.bincount(self.assign, minlength=len(self.centroids))


def kmeans(x: np.ndarray, k: int, seed: int, iterations: int = 100, engine: str = "auto") -> Clustering:
    """Cluster the rows of ``x`` into ``k`` groups (squared Euclidean distance, as faiss.Kmeans), seeded.

    ``engine``: ``numpy`` (k-means++ initialisation, Lloyd iterations, an emptied cluster re-seeded with the
    point farthest from its centroid), ``faiss`` (``faiss.Kmeans``), ``auto`` (faiss when importable).
    The same ``seed`` and engine give the same clustering. Clusters left empty at the end (only possible with
    duplicate documents) are dropped, so every cluster returned holds a document."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise ConfigError(f"k-means needs a non-empty 2-d array of embeddings, got shape {x.shape}")
    if not 1 <= k <= len(x):
        raise ConfigError(f"cannot make {k} clusters of {len(x)} documents (clusters must be 1..{len(x)})")
    if engine not in ENGINES:
        raise ConfigError(f"k-means engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine in ("auto", "faiss"):
        try:
            import faiss
        except ImportError:
            if engine == "faiss":
                from .._lazy import require

                require("faiss", "dense", "k-means with faiss")
            engine = "numpy"
        else:
            return _faiss_kmeans(faiss, x, k, seed, iterations)
    return _numpy_kmeans(x, k, seed, iterations)


def _faiss_kmeans(faiss, x: np.ndarray, k: int, seed: int, iterations: int) -> Clustering:  # noqa: ANN001
    km = faiss.Kmeans(x.shape[1], k, niter=iterations, seed=seed, verbose=False)
    km.train(x)
    _, idx = km.index.search(x, 1)
    return _without_empty(Clustering(np.asarray(km.centroids, dtype=np.float32), idx[:, 0].astype(np.int64), "faiss"))


def _numpy_kmeans(x: np.ndarray, k: int, seed: int, iterations: int) -> Clustering:
    rng = np.random.default_rng(seed)
    norms = (x * x).sum(1)
    centroids = _plus_plus(x, norms, k, rng)
    assign = np.zeros(len(x), dtype=np.int64)
    for it in range(max(1, iterations)):
        d = _sq_dist(x, norms, centroids)
        new = d.argmin(1)
        if it and np.array_equal(new, assign):
            break
        assign = new
        sizes = np.bincount(assign, minlength=k)
        for c in np.flatnonzero(sizes == 0):  # re-seed an empty cluster with the worst-served point
            far = int(d[np.arange(len(x)), assign].argmax())
            centroids[c] = x[far]
            assign[far] = c
            d[far] = 0.0
        sums = np.zeros_like(centroids)
        np.add.at(sums, assign, x)
        sizes = np.bincount(assign, minlength=k)
        centroids = sums / np.maximum(sizes, 1)[:, None]
    assign = _sq_dist(x, norms, centroids).argmin(1)
    return _without_empty(Clustering(centroids.astype(np.float32), assign.astype(np.int64), "numpy"))


def _without_empty(c: Clustering) -> Clustering:
    """Clusters that ended empty (identical documents make identical centroids) dropped and renumbered."""
    sizes = c.sizes()
    keep = np.flatnonzero(sizes > 0)
    if len(keep) == len(sizes):
        return c
    log.info("k-means: %d of %d clusters are empty (duplicate documents); dropped", len(sizes) - len(keep), len(sizes))
    new = np.full(len(sizes), -1, dtype=np.int64)
    new[keep] = np.arange(len(keep))
    return Clustering(c.centroids[keep], new[c.assign], c.engine)


def _plus_plus(x: np.ndarray, norms: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii, 2007)."""
    centroids = np.empty((k, x.shape[1]), dtype=np.float32)
    centroids[0] = x[rng.integers(len(x))]
    closest = _sq_dist(x, norms, centroids[:1])[:, 0]
    for c in range(1, k):
        total = float(closest.sum())
        i = int(rng.choice(len(x), p=closest / total)) if total > 0 else int(rng.integers(len(x)))
        centroids[c] = x[i]
        closest = np.minimum(closest, _sq_dist(x, norms, centroids[c : c + 1])[:, 0])
    return centroids


def _sq_dist(x: np.ndarray, norms: np.ndarray, c: np.ndarray) -> np.ndarray:
    return np.maximum(norms[:, None] - 2.0 * (x @ c.T) + (c * c).sum(1)[None, :], 0.0)
