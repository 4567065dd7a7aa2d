"""Pointwise reranking: one prompt per document, scored from the next-token answer distribution.

Templates declare ``choices`` as numeric relevance labels mapped to their token variants
(yes/no -> 1/0, monoT5 true/false, graded labels). ``mode=logodds`` scores a document by
log p(top label) - log p(bottom label); ``mode=expected`` by the expected label value.
A template may use ``{instruction}`` (Qwen3-Reranker's task instruction): its default is the
template's ``extra.instruction``, and ``instruction=`` sets it. Long documents: ``chunking=`` (see
:mod:`.chunking`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..backends.base import Capability, ScoreRequest
from ..errors import ConfigError
from ..options import option
from ..prompts.template import TemplateSchema
from ..types import Doc, Query, Ranking
from .base import QueryContext, Strategy, TrainingPrompt, register_strategy
from .chunking import ChunkingParams
from .lockstep import Algorithm
from .scoring import flatten_choices, relevance_score


@dataclass
class PointwiseParams(ChunkingParams):
    mode: str = option("", choices=("", "logodds", "expected"),
                       help="logodds: log p(top label) - log p(bottom label); expected: expected label value; "
                            "empty: the template's default")
    max_doc_tokens: int | None = option(512, bounds=(1, None), help="document tokens kept in the prompt (none: all)")
    instruction: str = option("", help="fills the template's {instruction} (Qwen3-Reranker's task line); "
                                       "empty: the template's default")


@register_strategy
class Pointwise(Strategy):
    name = "pointwise"
    requires = Capability.SCORE
    schema = TemplateSchema.of({"user": {"doc"}}, {"user": {"query", "instruction"}, "system": {"query", "instruction"},
                                                   "prefix": {"query"}}, needs_choices=True)
    Params = PointwiseParams
    pointwise_like = True
    training_objective = "pointwise"

    def __init__(self, template, params=None):
        super().__init__(template, params)
        self.choices, self.spans = flatten_choices(self.template.choices)
        try:
            [float(k) for k in self.template.choices]
        except ValueError:
            raise ConfigError(f"template {template.name!r}: pointwise choice labels must be numbers") from None
        self.mode = self.params.mode or str(self.template.extra.get("mode", "logodds"))
        uses = any("instruction" in self.template.placeholders(p) for p in ("system", "user"))
        if self.params.instruction and not uses:
            raise ConfigError(f"template {template.name!r} has no {{instruction}}; instruction= does not apply to it")
        self.instruction = self.params.instruction or str(self.template.extra.get("instruction", ""))

    def requests(self, query: Query, docs: Sequence[Doc], ctx: QueryContext) -> list[ScoreRequest]:
        return [
            ScoreRequest(self.template.prompt(query=query.text, doc=ctx.truncate(d.prompt_text()),
                                              instruction=self.instruction), self.choices)
            for d in docs
        ]

    def training_prompt(self, query: Query, docs: Sequence[Doc], order: Sequence[int],
                        ctx: QueryContext) -> TrainingPrompt:
        """The document's prompt; the top label's answers mean relevant, the bottom label's not."""
        labels = {float(k): v for k, v in self.template.choices.items()}
        return TrainingPrompt(self.requests(query, docs[:1], ctx)[0].prompt, positive=tuple(labels[max(labels)]),
                              negative=tuple(labels[min(labels)]))

    def algorithm(self, query: Query, docs: Sequence[Doc], ctx: QueryContext) -> Algorithm[Ranking]:
        logprobs = yield self.requests(query, docs, ctx)
        scores = [relevance_score(lp, self.spans, self.mode) for lp in logprobs]
        return Ranking.from_scores(query, docs, scores)
