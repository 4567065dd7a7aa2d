"""Embedding reranking: E²Rank (Liu et al. 2025) and plain query-document cosine.

``mode="listwise"`` (E²Rank): the reranking query is a listwise prompt built from the query and the
first ``prompt_docs`` candidates (chat-templated by the backend); its embedding is compared by cosine
with each candidate's embedding, a pseudo-relevance-feedback query. As the official evaluation code
(Alibaba-NLP/E2Rank ``src/eval.py``), documents are cut to their first ``max_doc_words`` words (1,024),
the same text listed in the prompt and embedded (with the template's ``doc_suffix``). ``mode="query"``: the query text
alone (the template's ``query`` part) is embedded: ordinary bi-encoder reranking.

One embedding call covers the prompts of every query and all their documents (a document shared by
several queries is embedded once). Across calls and runs, document vectors are reused through the
content-addressed call cache (``Reranker(..., cache=PATH)``): an embedding is keyed by backend, model,
settings and the exact text, so a document embedded before by the same model is not embedded again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..backends.base import Capability
from ..errors import ConfigError
from ..options import option
from ..prompts.template import TemplateSchema
from ..types import Doc, Query, Ranking
from .base import QueryContext, Strategy, register_strategy
from .chunking import ChunkingParams
from .lockstep import Algorithm, EmbedRequest
from .truncation import cut_words


@dataclass
class EmbeddingParams(ChunkingParams):
    mode: str = option("listwise", choices=("listwise", "query"),
                       help="listwise: the E2Rank prompt (query + top candidates) as the query; query: the query alone")
    prompt_docs: int = option(20, bounds=(0, None),
                              help="candidates listed in the listwise prompt (the first ones of the input order)")
    max_doc_words: int | None = option(1024, bounds=(1, None),
                                       help="documents cut to their first N words, as E2Rank's evaluation code does")
    max_doc_tokens: int | None = option(None, bounds=(1, None), help="an optional token cut on top (none: no cut)")

    def validate(self) -> None:
        super().validate()
        if self.chunking != "none" and self.mode != "query":
            raise ConfigError("embedding chunking needs mode='query' (a listwise prompt would list the chunks)")


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
    format_enumerations = ("brackets", "parens", "dot", "descriptor")  # nothing is parsed

    def __init__(self, template, params=None):
        super().__init__(template, params)
        if self.params.mode == "query" and "query" not in self.template.parts:
            raise ConfigError(f"template {template.name!r} has no 'query' part, needed by mode='query'")
        self.pointwise_like = self.params.mode == "query"  # type: ignore[misc]
        self.separator = str(self.template.extra.get("item_separator", "\n"))
        self.doc_suffix = str(self.template.extra.get("doc_suffix", ""))

    def doc_budget(self, query: Query, backend) -> int | None:
        """``max_doc_tokens``, within the model's input limit (less two special tokens)."""
        limit = getattr(backend, "max_input_tokens", lambda: None)()
        window = limit - 2 if limit else None
        return min((b for b in (self.max_doc_tokens, window) if b is not None), default=None)

    def query_request(self, query: Query, texts: Sequence[str]) -> EmbedRequest:
        """What is embedded as the query: the listwise prompt over ``texts`` (or the query alone)."""
        if self.params.mode == "query":
            return EmbedRequest(self.template.fill("query", query=query.text))
        shown = texts[: self.params.prompt_docs]
        items = self.separator.join(self.template.fill("item", id=k, doc=t) for k, t in enumerate(shown, start=1))
        return EmbedRequest(self.template.prompt(query=query.text, documents=items))

    def algorithm(self, query: Query, docs: Sequence[Doc], ctx: QueryContext) -> Algorithm[Ranking]:
        texts = [ctx.truncate(cut_words(d.prompt_text(), self.params.max_doc_words)) for d in docs]
        out = yield [self.query_request(query, texts), *(EmbedRequest(t + self.doc_suffix) for t in texts)]
        q = _unit(out[0])
        scores = [float(np.dot(q, _unit(v))) for v in out[1:]]
        return Ranking.from_scores(query, docs, scores)


def _unit(v: object) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(a))
    return a / norm if norm > 0 else a
