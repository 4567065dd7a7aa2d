"""LangChain: a document compressor that reranks retrieved documents with any rerankkit preset.

    >>> from langchain_classic.retrievers import ContextualCompressionRetriever
    >>> from rerankkit.integrations.langchain import RerankkitCompressor
    >>> compressor = RerankkitCompressor(reranker="pointwise-smollm2-135m", top_n=3)
    >>> retriever = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=base)

Needs the ``langchain`` extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._lazy import require
from ._common import arerank_texts, as_reranker, rerank_texts

_docs = require("langchain_core.documents", "langchain", "the LangChain document compressor")
_pydantic = require("pydantic", "langchain", "the LangChain document compressor")


class RerankkitCompressor(_docs.BaseDocumentCompressor):
    """Keeps the ``top_n`` documents (all when None), best first, each with its score in ``metadata[score_key]``.

    ``reranker`` is a preset name, a :class:`~rerankkit.RerankerSpec` or a :class:`~rerankkit.Reranker`
    (use :meth:`from_preset` to pass overrides such as ``threads=1``). Scores are the reranker's own.
    """

    model_config = _pydantic.ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    reranker: Any
    top_n: int | None = 3
    score_key: str = "relevance_score"

    @_pydantic.field_validator("reranker", mode="before")
    @classmethod
    def _build(cls, value: Any) -> Any:
        return as_reranker(value)

    @classmethod
    def from_preset(cls, preset: Any, top_n: int | None = 3, **overrides: Any) -> RerankkitCompressor:
        """A compressor over ``Reranker(preset, **overrides)``."""
        return cls(reranker=as_reranker(preset, **overrides), top_n=top_n)

    def compress_documents(self, documents: Sequence[Any], query: str, callbacks: Any = None) -> Sequence[Any]:
        docs = list(documents)
        return self._reordered(docs, rerank_texts(self.reranker, query, [d.page_content for d in docs], self.top_n))

    async def acompress_documents(self, documents: Sequence[Any], query: str, callbacks: Any = None) -> Sequence[Any]:
        """:meth:`compress_documents` without blocking the event loop (``Reranker.arerank``)."""
        docs = list(documents)
        ranked = await arerank_texts(self.reranker, query, [d.page_content for d in docs], self.top_n)
        return self._reordered(docs, ranked)

    def _reordered(self, docs: list[Any], ranked: list[tuple[int, float]]) -> list[Any]:
        out = []
        for i, score in ranked:
            d = docs[i]
            out.append(_docs.Document(page_content=d.page_content, metadata={**d.metadata, self.score_key: score},
                                      id=getattr(d, "id", None)))
        return out
