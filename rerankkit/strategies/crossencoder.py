"""Cross-encoder reranking: one relevance logit per (query, document) pair from a classification head.

The backend (``crossencoder``: sentence-transformers' ``CrossEncoder``) returns raw logits; this
strategy applies the activation the model card uses (``activation="sigmoid"``: a probability, as
``CrossEncoder.predict`` gives for a one-label model; ``"none"``: the raw logit, as ms-marco-MiniLM's
card prints and FlagReranker's ``compute_score`` returns by default). Either way the ranking is the
same. The template's ``query`` and ``doc`` parts say what each side of the pair shows (plain by
default). Long documents: ``chunking=`` (see :mod:`.chunking`); by default the model cuts a pair that
exceeds its ``max_length``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..backends.base import Backend, Capability
from ..options import option
from ..prompts.template import TemplateSchema
from ..types import Doc, Query, Ranking
from .base import QueryContext, Strategy, register_strategy
from .chunking import ChunkingParams
from .lockstep import Algorithm, PairRequest

ACTIVATIONS = ("sigmoid", "none")


@dataclass
class CrossEncoderParams(ChunkingParams):
    activation: str = option("sigmoid", choices=ACTIVATIONS,
                             help="sigmoid: a probability, as CrossEncoder.predict gives for a one-label model; "
                                  "none: the raw logit (the ranking is the same)")
    max_doc_tokens: int | None = option(None, bounds=(1, None),
                                        help="document tokens kept in the pair (none: the model cuts the pair at "
                                             "its max_length)")


@register_strategy
class CrossEncoder(Strategy):
    name = "crossencoder"
    requires = Capability.RELEVANCE
    schema = TemplateSchema.of({"query": {"query"}, "doc": {"doc"}})
    Params = CrossEncoderParams
    pointwise_like = True

    def __init__(self, template, params=None):
        super().__init__(template, params)
        self.score_scale = "probability" if self.params.activation == "sigmoid" else "logit"  # type: ignore[misc]

    def pair(self, query: Query, doc_text: str) -> PairRequest:
        return PairRequest(self.template.fill("query", query=query.text), self.template.fill("doc", doc=doc_text))

    def doc_budget(self, query: Query, backend: Backend) -> int | None:
        """What a document may hold: the model's pair length less the query and 4 special tokens."""
        limit = getattr(backend, "max_input_tokens", lambda: None)()
        room = None
        if limit:
            q = backend.count_tokens([self.template.fill("query", query=query.text)])[0]
            room = max(16, limit - q - 4)
        return min((b for b in (self.max_doc_tokens, room) if b is not None), default=None)

    def algorithm(self, query: Query, docs: Sequence[Doc], ctx: QueryContext) -> Algorithm[Ranking]:
        logits = yield [self.pair(query, ctx.truncate(d.prompt_text())) for d in docs]
        scores = [_sigmoid(float(x)) if self.params.activation == "sigmoid" else float(x) for x in logits]
        return Ranking.from_scores(query, docs, scores)


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)
