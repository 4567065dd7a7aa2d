"""Lock-step driver: many per-query algorithms share every backend call.

Each query's algorithm is a generator that yields a list of requests (``ScoreRequest``,
``GenerateRequest`` or ``EmbedRequest``) and receives the list of results. The driver gathers the pending requests of
*all* queries, sends them to the backend in one call per request kind, and hands the results back.
So sequential algorithms (heapsort, sliding windows) batch across queries, and embarrassingly
parallel ones (pointwise, allpair) send everything at once.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ..backends.base import GREEDY, Backend, Generation, Prompt, Sampling, ScoreRequest


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    """Free text after ``prompt``: at most ``max_new_tokens``, greedy unless ``sampling`` says otherwise."""

    prompt: Prompt
    max_new_tokens: int
    sampling: Sampling = GREEDY


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    """One vector for ``text``; a :class:`Prompt` is rendered by the backend first (its chat template)."""

    text: str | Prompt


Request = ScoreRequest | GenerateRequest | EmbedRequest
R = TypeVar("R")
Algorithm = Generator[list[Request], list[Any], R]


def run_lockstep(
    algorithms: Sequence[Algorithm[R]],
    backend: Backend,
    on_done: Callable[[int], None] | None = None,
) -> tuple[list[R], list[int]]:
    """Drive ``algorithms`` to completion; return their results and the requests each one made."""
    results: list[Any] = [None] * len(algorithms)
    calls = [0] * len(algorithms)
    pending: dict[int, list[Request]] = {}
    for i, alg in enumerate(algorithms):
        _advance(i, alg, None, pending, results, on_done)
    while pending:
        order = list(pending)
        scores = [(i, j, r) for i in order for j, r in enumerate(pending[i]) if isinstance(r, ScoreRequest)]
        gens = [(i, j, r) for i in order for j, r in enumerate(pending[i]) if isinstance(r, GenerateRequest)]
        answers: dict[int, list[Any]] = {i: [None] * len(pending[i]) for i in order}
        if scores:
            for (i, j, _), out in zip(scores, backend.score([r for _, _, r in scores])):
                answers[i][j] = out
        embeds = [(i, j, r) for i in order for j, r in enumerate(pending[i]) if isinstance(r, EmbedRequest)]
        if embeds:
            _embed_all(backend, embeds, answers)
        for max_new, group in _by_max_tokens(gens).items():
            prompts = [r.prompt for _, _, r in group]
            if all(r.sampling.plain for _, _, r in group):
                outs: list[Generation] = backend.generate(prompts, max_new)
            else:
                outs = backend.generate(prompts, max_new, sampling=[r.sampling for _, _, r in group])
            for (i, j, _), out in zip(group, outs):
                answers[i][j] = out
        for i in order:
            calls[i] += len(pending[i])
        current = pending
        pending = {}
        for i in current:
            _advance(i, algorithms[i], answers[i], pending, results, on_done)
    return results, calls


def _advance(i: int, alg: Algorithm[Any], send: list[Any] | None, pending: dict[int, list[Request]],
             results: list[Any], on_done: Callable[[int], None] | None) -> None:
    try:
        while True:
            reqs = alg.send(send) if send is not None else next(alg)
            if reqs:
                pending[i] = list(reqs)
                return
            send = []  # an empty batch needs no model call
    except StopIteration as stop:
        results[i] = stop.value
        if on_done:
            on_done(i)


def _embed_all(backend: Backend, items: list[tuple[int, int, EmbedRequest]], answers: dict[int, list[Any]]) -> None:
    """One backend call for every embedding request; a text asked for twice is embedded once."""
    texts = [r.text if isinstance(r.text, str) else backend.render(r.text) for _, _, r in items]
    unique = list(dict.fromkeys(texts))
    vectors = backend.embed(unique) if unique else []
    row = {t: k for k, t in enumerate(unique)}
    for (i, j, _), t in zip(items, texts):
        answers[i][j] = vectors[row[t]]


def _by_max_tokens(items: list[tuple[int, int, GenerateRequest]]) -> dict[int, list[tuple[int, int, GenerateRequest]]]:
    groups: dict[int, list[tuple[int, int, GenerateRequest]]] = {}
    for item in items:
        groups.setdefault(item[2].max_new_tokens, []).append(item)
    return groups
