"""Asking a model which of a few labelled passages is best, memoised per query.

Shared by the pairwise (PRP) and setwise strategies. A *group* is a tuple of document indices in
the order they are shown (labelled A, B, C, ...). The assistant turn starts with the template's
``prefix`` (``" Passage:"``; for a seq2seq model the backend puts it at the start of the decoder) plus
the words every answer starts with (:func:`split_answers`), so each answer is the label token alone.
In ``score`` mode the log-probabilities of those answers are compared in one forward pass. In
``generate`` mode the model writes ``max_new_tokens`` tokens (the template's ``answer_tokens``
by default: 1, as the reference code) and the continuation is read strictly by the template's
``read`` rule (:func:`read_answer`); an answer naming no passage is counted in
``ctx.counters["unparsed"]`` and keeps the incumbent.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from ..backends.base import Generation, Prompt, ScoreRequest
from ..errors import ConfigError
from ..options import option
from ..prompts.template import Template
from ..types import Query
from .base import QueryContext
from .labels import best_label, check_read_rule, label_set, read_answer, read_think_answer, split_answers
from .lockstep import GenerateRequest, Request
from .sorting import TIE_RULES, Group, Winner

MODES = ("score", "generate")


@dataclass
class ComparingParams:
    """The parameters pairwise and setwise share (each adds ``method``, ``k``, ...)."""

    mode: str = option("score", choices=MODES,
                       help="score: compare the label tokens' likelihoods in one forward pass; generate: greedy "
                            "tokens after the answer prefix, read strictly by the template's rule")
    ties: str = option("incumbent", choices=tuple(TIE_RULES),
                       help="heapsort: an undecided comparison keeps the incumbent (the parent, as llm-rankers) "
                            "or goes to the passage ranked higher in the input (input_order); bubble passes "
                            "never swap on a tie either way")
    max_doc_tokens: int | None = option(128, bounds=(1, None),
                                        help="tokens per passage (128, the reference's --passage_length; none: all)")
    max_query_tokens: int | None = option(32, bounds=(1, None),
                                          help="tokens of the query (32, the reference's --query_length in its "
                                               "published commands; none: all)")
    max_new_tokens: int | None = option(None, bounds=(1, None),
                                        help="generate mode: tokens to generate (none: the template's "
                                             "answer_tokens, 1 for chat models and 2 for FLAN, as the reference)")
    parallel: bool = option(True, help="ask the independent comparisons of one query together (same result)")


def template_labels(template: Template) -> tuple[str, ...]:
    """The labels a template gives the passages it shows (``extra.labels``: letters, the default, or numbers)."""
    return label_set(str(template.extra.get("labels", "letters")))


def query_text(query: Query, max_tokens: int | None, ctx: QueryContext) -> str:
    """The query as the prompt shows it: cut to ``max_tokens`` tokens, as the reference code cuts queries."""
    return query.text if max_tokens is None else ctx.truncate(query.text, max_tokens)


class GroupJudge:
    """Builds one prompt per group, sends new groups only, and maps answers back to documents."""

    def __init__(self, template: Template, build: Callable[[Group], Prompt], mode: str,
                 max_new_tokens: int | None, ctx: QueryContext, repair: bool = False):
        self.template = template
        self.build = build
        self.mode = mode
        self.read = check_read_rule(str(template.extra.get("read", "label")))
        self.labels = template_labels(template)
        self.max_new_tokens = int(max_new_tokens or template.extra.get("answer_tokens", 1))
        self.repair = repair
        self.ctx = ctx
        self.memo: dict[Group, int | None] = {}  # group -> index of the chosen member (None: no answer)
        self._choices: dict[int, tuple[str, tuple[str, ...]]] = {}
        self._prefix: dict[Group, str] = {}
        for key in ("rounds", "unparsed") + (("repaired",) if self.read == "think_answer" else ()):
            ctx.counters[key] += 0  # reported even when zero

    def choices(self, size: int) -> tuple[str, tuple[str, ...]]:
        """(shared answer words, one continuation per label) for a group of ``size``."""
        if size not in self._choices:
            if size > len(self.labels):
                raise ConfigError(f"at most {len(self.labels)} passages per prompt, not {size}")
            answers = [self.template.fill("answer", label=lbl) for lbl in self.labels[:size]]
            self._choices[size] = split_answers(answers)
        return self._choices[size]

    def request(self, group: Group) -> Request:
        """The request for ``group``: its prompt with the assistant prefix (template prefix + shared answer words)."""
        prompt = self.build(group)
        shared, conts = self.choices(len(group))
        prompt = Prompt(prompt.messages, prompt.prefix + shared)
        self._prefix[group] = prompt.prefix
        if self.mode == "generate":
            return GenerateRequest(prompt, self.max_new_tokens)
        return ScoreRequest(prompt, conts)

    def chosen(self, group: Group, result: Any) -> int | None:
        if self.mode == "generate":
            text = result.text if isinstance(result, Generation) else str(result)
            _, conts = self.choices(len(group))
            if self.read == "think_answer":
                pick, repaired = read_think_answer(text, conts, self.repair)
                self.ctx.counters["repaired"] += int(repaired)
            else:
                pick = read_answer(self.read, text, self.labels[: len(group)], conts, self._prefix.get(group, ""))
            if pick is None:
                self.ctx.counters["unparsed"] += 1
            return pick
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
