"""Long documents: score a document as overlapping chunks and aggregate, or cut it the way a request asks.

Any strategy that scores each document on its own (pointwise, cross-encoder, embedding in ``query``
mode) accepts ``chunking="max" | "first" | "mean"`` (Dai & Callan's MaxP / FirstP, and the mean):
each document's body is split into windows of ``chunk_tokens`` tokens that overlap by
``chunk_overlap`` tokens (at most ``max_chunks`` of them), every window is scored as a document of
its own (with the document's title), and the document gets the max, first or mean of its windows'
scores. The windows are exact substrings of the text, cut at the backend tokenizer's token
boundaries. ``chunk_tokens`` defaults to what the strategy lets a document hold (its
``max_doc_tokens``, or the model's input limit less the query for a cross-encoder).

A :class:`DocPolicy` is the same per request (the server's ``max_chunks_per_doc``,
``max_tokens_per_doc`` and TEI's ``truncate`` / ``truncation_direction``). Every ranking counts
``chunks`` (windows scored), ``chunked_docs`` (documents scored as more than one window) and, as
always, ``truncated_docs`` (documents not read whole).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backends.base import spans_of
from ..errors import ConfigError, InputError
from ..options import option
from ..types import Doc, Query, Ranking

AGGREGATES = ("none", "max", "first", "mean")
_SEP = "\x1f"  # chunk ids are "<document position>\x1f<window>": generated, so they never collide


@dataclass
class ChunkingParams:
    """Long-document parameters of every pointwise-like strategy (see the module docstring); a strategy's
    ``Params`` extends it, and a ``validate()`` of its own calls ``super().validate()``."""

    chunking: str = option("none", choices=AGGREGATES,
                           help="score a long document as overlapping windows and keep the max, first or mean "
                                "window score (none: one window, cut to the document budget)")
    chunk_tokens: int | None = option(None, bounds=(1, None),
                                      help="window size in tokens (none: what the strategy lets a document hold)")
    chunk_overlap: int | None = option(None, bounds=(0, None),
                                       help="tokens neighbouring windows share (none: chunk_tokens // 8)")
    max_chunks: int | None = option(None, bounds=(1, None),
                                    help="windows scored per document; the rest is not read (none: all)")

    def validate(self) -> None:
        self.validate_chunking()

    def validate_chunking(self) -> None:
        DocPolicy(self.chunking, self.chunk_tokens, self.chunk_overlap, self.max_chunks).check()


@dataclass(frozen=True)
class DocPolicy:
    """How one query's documents are fitted to the model.

    ``aggregate``/``chunk_tokens``/``overlap``/``max_chunks``: chunking as above. ``max_doc_tokens``: cut
    every document body to this many tokens first (Cohere's ``max_tokens_per_doc``). ``keep``: which end
    a cut keeps (``head`` or ``tail``; TEI's ``truncation_direction``). ``on_overflow="error"``: refuse a
    document the model cannot read whole instead of cutting it (TEI's ``truncate=false``).
    """

    aggregate: str = "none"
    chunk_tokens: int | None = None
    overlap: int | None = None
    max_chunks: int | None = None
    max_doc_tokens: int | None = None
    keep: str = "head"
    on_overflow: str = "truncate"

    def check(self) -> DocPolicy:
        if self.aggregate not in AGGREGATES:
            raise ConfigError(f"chunking must be one of {', '.join(AGGREGATES)}, not {self.aggregate!r}")
        for name in ("chunk_tokens", "max_chunks", "max_doc_tokens"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ConfigError(f"{name} must be a positive integer, not {v!r}")
        if self.overlap is not None and (not isinstance(self.overlap, int) or self.overlap < 0):
            raise ConfigError(f"chunk_overlap must be a non-negative integer, not {self.overlap!r}")
        if self.overlap is not None and self.chunk_tokens is not None and self.overlap >= self.chunk_tokens:
            raise ConfigError(f"chunk_overlap ({self.overlap}) must be smaller than chunk_tokens ({self.chunk_tokens})")
        if self.keep not in ("head", "tail"):
            raise ConfigError(f"keep must be 'head' or 'tail', not {self.keep!r}")
        if self.on_overflow not in ("truncate", "error"):
            raise ConfigError(f"on_overflow must be 'truncate' or 'error', not {self.on_overflow!r}")
        return self

    @property
    def active(self) -> bool:
        return self != DocPolicy()

    @classmethod
    def from_params(cls, params: Any) -> DocPolicy:
        """The default policy of a strategy whose parameters include :class:`ChunkingParams`."""
        if not isinstance(params, ChunkingParams):
            return cls()
        return cls(params.chunking, params.chunk_tokens, params.chunk_overlap, params.max_chunks)

    def overridden_by(self, other: DocPolicy | None) -> DocPolicy:
        """This policy with every field ``other`` sets (differs from the default) taken from ``other``."""
        if other is None:
            return self
        base = DocPolicy()
        changes = {f.name: getattr(other, f.name) for f in dataclasses.fields(self)
                   if getattr(other, f.name) != getattr(base, f.name)}
        return dataclasses.replace(self, **changes).check()


@dataclass
class ChunkPlan:
    """One query's documents as the windows that are scored, and how to fold the scores back."""

    query: Query
    docs: list[Doc]  # the original documents
    windows: list[Doc]  # what the strategy scores
    owner: list[int]  # window -> position of its document
    aggregate: str
    cut: set[int]  # positions of documents not read whole here
    chunked: int

    def collapse(self, ranking: Ranking, inner_truncated: Callable[[Doc], bool]) -> tuple[Ranking, dict[str, int]]:
        """The ranking of the original documents, each scored by its windows' aggregate."""
        by_id = {w.docid: k for k, w in enumerate(self.windows)}
        per_doc: list[list[tuple[int, float]]] = [[] for _ in self.docs]
        cut = set(self.cut)
        for sd in ranking.docs:
            k = by_id[sd.docid]
            per_doc[self.owner[k]].append((k, float(sd.score)))
            if inner_truncated(sd.doc):
                cut.add(self.owner[k])
        scores = [_aggregate(sorted(s), self.aggregate) for s in per_doc]
        counts = {"chunks": len(self.windows), "chunked_docs": self.chunked, "truncated_docs": len(cut)}
        return Ranking.from_scores(self.query, self.docs, scores, ranking.metadata), counts


def _aggregate(scores: list[tuple[int, float]], how: str) -> float:
    values = [s for _, s in scores]
    if how == "max":
        return max(values)
    if how == "mean":
        return float(np.mean(values))
    return values[0]  # "first" (and "none": one window per document)


def plan_query(query: Query, docs: Sequence[Doc], policy: DocPolicy, backend: Any, budget: int | None,
               count: Callable[[str], int]) -> ChunkPlan:
    """Windows of ``docs`` under ``policy``; ``budget`` is what the strategy lets one document hold."""
    windows: list[Doc] = []
    owner: list[int] = []
    cut: set[int] = set()
    chunked = 0
    for i, d in enumerate(docs):
        spans = spans_of(backend, d.text)
        body_spans = spans
        if policy.max_doc_tokens is not None and len(spans) > policy.max_doc_tokens:
            body_spans = _keep(spans, policy.max_doc_tokens, policy.keep)
            cut.add(i)
        if policy.aggregate == "none":
            if budget is not None and len(body_spans) > budget:
                if policy.on_overflow == "error":
                    raise InputError(f"document {d.docid!r} has {len(body_spans)} tokens; this reranker reads at "
                                     f"most {budget} (allow truncation to have it cut)")
                if policy.keep == "tail":
                    body_spans = _keep(body_spans, budget, "tail")
                    cut.add(i)
            parts = [body_spans]
        else:
            size = policy.chunk_tokens or _window(budget, d.title, count)
            overlap = policy.overlap if policy.overlap is not None else size // 8
            if overlap >= size:
                raise ConfigError(f"chunk_overlap ({overlap}) must be smaller than the window ({size} tokens)")
            parts = _windows(body_spans, size, size - overlap)
            limit = 1 if policy.aggregate == "first" else policy.max_chunks
            if limit is not None and len(parts) > limit:
                parts = parts[:limit]
                cut.add(i)
            chunked += len(parts) > 1
        for k, part in enumerate(parts):
            text = d.text[part[0][0]: part[-1][1]] if part else ""
            windows.append(Doc(f"{i}{_SEP}{k}", text, d.title))
            owner.append(i)
    return ChunkPlan(query, list(docs), windows, owner, policy.aggregate, cut, chunked)


def _keep(spans: list[tuple[int, int]], n: int, side: str) -> list[tuple[int, int]]:
    return spans[-n:] if side == "tail" else spans[:n]


def _window(budget: int | None, title: str, count: Callable[[str], int]) -> int:
    if budget is None:
        raise ConfigError("chunking needs a window size: give chunk_tokens=N (this strategy and backend set no "
                          "document budget)")
    overhead = count(title) + 2 if title else 0  # the title and its separator are repeated in every window
    return max(16, budget - overhead)


def _windows(spans: list[tuple[int, int]], size: int, stride: int) -> list[list[tuple[int, int]]]:
    if len(spans) <= size:
        return [spans]
    out = []
    start = 0
    while True:
        end = min(start + size, len(spans))
        out.append(spans[start:end])
        if end == len(spans):
            return out
        start += stride
