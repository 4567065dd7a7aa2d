"""Frozen records passed across every boundary. They map 1:1 onto ir-measures' records.

``Query`` and ``Doc`` carry text; ``ScoredDoc`` pairs a ``Doc`` with a score; a ``Ranking`` is one
query's ordered list (the order is authoritative); a ``Run`` maps query ids to rankings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .errors import InputError

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_FLOAT32_RANGE = 1.0e38  # scores clipped to +-this: float32 steps left below it for millions of ties


@dataclass(frozen=True, slots=True)
class Query:
    """A query: ``qid`` (ir-measures ``query_id``) and its text."""

    qid: str
    text: str

    def __post_init__(self) -> None:
        if not isinstance(self.qid, str) or not isinstance(self.text, str):
            raise InputError(f"Query needs str qid and text, got {type(self.qid).__name__}/{type(self.text).__name__}")


@dataclass(frozen=True, slots=True)
class Doc:
    """A document: ``docid`` (ir-measures ``doc_id``), body text and optional title."""

    docid: str
    text: str = ""
    title: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.docid, str) or not isinstance(self.text, str) or not isinstance(self.title, str):
            raise InputError("Doc needs str docid, text and title")

    def prompt_text(self) -> str:
        """The text a prompt shows for this document (the one place that decides it)."""
        if self.title and self.text:
            return f"{self.title}: {self.text}"
        return self.title or self.text


@dataclass(frozen=True, slots=True)
class Qrel:
    """A relevance judgment (ir-measures ``Qrel``)."""

    qid: str
    docid: str
    relevance: int


@dataclass(frozen=True, slots=True)
class ScoredDoc:
    """A document with a score, as placed in a ranking."""

    doc: Doc
    score: float

    @property
    def docid(self) -> str:
        return self.doc.docid


@dataclass(frozen=True)
class Ranking:
    """One query's ranked documents; ``docs`` order is the ranking (scores need not be distinct)."""

    query: Query
    docs: tuple[ScoredDoc, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "docs", tuple(self.docs))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))
        check_unique_docids(d.doc for d in self.docs)

    def __reduce__(self) -> tuple[Any, ...]:  # picklable (to and from worker processes) despite the read-only view
        return (Ranking, (self.query, self.docs, dict(self.metadata)))

    @classmethod
    def from_scores(
        cls, query: Query, docs: Sequence[Doc], scores: Sequence[float], metadata: Mapping[str, Any] | None = None
    ) -> Ranking:
        """Sort ``docs`` by descending score; ties keep the input order."""
        if len(docs) != len(scores):
            raise InputError(f"{len(docs)} docs but {len(scores)} scores")
        order = sorted(range(len(docs)), key=lambda i: (-_finite(scores[i]), i))
        return cls(query, tuple(ScoredDoc(docs[i], float(scores[i])) for i in order), metadata or _EMPTY)

    @classmethod
    def from_order(
        cls, query: Query, docs: Sequence[Doc], order: Sequence[int], metadata: Mapping[str, Any] | None = None
    ) -> Ranking:
        """Rank ``docs`` by a permutation of their indices; scores are ``len - rank``."""
        if sorted(order) != list(range(len(docs))):
            raise InputError(f"order {list(order)} is not a permutation of range({len(docs)})")
        n = len(docs)
        return cls(query, tuple(ScoredDoc(docs[i], float(n - r)) for r, i in enumerate(order)), metadata or _EMPTY)

    @property
    def docids(self) -> list[str]:
        return [d.doc.docid for d in self.docs]

    def __len__(self) -> int:
        return len(self.docs)

    def top(self, k: int | None) -> Ranking:
        """The first ``k`` documents (all when ``k`` is None)."""
        return self if k is None else Ranking(self.query, self.docs[:k], self.metadata)

    def eval_scores(self) -> list[float]:
        """Scores that are strictly decreasing along the ranking, for evaluation and TREC files.

        trec_eval (and ir-measures through pytrec_eval) re-sorts a run by score *as a 32-bit float*,
        breaking ties by document id. So a score that is not below the previous one in float32 (equal,
        out of order, or apart by less than float32 resolves) is replaced by the next float32 below the
        previous score; every other score is kept exactly (beyond +-1e38, clipped there; NaN ranks as
        -inf). Those tools then see exactly this order.
        """
        import numpy as np

        out: list[float] = []
        prev = np.float32(np.inf)
        for d in self.docs:
            s = min(max(_finite(d.score), -_FLOAT32_RANGE), _FLOAT32_RANGE)
            s32 = np.float32(s)
            if s32 >= prev:
                s32 = np.nextafter(prev, np.float32(-np.inf))
                s = float(s32)
            out.append(s)
            prev = s32
        return out


class Run(Mapping[str, Ranking]):
    """Rankings of many queries, keyed by qid, in insertion order."""

    def __init__(self, rankings: Iterable[Ranking] = (), metadata: Mapping[str, Any] | None = None):
        self._rankings: dict[str, Ranking] = {}
        for r in rankings:
            if r.query.qid in self._rankings:
                raise InputError(f"duplicate query id {r.query.qid!r} in run")
            self._rankings[r.query.qid] = r
        self.metadata: dict[str, Any] = dict(metadata or {})

    def __getitem__(self, qid: str) -> Ranking:
        return self._rankings[qid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rankings)

    def __len__(self) -> int:
        return len(self._rankings)

    def __repr__(self) -> str:
        return f"Run({len(self)} queries)"

    @property
    def queries(self) -> list[Query]:
        return [r.query for r in self._rankings.values()]

    def head(self, n: int | None) -> Run:
        """The first ``n`` queries."""
        if n is None:
            return self
        return Run(list(self._rankings.values())[:n], self.metadata)

    def top(self, k: int | None) -> Run:
        """Every ranking cut to its first ``k`` documents."""
        return Run((r.top(k) for r in self._rankings.values()), self.metadata)

    def to_ir_measures(self) -> Iterator[Any]:
        """Yield ``ir_measures.ScoredDoc`` records (scores strictly decreasing within a query)."""
        import ir_measures

        for r in self._rankings.values():
            for d, s in zip(r.docs, r.eval_scores()):
                yield ir_measures.ScoredDoc(r.query.qid, d.doc.docid, s)


def check_unique_docids(docs: Iterable[Doc]) -> None:
    """Raise :class:`InputError` naming the first repeated document id."""
    seen: set[str] = set()
    for d in docs:
        if d.docid in seen:
            raise InputError(f"duplicate document id {d.docid!r}: each document may appear once per query")
        seen.add(d.docid)


def as_doc(item: Doc | str, index: int) -> Doc:
    """Accept a ``Doc`` or a plain string (given the id ``str(index)``)."""
    if isinstance(item, Doc):
        return item
    if isinstance(item, str):
        return Doc(str(index), item)
    raise InputError(f"documents must be str or Doc, got {type(item).__name__} at position {index}")


def _finite(x: float) -> float:
    """Map NaN to -inf so that it sorts last instead of poisoning comparisons."""
    return -math.inf if math.isnan(x) else float(x)
