"""Searching PromptReps vectors: dense (faiss inner product), sparse (impact dot product), hybrid.

Hybrid = ``alpha * minmax(dense) + (1 - alpha) * minmax(sparse)`` over each side's top ``depth`` hits
per query, a document missing from one side counting 0 there (as the reference's ``hybrid.py`` does).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._lazy import require
from ..errors import ConfigError, InputError
from .encoder import Reps

Hits = list[tuple[int, float]]
MODES = ("dense", "sparse", "hybrid")


class PromptRepsIndex:
    """Dense and sparse vectors of a document collection (row ``i`` = document ``i``)."""

    def __init__(self, dense: np.ndarray, sparse: Any):
        if dense.shape[0] != sparse.shape[0]:
            raise InputError(f"{dense.shape[0]} dense but {sparse.shape[0]} sparse vectors")
        self.dense = np.ascontiguousarray(dense, dtype=np.float32)
        self.sparse = sparse.tocsr()
        self._faiss: Any = None

    @classmethod
    def from_reps(cls, reps: Reps) -> PromptRepsIndex:
        return cls(reps.dense, reps.sparse)

    def __len__(self) -> int:
        return int(self.dense.shape[0])

    # -- files -------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        """Write ``dense.faiss`` and ``sparse.npz`` (and ``reps.json``) into ``folder``."""
        faiss = require("faiss", "promptreps", "the dense PromptReps index")
        sp = require("scipy.sparse", "promptreps", "the sparse PromptReps index")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self._dense_index(), str(folder / "dense.faiss"))
        sp.save_npz(folder / "sparse.npz", self.sparse)
        (folder / "reps.json").write_text(json.dumps({"n": len(self), "dim": int(self.dense.shape[1]),
                                                      "vocab": int(self.sparse.shape[1])}))

    @classmethod
    def load(cls, folder: str | Path) -> PromptRepsIndex:
        faiss = require("faiss", "promptreps", "the dense PromptReps index")
        sp = require("scipy.sparse", "promptreps", "the sparse PromptReps index")
        folder = Path(folder)
        index = faiss.read_index(str(folder / "dense.faiss"))
        dense = index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), dtype=np.float32)
        out = cls(np.asarray(dense, dtype=np.float32), sp.load_npz(folder / "sparse.npz"))
        out._faiss = index
        return out

    # -- search ------------------------------------------------------------------------------
    def _dense_index(self) -> Any:
        if self._faiss is None:
            faiss = require("faiss", "promptreps", "the dense PromptReps index")
            self._faiss = faiss.IndexFlatIP(int(self.dense.shape[1]))
            if len(self):
                self._faiss.add(self.dense)
        return self._faiss

    def dense_search(self, queries: Reps, k: int) -> list[Hits]:
        if not len(self) or not len(queries):
            return [[] for _ in range(len(queries))]
        scores, ids = self._dense_index().search(np.ascontiguousarray(queries.dense, dtype=np.float32), min(k, len(self)))
        return [[(int(i), float(s)) for i, s in zip(ri, rs) if i >= 0] for ri, rs in zip(ids, scores)]

    def sparse_search(self, queries: Reps, k: int) -> list[Hits]:
        """Documents sharing a term with the query (score > 0), best first."""
        if not len(queries):
            return []
        scores = (self.sparse @ queries.sparse.T).T.tocsr()  # [n_queries, n_docs]
        out = []
        for r in range(scores.shape[0]):
            row = scores.getrow(r)
            ids, vals = row.indices, row.data
            keep = vals > 0
            ids, vals = ids[keep], vals[keep]
            if ids.size > k:
                part = np.argpartition(-vals, k - 1)[:k]
                ids, vals = ids[part], vals[part]
            order = np.lexsort((ids, -vals))
            out.append([(int(ids[i]), float(vals[i])) for i in order])
        return out

    def search(self, queries: Reps, k: int, mode: str = "hybrid", alpha: float = 0.5, depth: int = 1000) -> list[Hits]:
        """Top-``k`` (document row, score) per query."""
        if mode not in MODES:
            raise ConfigError(f"PromptReps search mode must be one of {MODES}, not {mode!r}")
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"alpha must be in [0, 1], not {alpha}")
        if mode == "dense":
            return self.dense_search(queries, k)
        if mode == "sparse":
            return self.sparse_search(queries, k)
        depth = max(depth, k)
        return [_fuse(d, s, alpha, k) for d, s in zip(self.dense_search(queries, depth),
                                                      self.sparse_search(queries, depth))]


def _minmax(hits: Hits) -> dict[int, float]:
    if not hits:
        return {}
    vals = [s for _, s in hits]
    lo, hi = min(vals), max(vals)
    return {i: (s - lo) / (hi - lo) if hi > lo else 1.0 for i, s in hits}


def _fuse(dense: Hits, sparse: Hits, alpha: float, k: int) -> Hits:
    d, s = _minmax(dense), _minmax(sparse)
    fused = {i: alpha * d.get(i, 0.0) + (1 - alpha) * s.get(i, 0.0) for i in {*d, *s}}
    return sorted(fused.items(), key=lambda x: (-x[1], x[0]))[:k]


def rows_to_ids(hits: Sequence[Hits], docids: Sequence[str]) -> list[list[tuple[str, float]]]:
    return [[(docids[i], s) for i, s in h] for h in hits]
