"""Embedding reranking: E²Rank (Liu et al. 2025) and plain query-document cosine.

``mode="listwise"`` (E²Rank): the reranking query is a listwise prompt built from the query and the
first ``prompt_docs`` candidates (chat-templated by the backend); its embedding is compared by cosine
with each candidate's embedding, a pseudo-relevance-feedback query. ``mode="query"``: the query text
alone (the template's ``query`` part) is embedded: ordinary bi-encoder reranking.

One embedding call covers the prompts of every query and every document not embedded before:
document vectors are kept in an :class:`~rerankkit.embedcache.EmbeddingCache` keyed by the backend's
model and settings and the exact text, so a document embedded earlier by the same model (another
query, another run, a retriever that shares the cache) is not embedded again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..backends.base import Capability
from ..embedcache import EmbeddingCache, model_key, shared_cache
from ..errors import ConfigError
from ..prompts.template import TemplateSchema
from ..types import Doc, Query, Ranking
from .base import QueryContext, Strategy, register_strategy
from .lockstep import Algorithm, EmbedRequest


@dataclass
class EmbeddingParams:
    mode: str = "listwise"  # "listwise" (E²Rank prompt as the query) | "query" (the query alone)
    prompt_docs: int = 20  # candidates listed in the listwise prompt (the first ones of the input order)
    max_doc_tokens: int | None = 1024
    cache: str = "memory"  # "memory" (shared in this process) | "none" | path of a SQLite file

    def validate(self) -> None:
        if self.mode not in ("listwise", "query"):
            raise ConfigError(f"embedding mode must be 'listwise' or 'query', not {self.mode!r}")
        if self.prompt_docs < 0:
            raise ConfigError(f"embedding prompt_docs must be >= 0, not {self.prompt_docs}")


@register_strategy
class Embedding(Strategy):
    """Template parts: ``user`` (``{query}``, ``{documents}``: the listwise prompt), ``item`` (``{id}``,
    ``{doc}``), optional ``system`` and ``query`` (``{query}``: the text embedded in ``query`` mode);
    ``extra``: ``item_separator`` (between listed documents), ``doc_suffix`` (appended to every
    document before embedding, e.g. the model's end-of-text token)."""

    name = "embedding"
    requires = Capability.EMBED
    schema = TemplateSchema.of(
        {"user": {"query", "documents"}, "item": {"id", "doc"}},
        {"query": {"query"}, "system": {"query"}, "prefix": set()},
    )
    Params = EmbeddingParams

    def __init__(self, template, params=None):
        super().__init__(template, params)
        if self.params.mode == "query" and "query" not in self.template.parts:
            raise ConfigError(f"template {template.name!r} has no 'query' part, needed by mode='query'")
        self.separator = str(self.template.extra.get("item_separator", "\n"))
        self.doc_suffix = str(self.template.extra.get("doc_suffix", ""))
        cache = self.params.cache
        self.cache: EmbeddingCache | None = (None if cache in ("none", "") else
                                             shared_cache(None if cache == "memory" else cache))

    def query_request(self, query: Query, texts: Sequence[str]) -> EmbedRequest:
        """What is embedded as the query: the listwise prompt over ``texts`` (or the query alone)."""
        if self.params.mode == "query":
            return EmbedRequest(self.template.fill("query", query=query.text))
        shown = texts[: self.params.prompt_docs]
        items = self.separator.join(self.template.fill("item", id=k, doc=t) for k, t in enumerate(shown, start=1))
        return EmbedRequest(self.template.prompt(query=query.text, documents=items))

    def algorithm(self, query: Query, docs: Sequence[Doc], ctx: QueryContext) -> Algorithm[Ranking]:
        texts = [ctx.truncate(d.prompt_text()) for d in docs]
        doc_inputs = [t + self.doc_suffix for t in texts]
        key = model_key(ctx.backend)
        vectors = self.cache.get(key, doc_inputs) if self.cache is not None else [None] * len(docs)
        missing = [i for i, v in enumerate(vectors) if v is None]
        out = yield [self.query_request(query, texts), *(EmbedRequest(doc_inputs[i]) for i in missing)]
        q = _unit(out[0])
        for i, v in zip(missing, out[1:]):
            vectors[i] = np.asarray(v, dtype=np.float32)
        if self.cache is not None and missing:
            self.cache.put(key, [doc_inputs[i] for i in missing], [vectors[i] for i in missing])
        ctx.counters["embedding_cached_docs"] += len(docs) - len(missing)
        scores = [float(np.dot(q, _unit(v))) for v in vectors]
        return Ranking.from_scores(query, docs, scores)


def _unit(v: object) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(a))
    return a / norm if norm > 0 else a
