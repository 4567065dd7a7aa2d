"""Haystack: a ranker component that reranks retrieved documents with any rerankkit preset.

    >>> from haystack import Pipeline
    >>> from rerankkit.integrations.haystack import RerankkitRanker
    >>> pipe = Pipeline()
    >>> pipe.add_component("retriever", retriever)
    >>> pipe.add_component("ranker", RerankkitRanker(reranker="pointwise-smollm2-135m", top_k=3))
    >>> pipe.connect("retriever.documents", "ranker.documents")
    >>> pipe.run({"retriever": {"query": q}, "ranker": {"query": q}})

Needs the ``haystack`` extra (``haystack-ai``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .._lazy import require
from ..errors import InputError
from ..reranker import Reranker
from ..spec import RerankerSpec
from ._common import arerank_texts, as_reranker, rerank_texts

_haystack = require("haystack", "haystack", "the Haystack ranker component")


@_haystack.component
class RerankkitRanker:
    """Ranks documents by relevance to the query with a rerankkit reranker, best first.

    ``reranker``: a preset name, a :class:`~rerankkit.RerankerSpec` (or its dict) or a ready
    :class:`~rerankkit.Reranker`; ``overrides``: keyword overrides for the preset (``{"threads": 1}``).
    ``top_k``: documents to keep (None: all); ``score_threshold``: drop documents scoring below it.
    ``meta_fields_to_embed``: meta fields shown to the model before the content, joined by
    ``embedding_separator`` (as Haystack's own rankers do). Each output document is a copy with
    ``score`` set to the reranker's score. The model loads in :meth:`warm_up` (or on the first run).
    """

    def __init__(self, reranker: str | dict[str, Any] | RerankerSpec | Reranker = "pointwise-smollm2-135m",
                 top_k: int | None = 10, score_threshold: float | None = None,
                 meta_fields_to_embed: list[str] | None = None, embedding_separator: str = "\n",
                 overrides: dict[str, Any] | None = None) -> None:
        _check_top_k(top_k)
        spec = RerankerSpec.from_dict(reranker) if isinstance(reranker, dict) else reranker
        self.reranker = as_reranker(spec, **(overrides or {}))
        self._source = reranker if isinstance(reranker, str) else self.reranker.spec.to_dict()
        self.overrides = dict(overrides or {}) if isinstance(reranker, str) else {}
        self.top_k = top_k
        self.score_threshold = score_threshold
        self.meta_fields_to_embed = list(meta_fields_to_embed or [])
        self.embedding_separator = embedding_separator

    def warm_up(self) -> None:
        """Load the model now rather than on the first run."""
        _ = self.reranker.backend

    def to_dict(self) -> dict[str, Any]:
        """A preset name stays a name (with its overrides); anything else is saved as its resolved spec."""
        return _haystack.default_to_dict(self, reranker=self._source, top_k=self.top_k,
                                         score_threshold=self.score_threshold,
                                         meta_fields_to_embed=self.meta_fields_to_embed,
                                         embedding_separator=self.embedding_separator, overrides=self.overrides)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RerankkitRanker:
        return _haystack.default_from_dict(cls, data)

    @_haystack.component.output_types(documents=list[_haystack.Document])
    def run(self, query: str, documents: list[Any], top_k: int | None = None,
            score_threshold: float | None = None) -> dict[str, list[Any]]:
        """Rerank ``documents`` for ``query``; ``top_k`` and ``score_threshold`` override the component's."""
        k, threshold = self._limits(top_k, score_threshold)
        ranked = rerank_texts(self.reranker, query, self._texts(documents), k)
        return {"documents": self._scored(documents, ranked, threshold)}

    @_haystack.component.output_types(documents=list[_haystack.Document])
    async def run_async(self, query: str, documents: list[Any], top_k: int | None = None,
                        score_threshold: float | None = None) -> dict[str, list[Any]]:
        """:meth:`run` without blocking the event loop (``Reranker.arerank``)."""
        k, threshold = self._limits(top_k, score_threshold)
        ranked = await arerank_texts(self.reranker, query, self._texts(documents), k)
        return {"documents": self._scored(documents, ranked, threshold)}

    def _limits(self, top_k: int | None, score_threshold: float | None) -> tuple[int | None, float | None]:
        k = self.top_k if top_k is None else top_k
        _check_top_k(k)
        return k, self.score_threshold if score_threshold is None else score_threshold

    def _texts(self, documents: list[Any]) -> list[str]:
        out = []
        for d in documents:
            meta = [str(d.meta[f]) for f in self.meta_fields_to_embed if d.meta.get(f) is not None]
            out.append(self.embedding_separator.join([*meta, d.content or ""]))
        return out

    @staticmethod
    def _scored(documents: list[Any], ranked: list[tuple[int, float]], threshold: float | None) -> list[Any]:
        return [dataclasses.replace(documents[i], score=score) for i, score in ranked
                if threshold is None or score >= threshold]


def _check_top_k(top_k: int | None) -> None:
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise InputError(f"top_k must be a positive integer or None, not {top_k!r}")
