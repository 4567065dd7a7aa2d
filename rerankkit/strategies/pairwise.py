"""Pairwise Ranking Prompting (PRP; Qin et al., Findings of NAACL 2024).

Every pair is asked in both orders, in the same batch: an answer that agrees in both orders is a
preference, anything else (disagreement, no answer) a tie. Methods:

- ``allpair``: all ``n(n-1)`` prompts at once; score = wins + 0.5 * ties, ties keep the input order.
- ``heapsort``: binary max-heap with the pairwise comparator; stops once the top-``k`` is fixed;
  the rest keep their input order.
- ``sliding``: PRP-Sliding-K, ``k`` bubble passes from the bottom, swapping when the lower wins.

A pair is never asked twice for one query (memoised); independent comparisons of one query and
the comparisons of all queries being reranked together share backend calls (lock-step).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from ..backends.base import Capability
from ..options import option
from ..prompts.template import TemplateSchema
from ..types import Doc, Query, Ranking
from .base import QueryContext, Strategy, register_strategy
from .comparing import ComparingParams, GroupJudge, drive
from .lockstep import Algorithm, Request
from .sorting import Group, Winner, bubble_passes, heapsort, pair_best

METHODS = ("allpair", "heapsort", "sliding")


@dataclass
class PairwiseParams(ComparingParams):
    method: str = option("sliding", choices=METHODS,
                         help="allpair: every pair in both orders at once; heapsort: top-k by heap sort; "
                              "sliding: k bubble passes from the bottom")
    k: int = option(10, bounds=(1, None), help="heapsort: top-k documents to fix; sliding: number of passes")


class PairJudge:
    """Pairwise comparator over a :class:`GroupJudge`: both orders, consistent answers only."""

    def __init__(self, judge: GroupJudge):
        self.judge = judge
        self.outcome: dict[tuple[int, int], int | None] = {}
        for key in ("comparisons", "ties"):
            judge.ctx.counters[key] += 0

    def compare(self, pairs: list[Group]) -> Generator[list[Request], list[Any], list[Winner]]:
        """Winner of each pair (a document index), or None for a tie."""
        groups = [g for a, b in pairs for g in ((a, b), (b, a))]
        picks = yield from self.judge.ask(groups)
        out: list[Winner] = []
        for (a, b), first, second in zip(pairs, picks[0::2], picks[1::2]):
            key = (min(a, b), max(a, b))
            if key not in self.outcome:
                # first: (a, b) shown as (A, B); second: (b, a) shown as (A, B)
                w1 = None if first is None else (a, b)[first]
                w2 = None if second is None else (b, a)[second]
                self.outcome[key] = w1 if w1 is not None and w1 == w2 else None
                self.judge.ctx.counters["comparisons"] += 1
                if self.outcome[key] is None:
                    self.judge.ctx.counters["ties"] += 1
            out.append(self.outcome[key])
        return out


@register_strategy
class Pairwise(Strategy):
    name = "pairwise"
    requires = Capability.SCORE
    schema = TemplateSchema.of(
        {"user": {"query", "passage_a", "passage_b"}, "answer": {"label"}},
        {"system": {"query"}, "prefix": {"query"}},
    )
    Params = PairwiseParams
    format_enumerations = ("plain", "brackets", "parens")  # "Passage (A)": answers and parse_label follow

    def required_capabilities(self) -> Capability:
        return Capability.GENERATE if self.params.mode == "generate" else Capability.SCORE

    def algorithm(self, query: Query, docs: Sequence[Doc], ctx: QueryContext) -> Algorithm[Ranking]:
        p = self.params
        texts = [ctx.truncate(d.prompt_text()) for d in docs]

        def build(group: Group):
            a, b = group
            return self.template.prompt(query=query.text, passage_a=texts[a], passage_b=texts[b])

        judge = PairJudge(GroupJudge(self.template, build, p.mode, p.max_new_tokens, ctx))
        meta = {"method": p.method, "mode": p.mode, "k": p.k}
        n = len(docs)
        if p.method == "allpair":
            pairs = list(combinations(range(n), 2))
            winners = yield from judge.compare(pairs)
            scores = [0.0] * n
            for (a, b), w in zip(pairs, winners):
                if w is None:
                    scores[a] += 0.5
                    scores[b] += 0.5
                else:
                    scores[w] += 1.0
            return Ranking.from_scores(query, docs, scores, meta)
        if p.method == "heapsort":
            sorter = heapsort(n, p.k, 2, pair_best, p.parallel)
        else:
            sorter = bubble_passes(n, p.k, 2, pair_best, p.parallel)
        order = yield from drive(sorter, judge.compare)
        return Ranking.from_order(query, docs, order, meta)
