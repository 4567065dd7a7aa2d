"""Asking a model which of a few labelled passages is best, memoised per query.

Shared by the pairwise (PRP) and setwise strategies. A *group* is a tuple of document indices in
the order they are shown (labelled A, B, C, ...). In ``score`` mode the model's log-probabilities
of the answers ("Passage A", "Passage B", ...) are compared in one forward pass: the words every
answer starts with ("Passage") are moved into the assistant prefix so each answer is a single
token (:func:`split_answers`). In ``generate`` mode the model writes an answer that is parsed
robustly; an answer naming no passage is counted in ``ctx.counters["unparsed"]``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from ..backends.base import Generation, Prompt, ScoreRequest
from ..errors import ConfigError
from ..options import option
from ..prompts.template import Template
from .base import QueryContext
from .labels import LABELS, best_label, parse_label, split_answers
from .lockstep import GenerateRequest, Request
from .sorting import Group, Winner

MODES = ("score", "generate")


@dataclass
class ComparingParams:
    """The parameters pairwise and setwise share (each adds ``method``, ``k``, ...)."""

    mode: str = option("score", choices=MODES,
                       help="score: compare the answers' likelihoods in one forward pass; generate: parse the answer")
    max_doc_tokens: int | None = option(128, bounds=(1, None),
                                        help="tokens per passage (128 as in the Setwise paper's code; none: all)")
    max_new_tokens: int = option(8, bounds=(1, None), help="answer tokens in generate mode")
    parallel: bool = option(True, help="ask the independent comparisons of one query together (same result)")


class GroupJudge:
    """Builds one prompt per group, sends new groups only, and maps answers back to documents."""

    def __init__(self, template: Template, build: Callable[[Group], Prompt], mode: str, max_new_tokens: int,
                 ctx: QueryContext):
        self.template = template
        self.build = build
        self.mode = mode
        self.max_new_tokens = max_new_tokens
        self.ctx = ctx
        self.memo: dict[Group, int | None] = {}  # group -> index of the chosen member (None: no answer)
        self._choices: dict[int, tuple[str, tuple[str, ...]]] = {}
        for key in ("rounds", "unparsed"):
            ctx.counters[key] += 0  # reported even when zero

    def choices(self, size: int) -> tuple[str, tuple[str, ...]]:
        """(shared answer prefix, one continuation per label) for a group of ``size``."""
        if size not in self._choices:
            if size > len(LABELS):
                raise ConfigError(f"at most {len(LABELS)} passages per prompt, not {size}")
            answers = [self.template.fill("answer", label=lbl) for lbl in LABELS[:size]]
            self._choices[size] = split_answers(answers)
        return self._choices[size]

    def request(self, group: Group) -> Request:
        prompt = self.build(group)
        if self.mode == "generate":
            return GenerateRequest(prompt, self.max_new_tokens)
        prefix, conts = self.choices(len(group))
        return ScoreRequest(Prompt(prompt.messages, prompt.prefix + prefix), conts)

    def chosen(self, group: Group, result: Any) -> int | None:
        if self.mode == "generate":
            text = result.text if isinstance(result, Generation) else str(result)
            label = parse_label(text, LABELS[: len(group)])
            if label is None:
                self.ctx.counters["unparsed"] += 1
                return None
            return LABELS.index(label)
        return best_label(result)

    def ask(self, groups: list[Group]) -> Generator[list[Request], list[Any], list[int | None]]:
        """For each group, the index (within the group) of the member the model chose, or None."""
        new = list(dict.fromkeys(g for g in groups if g not in self.memo))
        if new:
            self.ctx.counters["rounds"] += 1
            results = yield [self.request(g) for g in new]
            for g, r in zip(new, results):
                self.memo[g] = self.chosen(g, r)
        return [self.memo[g] for g in groups]


def drive(sorter: Generator[list[Group], list[Winner], Any],
          decide: Callable[[list[Group]], Generator[list[Request], list[Any], list[Winner]]]) -> Generator[
        list[Request], list[Any], Any]:
    """Run a sorting generator, answering its questions with ``decide`` (which yields requests)."""
    try:
        groups = next(sorter)
        while True:
            winners = yield from decide(groups)
            groups = sorter.send(winners)
    except StopIteration as stop:
        return stop.value
