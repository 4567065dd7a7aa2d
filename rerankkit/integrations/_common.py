"""What the framework adapters share: turning a preset name into a Reranker, and one rerank call
(locked when blocking, through ``Reranker.arerank`` when async)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..aio import lock_for
from ..errors import InputError
from ..reranker import Reranker
from ..spec import RerankerSpec
from ..types import Doc, Query, Ranking


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
    if not _check(texts, top_n):
        return []
    with lock_for(reranker):  # backends are not promised to be thread-safe; frameworks call from worker threads
        ranking = reranker.rerank(Query("q", query), _docs(texts), top_k=top_n)
    return _ranked(ranking)


async def arerank_texts(reranker: Reranker, query: str, texts: Sequence[str],
                        top_n: int | None) -> list[tuple[int, float]]:
    """:func:`rerank_texts` from an event loop (``Reranker.arerank``: concurrent callers share model calls)."""
    if not _check(texts, top_n):
        return []
    return _ranked(await reranker.arerank(Query("q", query), _docs(texts), top_k=top_n))


def _check(texts: Sequence[str], top_n: int | None) -> bool:
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1):
        raise InputError(f"top_n must be a positive integer or None, not {top_n!r}")
    return bool(texts)


def _docs(texts: Sequence[str]) -> list[Doc]:
    return [Doc(str(i), t) for i, t in enumerate(texts)]


def _ranked(ranking: Ranking) -> list[tuple[int, float]]:
    return [(int(sd.doc.docid), float(sd.score)) for sd in ranking.docs]
