"""Lock-step driver: many per-query algorithms share every backend call.

Each query's algorithm is a generator that yields a list of requests (``ScoreRequest``,
``GenerateRequest``, ``EmbedRequest`` or ``PairRequest``) and receives the list of results. The driver
gathers the pending requests of *all* queries, sends them to the backend in one call per request kind,
and hands the results back. So sequential algorithms (heapsort, sliding windows) batch across queries,
and embarrassingly parallel ones (pointwise, allpair) send everything at once.

The schedule itself (:func:`_schedule`) is a generator of backend calls, so the same code drives a
blocking backend (:func:`run_lockstep`) and an awaitable one (:func:`arun_lockstep`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..backends.base import GREEDY, Backend, Generation, Prompt, Sampling, ScoreRequest, without_breaks


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


@dataclass(frozen=True, slots=True)
class PairRequest:
    """One relevance logit for (``query``, ``doc``) from a cross-encoder (``Capability.RELEVANCE``)."""

    query: str
    doc: str


Request = ScoreRequest | GenerateRequest | EmbedRequest | PairRequest
R = TypeVar("R")
Algorithm = Generator[list[Request], list[Any], R]


@dataclass(frozen=True)
class Call:
    """One backend call the schedule asks for: ``method`` over ``args`` (and keyword ``kwargs``)."""

    method: str  # "score" | "generate" | "embed" | "relevance"
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)


def render_request(backend: Any, request: Request) -> str:
    """Exactly the text the model reads for ``request``: a prompt as the backend renders it (chat template
    applied), a text embedded as it is, a (query, document) pair as the backend's tokenizer joins it."""
    if isinstance(request, PairRequest):
        pair = getattr(getattr(backend, "inner", backend), "render_pair", None)  # a CachedBackend's model
        return pair(request.query, request.doc) if pair else f"{request.query}\n{request.doc}"
    what = request.text if isinstance(request, EmbedRequest) else request.prompt
    return without_breaks(what if isinstance(what, str) else backend.render(what))


def run_lockstep(
    algorithms: Sequence[Algorithm[R]],
    backend: Backend,
    on_done: Callable[[int], None] | None = None,
    tokens: list[list[int]] | None = None,
) -> tuple[list[R], list[int]]:
    """Drive ``algorithms`` to completion; return their results and the requests each one made.

    With ``tokens`` (one ``[input, output]`` pair per algorithm), each algorithm's tokens are added to it.
    """
    schedule = _schedule(algorithms, backend, on_done, tokens)
    out: Any = None
    try:
        while True:
            call = schedule.send(out)
            out = getattr(backend, call.method)(*call.args, **call.kwargs)
    except StopIteration as stop:
        return stop.value


async def arun_lockstep(
    algorithms: Sequence[Algorithm[R]],
    backend: Backend,
    on_done: Callable[[int], None] | None = None,
    tokens: list[list[int]] | None = None,
) -> tuple[list[R], list[int]]:
    """:func:`run_lockstep` for the event loop: a backend's ``a<method>`` coroutine when it has one
    (the openai backend: real async HTTP), else the blocking method in a worker thread. The algorithms'
    own steps (prompt building, truncation: tokenizer work) also run in a worker thread."""
    schedule = _schedule(algorithms, backend, on_done, tokens)
    out: Any = None
    while True:
        done, step = await asyncio.to_thread(_step, schedule, out)
        if done:
            return step
        native = getattr(backend, "a" + step.method, None)
        if native is not None:
            out = await native(*step.args, **step.kwargs)
        else:
            out = await asyncio.to_thread(getattr(backend, step.method), *step.args, **step.kwargs)


def _step(schedule: Generator[Call, Any, Any], out: Any) -> tuple[bool, Any]:
    """One step of the schedule as (finished, next call or result): a StopIteration cannot cross a future."""
    try:
        return False, schedule.send(out)
    except StopIteration as stop:
        return True, stop.value


