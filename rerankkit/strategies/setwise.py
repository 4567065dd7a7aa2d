"""Setwise ranking (Zhuang et al., SIGIR 2024): which of ``num_child + 1`` passages is the most relevant.

- ``heapsort``: a max-heap with ``num_child`` children per node; each sift-down step is one prompt
  showing the node and its children; stops once the top-``k`` is fixed. No answer (or a tie in score
  mode) keeps the parent (``ties="input_order"``: the passage ranked higher in the input wins).
- ``bubblesort``: ``k`` passes of a window of ``num_child + 1`` passages from the bottom; the
  window's best moves to its top, and the window moves up by ``num_child``; the top window of pass
  ``p`` is clipped to start at ``p`` and a pass starts where the previous one first changed
  something, as in the reference code (:func:`~rerankkit.strategies.sorting.bubble_passes`).

Both return the top-``k``, then the other passages in their input order, as the reference code
(ielab/llm-rankers) does. ``score`` mode (the paper's likelihood mode) reads the next-token
log-probabilities of the labels in one forward pass; ``generate`` mode reads the generated label.
With ``shuffle``, each prompt shows its passages in a random order (a fixed function of ``seed`` and the
passages), as the Rank-R1 reference code does to avoid position bias. The same prompt is never sent twice
for one query, and the prompts of all queries being reranked together share backend calls.
"""

from __future__ import annotations

import random
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..backends.base import Capability, Prompt
from ..errors import ConfigError
from ..options import option
from ..prompts.template import Template, TemplateSchema
from ..types import Doc, Query, Ranking
from .base import QueryContext, Strategy, register_strategy
from .comparing import ComparingParams, GroupJudge, drive, query_text, template_labels
from .lockstep import Algorithm, Request
from .sorting import TIE_RULES, Group, Winner, bubble_passes, heapsort, keep_top, set_best

METHODS = ("heapsort", "bubblesort")


@dataclass
class SetwiseParams(ComparingParams):
    method: str = option("heapsort", choices=METHODS,
                         help="heapsort: a max-heap of num_child children per node; bubblesort: k passes of a "
                              "window of num_child + 1 passages from the bottom")
    k: int = option(10, bounds=(1, None), help="the top-k returned (then the rest in input order); heapsort: the "
                                                "top-k it fixes; bubblesort: the number of passes")
    num_child: int = option(2, bounds=(2, None),
                            help="passages per prompt minus one (2: the paper's c=3, --num_child 2 in its "
                                 "published commands; its code's default is 3); at most the template's labels - 1")
    shuffle: bool = option(False, help="show each prompt's passages in a seeded random order (as Rank-R1's "
                                       "reference code does)")
    seed: int = option(929, help="the seed of shuffle")
    repair: bool = option(False, help="reasoning templates (read: think_answer): also read an answer outside "
                                      "the strict format (counted as repaired)")


@register_strategy
class Setwise(Strategy):
    name = "setwise"
    requires = Capability.SCORE
    schema = TemplateSchema.of(
        {"user": {"query", "passages"}, "item": {"label", "passage"}, "answer": {"label"}},
        {"system": {"query"}, "prefix": {"query"}},
    )
    Params = SetwiseParams
    format_enumerations = ("plain",)  # labels.py reads a bare label, never "Passage (A)"

    def __init__(self, template: Template, params: Mapping[str, Any] | None = None):
        super().__init__(template, params)
        labels = template_labels(self.template)
        if self.params.num_child + 1 > len(labels):
            raise ConfigError(f"setwise num_child must be at most {len(labels) - 1} with template "
                              f"{self.template.name!r} ({len(labels)} labels), not {self.params.num_child}")
        self.labels = labels

    def required_capabilities(self) -> Capability:
        return Capability.GENERATE if self.params.mode == "generate" else Capability.SCORE

    def group_prompt(self, query: str, texts: Sequence[str], group: Group) -> Prompt:
        """The prompt showing ``texts[i]`` for each ``i`` of ``group``, labelled A, B, C, ... in that order."""
        sep = str(self.template.extra.get("item_separator", "\n\n"))
        items = [self.template.fill("item", label=self.labels[j], passage=texts[i]) for j, i in enumerate(group)]
        return self.template.prompt(query=query, passages=sep.join(items))

    def judge(self, query: Query, docs: Sequence[Doc], ctx: QueryContext) -> GroupJudge:
        """The memoising judge of one query's groups, with its prompts."""
        p = self.params
        qtext = query_text(query, p.max_query_tokens, ctx)
        texts = [ctx.truncate(self.template.document_text(d)) for d in docs]
        return GroupJudge(self.template, lambda g: self.group_prompt(qtext, texts, g), p.mode, p.max_new_tokens, ctx,
                          repair=p.repair)

    def shown(self, group: Group) -> Group:
        """The order a prompt shows ``group`` in: as given, or with ``shuffle`` a seeded permutation of it."""
        if not self.params.shuffle:
            return group
        order = list(group)
        random.Random(f"{self.params.seed}:{group}").shuffle(order)
        return tuple(order)

    def algorithm(self, query: Query, docs: Sequence[Doc], ctx: QueryContext) -> Algorithm[Ranking]:
        p = self.params
        judge = self.judge(query, docs, ctx)

        def decide(groups: list[Group]) -> Generator[list[Request], list[Any], list[Winner]]:
            shown = [self.shown(g) for g in groups]
            picks = yield from judge.ask(shown)
            return [None if j is None else g[j] for g, j in zip(shown, picks)]

        meta = {"method": p.method, "mode": p.mode, "k": p.k, "num_child": p.num_child}
        if p.method == "heapsort":
            meta["tie_rule"] = p.ties
            sorter = heapsort(len(docs), p.k, p.num_child, set_best, p.parallel, TIE_RULES[p.ties])
        else:
            sorter = bubble_passes(len(docs), p.k, p.num_child + 1, set_best, p.parallel)
        order = yield from drive(sorter, decide)
        return Ranking.from_order(query, docs, keep_top(order, p.k), meta)
