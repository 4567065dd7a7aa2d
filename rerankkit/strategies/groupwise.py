"""Groupwise reranking (GroupRank, Sun et al. 2025): score documents in random groups, merge, sort.

As the official inference code (AQ-MedAI/Diver ``Reranker/rerank_groupwise.py``): each of ``repeats``
rounds shuffles the candidates and cuts them into disjoint groups of ``group_size``; one prompt per
group asks for an integer usefulness score (0-10) for every document of the group as JSON, after a
reasoning section. Replies are sampled (temperature 0.3, top-p 0.8, seeded). A document's score is
the mean of the scores it received divided by the scale's top (so 0-1); documents whose text is shown
with newlines collapsed and cut to ``max_doc_chars`` characters. ``first_stage_weight`` (the
reference's optional merge: 0.4) blends that score with the first-stage score in ``rerank_run``.

Replies are read as the reference reads them (``parse="reference"``): a reply it cannot read gives
every document of its group 0 in that round; a readable reply gives scores to the documents it names
and nothing to the others. ``parse="lenient"`` salvages scores from replies the reference rejects.
A document no round scored (the reference drops it) goes below every scored one, in input order.
Everything is counted in the ranking's metadata. Groupings and sampling seeds derive from
(seed, query id, round), so a run is reproducible whatever order the queries come in; every group of
every query goes to the backend in one call.
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from ..backends.base import Capability, Prompt, Sampling
from ..errors import ConfigError
from ..options import option
from ..prompts.template import TemplateSchema
from ..types import Doc, Query, Ranking, ScoredDoc
from .base import QueryContext, Strategy, register_strategy
from .jsonscores import GroupScores, parse_group_scores, read_reference_scores
from .lockstep import Algorithm, GenerateRequest

COUNTERS = ("grouprank_groups", "grouprank_unparsed_groups", "grouprank_missing_scores",
            "grouprank_extra_keys", "grouprank_clamped_scores", "grouprank_unscored_docs")
PARSERS = ("reference", "lenient")
_NEWLINES = re.compile(r"\n+")


@dataclass
class GroupwiseParams:
    group_size: int = option(20, bounds=(1, None), help="documents per group (one JSON reply of scores per group)")
    repeats: int = option(2, bounds=(1, None),
                          help="random groupings whose scores are averaged (the reference's default 2; 6 = its best run)")
    seed: int = option(0, help="seed of the random groupings and of the sampled replies")
    temperature: float = option(0.3, bounds=(0.0, None), help="sampling temperature of the replies (0: greedy)")
    top_p: float = option(0.8, bounds=(0.0, 1.0), help="nucleus sampling share of the replies")
    max_new_tokens: int = option(2048, bounds=(1, None), help="tokens of one group's reply")
    max_doc_chars: int | None = option(3000, bounds=(1, None),
                                       help="characters of each document shown (newlines collapsed first)")
    max_doc_tokens: int | None = option(None, bounds=(1, None),
                                        help="an optional token cut on top, for small-context models (none: no cut)")
    parse: str = option("reference", choices=PARSERS,
                        help="reference: the official reply rules; lenient: recover scores from malformed replies")
    first_stage_weight: float = option(0.0, bounds=(0.0, 1.0),
                                       help="> 0: (1 - w) * GroupRank score + w * first-stage score (reference: 0.4)")

    def validate(self) -> None:
        Sampling(self.temperature, self.top_p)  # raises ConfigError on a bad value


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

    def sampling(self, qid: str, group: int) -> Sampling:
        """The decoding of one group's reply: the reference's sampling, seeded per (seed, query, group)."""
        p = self.params
        if p.temperature == 0.0:
            return Sampling()
        return Sampling(p.temperature, p.top_p, zlib.crc32(f"{p.seed}|{qid}|{group}".encode()))

    def shown(self, doc: Doc, ctx: QueryContext) -> str:
        """A document's text as the prompt shows it: newlines collapsed to one space, then cut."""
        text = _NEWLINES.sub(" ", doc.prompt_text())
        if self.params.max_doc_chars is not None:
            text = text[: self.params.max_doc_chars]
        return ctx.truncate(text)

    def prompt(self, query: Query, texts: Sequence[str]) -> Prompt:
        """The prompt for one group whose documents (already cut) are ``texts``, labelled 1..n."""
        items = self.separator.join(self.template.fill("item", id=k, doc=t) for k, t in enumerate(texts, start=1))
        return self.template.prompt(query=query.text, documents=items, num=len(texts))

    def read(self, reply: str, n: int) -> GroupScores:
        if self.params.parse == "reference":
            return read_reference_scores(reply, n)
        return parse_group_scores(reply, n, self.low, self.high)

    def algorithm(self, query: Query, docs: Sequence[Doc], ctx: QueryContext) -> Algorithm[Ranking]:
        texts = [self.shown(d, ctx) for d in docs]
        groups = self.groupings(query.qid, len(docs))
        requests = [GenerateRequest(self.prompt(query, [texts[i] for i in g]), self.params.max_new_tokens,
                                    self.sampling(query.qid, k)) for k, g in enumerate(groups)]
        replies = yield requests
        for name in COUNTERS:
            ctx.counters[name] += 0  # present even when zero
        ctx.counters["grouprank_groups"] += len(groups)
        seen: list[list[float]] = [[] for _ in docs]
        for group, reply in zip(groups, replies):
            res = self.read(reply.text, len(group))
            if not res.parsed:  # as the reference: the whole group scores the scale's bottom this round
                ctx.counters["grouprank_unparsed_groups"] += 1
                for i in group:
                    seen[i].append(self.low)
                continue
            ctx.counters["grouprank_extra_keys"] += res.extra_keys
            ctx.counters["grouprank_clamped_scores"] += res.clamped
            ctx.counters["grouprank_missing_scores"] += len(res.missing)
            for label, value in res.scores.items():
                seen[group[label - 1]].append(value)
        return Ranking.from_scores(query, docs, self._merge(seen, ctx))

    def _merge(self, seen: list[list[float]], ctx: QueryContext) -> list[float]:
        """Mean score per document over the scale's top (0-1 on 0-10); unscored ones below all others."""
        means = [sum(v) / len(v) / self.high if v else None for v in seen]
        floor = min((m for m in means if m is not None), default=0.0)
        unscored = 0
        scores: list[float] = []
        for m in means:
            if m is None:
                unscored += 1
                m = floor - unscored
            scores.append(m)
        ctx.counters["grouprank_unscored_docs"] += unscored
        return scores

    def merge_first_stage(self, reranked: Ranking, first: Sequence[ScoredDoc]) -> Ranking:
        """``first_stage_weight`` w > 0: rank the scored documents by (1 - w) * score + w * first-stage
        score (the reference's merge with w = 0.4, its first-stage scores used as they are); ties keep
        the GroupRank order; unscored documents stay below, in input order."""
        w = self.params.first_stage_weight
        if not w:
            return reranked
        base = {sd.docid: sd.score for sd in first}
        n_scored = len(reranked.docs) - int(reranked.metadata.get("grouprank_unscored_docs", 0))
        head, tail = reranked.docs[:n_scored], reranked.docs[n_scored:]
        blended = Ranking.from_scores(reranked.query, [sd.doc for sd in head],
                                      [(1 - w) * sd.score + w * base.get(sd.docid, 0.0) for sd in head])
        floor = min((sd.score for sd in blended.docs), default=0.0)
        below = tuple(ScoredDoc(sd.doc, floor - 1 - i) for i, sd in enumerate(tail))
        return Ranking(reranked.query, blended.docs + below, reranked.metadata)
