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

from ..backends.base import Capability, Generation, Prompt, Sampling, ScoreRequest
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
    max_doc_words: int | None = option(300, bounds=(1, None),
                                       help="words per document in a window of 20; a window of n gets that x 20/n "
                                            "(rank_llm; none: no cut)")
    max_doc_tokens: int | None = option(None, bounds=(1, None),
                                        help="a further cap per document, in backend tokens (none: no cap)")
    max_prompt_tokens: int | None = option(4096, bounds=(1, None),
                                           help="prompt budget with room for a full answer, rank_llm's context_size "
                                                "(none: only the backend's context length)")
    max_new_tokens: int | None = option(None, bounds=(1, None),
                                        help="generation only: answer tokens (none: rank_llm's estimate of a full "
                                             "answer)")
    min_new_tokens: int | None = option(None, bounds=(0, None),
                                        help="generation only: end-of-sequence blocked until this many tokens "
                                             "(none: max_new_tokens, as rank_llm; 0: stop at EOS)")
    escape_identifiers: bool = option(True, help='"[3]" inside a document or the query becomes "(3)" (with "(3)" identifiers: "[3]")')
    fix_text: bool = option(True, help="ftfy.fix_text on passages and prompt, as rank_llm does")

    def validate(self) -> None:
        check_window(self.window, self.stride)


@dataclass
class FirstParams(ListwiseParams):
    top_logprobs: int | None = option(30, bounds=(1, None),
                                      help="identifiers outside the model's top-k next tokens keep their input "
                                           "order, as rank_llm reads vLLM's top 30 (none: sort them all)")


class SlidingWindowStrategy(Strategy):
    """Shared sliding-window driver; subclasses make one request per window and read its answer."""

    requires = Capability.GENERATE
    schema: TemplateSchema = SCHEMA
    Params = ListwiseParams
    format_enumerations = ("brackets", "parens")  # escaping, answer length, FIRST's target follow the wrapper

    def __init__(self, template, params=None):
        super().__init__(template, params)
        self.style = identifier_style(self.template)
        self.wrapper = identifier_wrapper(self.template)  # "[3]" or "(3)": as the template's item writes it
        identifiers(self.params.window, self.style)  # fail early: too many alphabetic identifiers
        p = self.params
        self.prompter = WindowPrompter(self.template, escape=p.escape_identifiers, fix=p.fix_text,
                                       max_doc_words=p.max_doc_words, max_doc_tokens=p.max_doc_tokens,
                                       max_prompt_tokens=p.max_prompt_tokens, wrapper=self.wrapper)
        self._answer_tokens: dict[tuple[str, int], int] = {}

    def wrap(self, identifier: str) -> str:
        """``identifier`` as the prompt writes it (``[3]``)."""
        return f"{self.wrapper[0]}{identifier}{self.wrapper[1]}"

    @abstractmethod
    def request(self, prompt: Prompt, ids: list[str], ctx: QueryContext) -> Request:
        """The one backend request for a window."""

    @abstractmethod
    def read(self, answer: Any, prompt: Prompt, ids: list[str], ctx: QueryContext) -> list[int]:
        """The window's new order (positions, best first) from the backend's answer."""

    def model_reserve(self, ids: list[str], ctx: QueryContext) -> int:
        """Tokens to keep free in the backend's own context after the prompt."""
        return 1

    def answer_tokens(self, ids: list[str], ctx: QueryContext) -> int:
        """rank_llm's estimate of a full answer ``[1] > [2] > ... > [n]`` (``num_output_tokens``:
        ``len(tokenizer.encode(answer)) - 1``), which its prompt budget keeps free; identifiers wrapped
        as the template's item wraps them."""
        key = (ctx.backend.model_id, len(ids))
        if key not in self._answer_tokens:
            answer = " > ".join(self.wrap(i) for i in ids)
            self._answer_tokens[key] = (ctx.backend.count_tokens([answer])[0]
                                        + self.prompter.specials(ctx.backend) - 1)
        return self._answer_tokens[key]

    def window_prompt(self, query: Query, window: Sequence[Doc], ctx: QueryContext) -> tuple[Prompt, list[str]]:
        """The prompt of one window of documents, and their identifiers."""
        ids = identifiers(len(window), self.style)
        prompt = self.prompter(ctx, query.text, ids, window, self.answer_tokens(ids, ctx),
                               self.model_reserve(ids, ctx))
        return prompt, ids

    def algorithm(self, query: Query, docs: Sequence[Doc], ctx: QueryContext) -> Algorithm[Ranking]:
        order = list(range(len(docs)))
        schedule = window_schedule(len(docs), self.params.window, self.params.stride)
        for _ in range(self.params.passes):
            for lo, hi in schedule:
                if hi - lo < 2:
                    continue
                idx = order[lo:hi]
                prompt, ids = self.window_prompt(query, [docs[i] for i in idx], ctx)
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

    def max_new_tokens(self, ids: list[str], ctx: QueryContext) -> int:
        """rank_llm's estimate of the full answer ``[1] > [2] > ... > [n]`` unless set."""
        return self.params.max_new_tokens or max(1, self.answer_tokens(ids, ctx))

    def min_new_tokens(self, ids: list[str], ctx: QueryContext) -> int:
        """As many as ``max_new_tokens`` unless set: rank_llm asks vLLM for exactly its estimate."""
        m = self.params.min_new_tokens
        return self.max_new_tokens(ids, ctx) if m is None else min(m, self.max_new_tokens(ids, ctx))

    def model_reserve(self, ids: list[str], ctx: QueryContext) -> int:
        return self.max_new_tokens(ids, ctx)

    def request(self, prompt: Prompt, ids: list[str], ctx: QueryContext) -> Request:
        # rank_llm asks vLLM for min_tokens = max_tokens: the answer runs to its full estimated length
        return GenerateRequest(prompt, self.max_new_tokens(ids, ctx), Sampling(min_new_tokens=self.min_new_tokens(ids, ctx)))

    def read(self, answer: Generation, prompt: Prompt, ids: list[str], ctx: QueryContext) -> list[int]:
        parsed = parse_permutation(prompt.prefix + answer.text, ids)
        c = ctx.counters
        c["parse_unknown_ids"] += parsed.unknown
        c["parse_duplicate_ids"] += parsed.duplicate
        c["parse_missing_ids"] += parsed.missing
        c["parse_repaired_windows"] += int(parsed.repaired)
        c["parse_failed_windows"] += int(parsed.failed)
        c["parse_unreadable_windows"] += int(parsed.unreadable)
        return list(parsed.order)


