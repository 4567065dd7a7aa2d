"""Setwise ranking (Zhuang et al., SIGIR 2024): which of ``num_child + 1`` passages is the most relevant.

- ``heapsort``: a max-heap with ``num_child`` children per node; each sift-down step is one prompt
  showing the node and its children; stops once the top-``k`` is fixed (the rest keep input order).
- ``bubblesort``: ``k`` passes of a window of ``num_child + 1`` passages from the bottom; the
  window's best moves to its top, and the window moves up by ``num_child``.

``score`` mode (the paper's likelihood mode) reads the next-token log-probabilities of the labels
in one forward pass; ``generate`` mode parses the answer. The same prompt is never sent twice for
one query, and the prompts of all queries being reranked together share backend calls.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

from ..backends.base import Capability
from ..options import option
from ..prompts.template import TemplateSchema
from ..types import Doc, Query, Ranking
from .base import QueryContext, Strategy, register_strategy
from .comparing import ComparingParams, GroupJudge, drive
from .labels import LABELS
from .lockstep import Algorithm, Request
from .sorting import Group, Winner, bubble_passes, heapsort, set_best

METHODS = ("heapsort", "bubblesort")


@dataclass
class SetwiseParams(ComparingParams):
    method: str = option("heapsort", choices=METHODS,
                         help="heapsort: a max-heap of num_child children per node; bubblesort: k passes of a "
                              "window of num_child + 1 passages from the bottom")
    k: int = option(10, bounds=(1, None), help="top-k documents to fix (heapsort) or passes (bubblesort)")
    num_child: int = option(2, bounds=(2, len(LABELS) - 1),
                            help="passages per prompt minus one (2: the paper's c=3, --num_child 2 in its code)")


@register_strategy
class Setwise(Strategy):
    name = "setwise"
    requires = Capability.SCORE
    schema = TemplateSchema.of(
        {"user": {"query", "passages"}, "item": {"label", "passage"}, "answer": {"label"}},
        {"system": {"query"}, "prefix": {"query"}},
    )
    Params = SetwiseParams
    format_enumerations = ("plain", "brackets", "parens")  # "Passage (A)": answers and parse_label follow

    def required_capabilities(self) -> Capability:
        return Capability.GENERATE if self.params.mode == "generate" else Capability.SCORE

    def algorithm(self, query: Query, docs: Sequence[Doc], ctx: QueryContext) -> Algorithm[Ranking]:
        p = self.params
        texts = [ctx.truncate(d.prompt_text()) for d in docs]
        sep = str(self.template.extra.get("item_separator", "\n\n"))

        def build(group: Group):
            items = [self.template.fill("item", label=LABELS[j], passage=texts[i]) for j, i in enumerate(group)]
            return self.template.prompt(query=query.text, passages=sep.join(items))

        judge = GroupJudge(self.template, build, p.mode, p.max_new_tokens, ctx)

        def decide(groups: list[Group]) -> Generator[list[Request], list[Any], list[Winner]]:
            picks = yield from judge.ask(groups)
            return [None if j is None else g[j] for g, j in zip(groups, picks)]

        width = p.num_child + 1
        if p.method == "heapsort":
            sorter = heapsort(len(docs), p.k, p.num_child, set_best, p.parallel)
        else:
            sorter = bubble_passes(len(docs), p.k, width, set_best, p.parallel)
        order = yield from drive(sorter, decide)
        meta = {"method": p.method, "mode": p.mode, "k": p.k, "num_child": p.num_child}
        return Ranking.from_order(query, docs, order, meta)