def _schedule(algorithms: Sequence[Algorithm[R]], backend: Backend, on_done: Callable[[int], None] | None,
              tokens: list[list[int]] | None) -> Generator[Call, Any, tuple[list[R], list[int]]]:
    results: list[Any] = [None] * len(algorithms)
    calls = [0] * len(algorithms)
    pending: dict[int, list[Request]] = {}
    for i, alg in enumerate(algorithms):
        _advance(i, alg, None, pending, results, on_done)
    while pending:
        order = list(pending)
        answers: dict[int, list[Any]] = {i: [None] * len(pending[i]) for i in order}
        scores = _of_kind(pending, order, ScoreRequest)
        if scores:
            outs = yield Call("score", ([r for _, _, r in scores],))
            _fill(scores, outs, answers)
        embeds = _of_kind(pending, order, EmbedRequest)
        if embeds:
            texts = [r.text if isinstance(r.text, str) else backend.render(r.text) for _, _, r in embeds]
            unique = list(dict.fromkeys(texts))  # a text asked for twice is embedded once
            vectors = (yield Call("embed", (unique,))) if unique else []
            row = {t: k for k, t in enumerate(unique)}
            _fill(embeds, [vectors[row[t]] for t in texts], answers)
        pairs = _of_kind(pending, order, PairRequest)
        if pairs:
            outs = yield Call("relevance", ([(r.query, r.doc) for _, _, r in pairs],))
            _fill(pairs, list(outs), answers)
        for max_new, group in _by_max_tokens(_of_kind(pending, order, GenerateRequest)).items():
            prompts = [r.prompt for _, _, r in group]
            if all(r.sampling.greedy for _, _, r in group):  # greedy: the call every backend takes
                outs = yield Call("generate", (prompts, max_new))
            else:
                outs = yield Call("generate", (prompts, max_new), {"sampling": [r.sampling for _, _, r in group]})
            _fill(group, outs, answers)
        if tokens is not None:
            _count_tokens(backend, pending, answers, tokens)
        for i in order:
            calls[i] += len(pending[i])
        current = pending
        pending = {}
        for i in current:
            _advance(i, algorithms[i], answers[i], pending, results, on_done)
    return results, calls


def _of_kind(pending: dict[int, list[Request]], order: list[int], kind: type) -> list[tuple[int, int, Any]]:
    return [(i, j, r) for i in order for j, r in enumerate(pending[i]) if isinstance(r, kind)]


def _fill(items: list[tuple[int, int, Any]], outs: Sequence[Any], answers: dict[int, list[Any]]) -> None:
    for (i, j, _), out in zip(items, outs):
        answers[i][j] = out


def _count_tokens(backend: Backend, pending: dict[int, list[Request]], answers: dict[int, list[Any]],
                  tokens: list[list[int]]) -> None:
    """Add each query's input tokens (the rendered prompt or text as the backend tokenises it, special
    tokens aside) and output tokens (generations report both themselves)."""
    texts: list[tuple[int, str]] = []
    for i, reqs in pending.items():
        for j, r in enumerate(reqs):
            if isinstance(r, GenerateRequest):
                g = answers[i][j]
                if isinstance(g, Generation):
                    tokens[i][0] += int(g.prompt_tokens)
                    tokens[i][1] += int(g.generated_tokens)
            elif isinstance(r, ScoreRequest):
                texts.append((i, backend.render(r.prompt)))
            elif isinstance(r, EmbedRequest):
                texts.append((i, r.text if isinstance(r.text, str) else backend.render(r.text)))
            elif isinstance(r, PairRequest):
                texts.extend(((i, r.query), (i, r.doc)))
    if texts:
        for (i, _), n in zip(texts, backend.count_tokens([t for _, t in texts])):
            tokens[i][0] += int(n)


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


def _by_max_tokens(items: list[tuple[int, int, GenerateRequest]]) -> dict[int, list[tuple[int, int, GenerateRequest]]]:
    groups: dict[int, list[tuple[int, int, GenerateRequest]]] = {}
    for item in items:
        groups.setdefault(item[2].max_new_tokens, []).append(item)
    return groups