@register_strategy
class First(SlidingWindowStrategy):
    """FIRST: one forward pass per window, documents sorted by their identifier's log-probability."""

    name = "first"
    requires = Capability.SCORE
    training_objective = "first"
    schema = TemplateSchema.of({**SCHEMA.required, "prefix": set()}, SCHEMA.optional)
    Params = FirstParams

    def __init__(self, template, params=None):
        super().__init__(template, params)
        if self.style != ALPHA and self.params.window > 9:
            raise ConfigError(
                f"FIRST reads one token per identifier: numeric identifiers allow window <= 9, got "
                f"{self.params.window}; use a template with extra.identifiers: alpha ([A]..[T])"
            )

    def request(self, prompt: Prompt, ids: list[str], ctx: QueryContext) -> Request:
        return ScoreRequest(prompt, tuple(ids), top_k=self.params.top_logprobs)

    def training_prompt(self, query: Query, docs: Sequence[Doc], order: Sequence[int],
                        ctx: QueryContext) -> TrainingPrompt:
        """The window's prompt and its target permutation (``[B] > [A] > ...``, continuing the prefix)."""
        prompt, ids = self.window_prompt(query, docs, ctx)
        target = " > ".join(self.wrap(ids[j]) for j in order)
        opening = self.wrapper[0]
        if opening and prompt.prefix.endswith(opening) and target.startswith(opening):
            target = target[len(opening):]
        return TrainingPrompt(prompt, target=target, labels=tuple(ids))

    def read(self, answer: np.ndarray, prompt: Prompt, ids: list[str], ctx: QueryContext) -> list[int]:
        """Identifiers by log-probability, best first; those outside the top-k (-inf) keep input order."""
        lp = np.asarray(answer, dtype=np.float64)
        lp = np.where(np.isnan(lp), -np.inf, lp)
        outside = int(np.sum(np.isneginf(lp)))
        ctx.counters["first_outside_top_k"] += outside
        ctx.counters["first_windows_outside_top_k"] += int(outside > 0)
        return sorted(range(len(ids)), key=lambda j: (-lp[j], j))
