"""Groupwise reranking (GroupRank, Sun et al. 2025): score documents in random groups, merge, sort.

The candidates are split into disjoint random groups of ``group_size``; one prompt per group asks
the model for an integer score (0-10 by default) for every document of the group, as JSON (after
a reasoning section if the template asks for one). The scores of all groups are merged and sorted.
Test-time scaling: ``repeats`` independent random groupings, a document's scores averaged.

Malformed replies lose nothing: a score the reply leaves out counts as the lowest value; a reply
with no readable JSON gives its documents no score in that grouping, and documents with no score
from any grouping go below every scored one, in their input order. All of it is counted in the
ranking's metadata. Groupings are seeded per (seed, query id, repeat), so a run is reproducible
whatever order the queries come in; every group of every query goes to the backend in one call.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from ..backends.base import Capability, Prompt
from ..errors import ConfigError
from ..options import option
from ..prompts.template import TemplateSchema
from ..types import Doc, Query, Ranking
from .base import QueryContext, Strategy, register_strategy
from .jsonscores import parse_group_scores
from .lockstep import Algorithm, GenerateRequest

COUNTERS = ("grouprank_groups", "grouprank_unparsed_groups", "grouprank_missing_scores",
            "grouprank_extra_keys", "grouprank_clamped_scores", "grouprank_unscored_docs")


@dataclass
class GroupwiseParams:
    group_size: int = option(20, bounds=(1, None), help="documents per group (one JSON reply of scores per group)")
    repeats: int = option(1, bounds=(1, None), help="random groupings whose scores are averaged (test-time scaling)")
    seed: int = option(0, help="seed of the random groupings")
    max_new_tokens: int = option(2048, bounds=(1, None), help="tokens of one group's reply")
    max_doc_tokens: int | None = option(512, bounds=(1, None), help="tokens per document (none: all)")


@register_strategy
class Groupwise(Strategy):
    """GroupRank-style groupwise scoring. Template parts: ``user`` (``{query}``, ``{documents}``, ``{num}``),
    ``item`` (``{id}``, ``{doc}``: one listed document); ``extra``: ``item_separator``, ``scale: [low, high]``."""

    name = "groupwise"
    requires = Capability.GENERATE
    schema = TemplateSchema.of(
        {"user": {"query", "documents"}, "item": {"id", "doc"}},
        {"user": {"num"}, "system": {"num", "query"}, "prefix": {"num"}},
    )
    Params = GroupwiseParams

    def __init__(self, template, params=None):
        super().__init__(template, params)
        scale = self.template.extra.get("scale", [0, 10])
        try:
            self.low, self.high = float(scale[0]), float(scale[1])
        except (TypeError, ValueError, IndexError):
            raise ConfigError(f"template {template.name!r}: extra.scale must be [low, high], not {scale!r}") from None
        if not self.low < self.high:
            raise ConfigError(f"template {template.name!r}: extra.scale needs low < high, got {scale!r}")
        self.separator = str(self.template.extra.get("item_separator", ""))

    def groupings(self, qid: str, n: int) -> list[list[int]]:
        """``repeats`` random partitions of ``range(n)`` into groups of ``group_size`` (the last may be smaller)."""
        c = self.params.group_size
        out: list[list[int]] = []
        for r in range(self.params.repeats):
            order = list(range(n))
            random.Random(f"{self.params.seed}|{qid}|{r}").shuffle(order)
            out.extend(order[i : i + c] for i in range(0, n, c))
        return out

    def prompt(self, query: Query, texts: Sequence[str]) -> Prompt:
        """The prompt for one group whose documents (already truncated) are ``texts``, labelled 1..n."""
        items = self.separator.join(self.template.fill("item", id=k, doc=t) for k, t in enumerate(texts, start=1))
        return self.template.prompt(query=query.text, documents=items, num=len(texts))

    def algorithm(self, query: Query, docs: Sequence[Doc], ctx: QueryContext) -> Algorithm[Ranking]:
        texts = [ctx.truncate(d.prompt_text()) for d in docs]
        groups = self.groupings(query.qid, len(docs))
        requests = [GenerateRequest(self.prompt(query, [texts[i] for i in g]), self.params.max_new_tokens)
                    for g in groups]
        replies = yield requests
        for name in COUNTERS:
            ctx.counters[name] += 0  # present even when zero
        ctx.counters["grouprank_groups"] += len(groups)
        seen: list[list[float]] = [[] for _ in docs]
        for group, reply in zip(groups, replies):
            res = parse_group_scores(reply.text, len(group), self.low, self.high)
            if not res.parsed:
                ctx.counters["grouprank_unparsed_groups"] += 1
                continue
            ctx.counters["grouprank_extra_keys"] += res.extra_keys
            ctx.counters["grouprank_clamped_scores"] += res.clamped
            for label, i in enumerate(group, start=1):
                if label in res.scores:
                    seen[i].append(res.scores[label])
                else:
                    seen[i].append(self.low)
                    ctx.counters["grouprank_missing_scores"] += 1
        return Ranking.from_scores(query, docs, self._merge(seen, ctx))

    def _merge(self, seen: list[list[float]], ctx: QueryContext) -> list[float]:
        """Mean score per document; unscored documents below all others, in input order."""
        scores: list[float] = []
        unscored = 0
        for values in seen:
            if values:
                scores.append(sum(values) / len(values))
            else:
                unscored += 1
                scores.append(self.low - unscored)
        ctx.counters["grouprank_unscored_docs"] += unscored
        return scores
