"""What both framework adapters share: turning a preset name into a Reranker, and one locked rerank call."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

from ..errors import InputError
from ..reranker import Reranker
from ..spec import RerankerSpec
from ..types import Doc, Query

_LOCKS: weakref.WeakKeyDictionary[Reranker, threading.Lock] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def as_reranker(value: Any, **overrides: Any) -> Reranker:
    """A :class:`Reranker` from a preset name, a :class:`RerankerSpec` or a ready Reranker."""
    if isinstance(value, Reranker):
        if overrides:
            raise InputError("overrides apply to a preset name or spec, not to a ready Reranker")
        return value
    if isinstance(value, (str, RerankerSpec)):
        return Reranker(value, **overrides)
    raise InputError(f"reranker must be a preset name, RerankerSpec or Reranker, not {type(value).__name__}")


def rerank_texts(reranker: Reranker, query: str, texts: Sequence[str], top_n: int | None) -> list[tuple[int, float]]:
    """``(input index, score)`` of the best ``top_n`` texts, best first (one caller at a time per reranker)."""
    if top_n is not None and top_n < 1:
        raise InputError(f"top_n must be a positive integer or None, not {top_n!r}")
    if not texts:
        return []
    docs = [Doc(str(i), t) for i, t in enumerate(texts)]
    with _GUARD:
        lock = _LOCKS.setdefault(reranker, threading.Lock())
    with lock:  # backends are not promised to be thread-safe; async frameworks call from worker threads
        ranking = reranker.rerank(Query("q", query), docs, top_k=top_n)
    return [(int(sd.doc.docid), float(sd.score)) for sd in ranking.docs]
