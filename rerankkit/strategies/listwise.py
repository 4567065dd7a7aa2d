"""Listwise reranking over sliding windows: permutation generation and FIRST single-token scoring.

``listwise`` (RankGPT, RankVicuna, RankZephyr): each window's prompt lists its documents under
identifiers ``[1]``..., the model generates a permutation such as ``[3] > [1] > [2]``, parsed
with repairs (see :mod:`.permutation`). ``first`` (Reddy et al., "FIRST: Faster Improved Listwise
Reranking with Single Token Decoding", EMNLP 2024): the same kind of prompt with identifiers
``[A]``..., the assistant turn pre-filled up to where the first identifier would be generated, and
one forward pass scores every identifier; the window is sorted by those log-probabilities.

Windows move bottom-up (:mod:`.windows`). A query's windows are sequential, but the windows of all
queries that are ready go to the backend in one call (lock-step, :mod:`.lockstep`).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backends.base import Capability, Generation, Prompt, ScoreRequest
from ..errors import ConfigError
from ..options import option
from ..prompts.template import TemplateSchema
from ..types import Doc, Query, Ranking
from .base import QueryContext, Strategy, TrainingPrompt, register_strategy
from .listwise_prompt import SCHEMA, WindowPrompter, identifier_style, identifier_wrapper
from .lockstep import Algorithm, GenerateRequest, Request
from .permutation import ALPHA, identifiers, parse_permutation
from .windows import check_window, window_schedule


@dataclass
class ListwiseParams:
    window: int = option(20, help="documents per window")
    stride: int = option(10, help="how far each next window moves up (smaller than window)")
    passes: int = option(1, bounds=(1, None), help="bottom-to-top sweeps")
    max_doc_tokens: int | None = option(300, bounds=(1, None),
                                        help="tokens per document, before the window's budget (none: all)")
    max_prompt_tokens: int | None = option(None, bounds=(1, None),
                                           help="prompt budget (none: the backend's context length when it has one)")
    max_new_tokens: int | None = option(None, bounds=(1, None),
                                        help="generation only: answer tokens (none: sized to the window's answer)")
    escape_identifiers: bool = option(True, help='"[3]" inside a document becomes "(3)" (with "(3)" identifiers: "[3]")')

    def validate(self) -> None:
        check_window(self.window, self.stride)


class SlidingWindowStrategy(Strategy):
    """Shared sliding-window driver; subclasses make one request per window and read its answer."""

    requires = Capability.GENERATE
    schema: TemplateSchema = SCHEMA
    Params = ListwiseParams
    format_enumerations = ("brackets", "parens")  # the parser and escaping follow the item's wrapper

    def __init__(self, template, params=None):
        super().__init__(template, params)
        self.style = identifier_style(self.template)
        self.wrapper = identifier_wrapper(self.template)  # "[3]" or "(3)": as the template's item writes it
        identifiers(self.params.window, self.style)  # fail early: too many alphabetic identifiers
        p = self.params
        self.prompter = WindowPrompter(self.template, self.style, p.escape_identifiers, p.max_doc_tokens,
                                       p.max_prompt_tokens, self.wrapper)

    def wrap(self, identifier: str) -> str:
        """``identifier`` as the prompt writes it (``[3]``)."""
        return f"{self.wrapper[0]}{identifier}{self.wrapper[1]}"

    @abstractmethod
    def request(self, prompt: Prompt, ids: list[str], ctx: QueryContext) -> Request:
        """The one backend request for a window."""

    @abstractmethod
    def read(self, answer: Any, prompt: Prompt, ids: list[str], ctx: QueryContext) -> list[int]:
        """The window's new order (positions, best first) from the backend's answer."""

    def reserve(self, ids: list[str], ctx: QueryContext) -> int:
        """Tokens to keep free in the context for the answer."""
        return 1

    def algorithm(self, query: Query, docs: Sequence[Doc], ctx: QueryContext) -> Algorithm[Ranking]:
        texts = [d.prompt_text() for d in docs]
        order = list(range(len(docs)))
        schedule = window_schedule(len(docs), self.params.window, self.params.stride)
        for _ in range(self.params.passes):
            for lo, hi in schedule:
                if hi - lo < 2:
                    continue
                idx = order[lo:hi]
                ids = identifiers(len(idx), self.style)
                prompt = self.prompter(ctx, query.text, ids, [texts[i] for i in idx], self.reserve(ids, ctx))
                answers = yield [self.request(prompt, ids, ctx)]
                perm = self.read(answers[0], prompt, ids, ctx)
                order[lo:hi] = [idx[j] for j in perm]
                ctx.counters["windows"] += 1
        return Ranking.from_order(query, docs, order)


@register_strategy
class Listwise(SlidingWindowStrategy):
    """Permutation generation (RankGPT / RankVicuna / RankZephyr), repaired and counted."""

    name = "listwise"
    requires = Capability.GENERATE
    also_accepts = ("first",)  # FIRST's prompts also work for generation (the FIRST paper's baseline)

    def __init__(self, template, params=None):
        super().__init__(template, params)
        self._answer_tokens: dict[tuple[str, int], int] = {}

    def max_new_tokens(self, ids: list[str], ctx: QueryContext) -> int:
        """Tokens of the full answer ``[1] > [2] > ... > [n]`` plus a little slack."""
        if self.params.max_new_tokens:
            return self.params.max_new_tokens
        key = (ctx.backend.model_id, len(ids))
        if key not in self._answer_tokens:
            answer = " > ".join(self.wrap(i) for i in ids)
            self._answer_tokens[key] = ctx.backend.count_tokens([answer])[0] + 2
        return self._answer_tokens[key]

    def reserve(self, ids: list[str], ctx: QueryContext) -> int:
        return self.max_new_tokens(ids, ctx)

    def request(self, prompt: Prompt, ids: list[str], ctx: QueryContext) -> Request:
        return GenerateRequest(prompt, self.max_new_tokens(ids, ctx))

    def read(self, answer: Generation, prompt: Prompt, ids: list[str], ctx: QueryContext) -> list[int]:
        parsed = parse_permutation(prompt.prefix + answer.text, ids, self.wrapper)
        c = ctx.counters
        c["parse_unknown_ids"] += parsed.unknown
        c["parse_duplicate_ids"] += parsed.duplicate
        c["parse_missing_ids"] += parsed.missing
        c["parse_repaired_windows"] += int(parsed.repaired)
        c["parse_failed_windows"] += int(parsed.failed)
        return list(parsed.order)


@register_strategy
class First(SlidingWindowStrategy):
    """FIRST: one forward pass per window, documents sorted by their identifier's log-probability."""

    name = "first"
    requires = Capability.SCORE
    training_objective = "first"
    schema = TemplateSchema.of({**SCHEMA.required, "prefix": set()}, SCHEMA.optional)

    def __init__(self, template, params=None):
        super().__init__(template, params)
        if self.style != ALPHA and self.params.window > 9:
            raise ConfigError(
                f"FIRST reads one token per identifier: numeric identifiers allow window <= 9, got "
                f"{self.params.window}; use a template with extra.identifiers: alpha ([A]..[T])"
            )

    def request(self, prompt: Prompt, ids: list[str], ctx: QueryContext) -> Request:
        return ScoreRequest(prompt, tuple(ids))

    def training_prompt(self, query: Query, docs: Sequence[Doc], order: Sequence[int],
                        ctx: QueryContext) -> TrainingPrompt:
        """The window's prompt and its target permutation (``[B] > [A] > ...``, continuing the prefix)."""
        ids = identifiers(len(docs), self.style)
        prompt = self.prompter(ctx, query.text, ids, [d.prompt_text() for d in docs], 1)
        target = " > ".join(self.wrap(ids[j]) for j in order)
        opening = self.wrapper[0]
        if opening and prompt.prefix.endswith(opening) and target.startswith(opening):
            target = target[len(opening):]
        return TrainingPrompt(prompt, target=target, labels=tuple(ids))

    def read(self, answer: np.ndarray, prompt: Prompt, ids: list[str], ctx: QueryContext) -> list[int]:
        lp = np.nan_to_num(np.asarray(answer, dtype=np.float64), nan=-np.inf)
        return sorted(range(len(ids)), key=lambda j: (-lp[j], j))
