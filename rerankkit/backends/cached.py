"""``CachedBackend(inner, path)``: any backend behind the content-addressed answer cache.

Each request is looked up on its own; only the misses go to the inner backend, in batches of
``chunk`` requests, and every batch is committed as soon as it returns (a SIGKILL loses at most the
batch in flight). Answers from the cache count as ``usage.cached_calls``, never as model calls, and
keep the token counts and compute time measured when they were made (see :meth:`CachedBackend.stats`).
Repeated identical requests inside one call are computed once (the repeats count as cached).
When a server backend fails part-way through a batch (:class:`ServerError` with ``partial``), the
answers that did finish are stored before the error is re-raised, so a rerun asks only for the rest.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..answer_cache import CallCache, Entry, call_key
from ..errors import BackendError
from .base import (
    Backend,
    BackendWrapper,
    Generation,
    Prompt,
    SamplingArg,
    ScoreRequest,
    Usage,
    sampling_list,
)
from .http import ServerError

log = logging.getLogger(__name__)


class CachedBackend(BackendWrapper):
    """Wraps ``inner`` (any :class:`Backend`); ``cache`` is a path, or a store shared with others: a
    :class:`CallCache` or anything with its ``get_many``/``put_many``/``mark_corrupt`` (a cluster's hub)."""

    def __init__(self, inner: Backend, cache: CallCache | Any | str | os.PathLike[str], chunk: int = 32):
        if isinstance(inner, CachedBackend):
            inner = inner.inner
        super().__init__(inner)
        self._owns_store = isinstance(cache, (str, os.PathLike))
        self.store = CallCache(cache) if self._owns_store else cache
        self.chunk = max(1, int(chunk))
        self.usage = Usage()
        self._lock = threading.Lock()
        self._extra = {"cached_prompt_tokens": 0, "cached_generated_tokens": 0, "model_s": 0.0,
                       "cached_model_s": 0.0}
        self._base = {"backend": inner.name, "model": inner.model_id, "options": inner.options()}

    def close(self) -> None:
        """Close the inner backend, and the cache when this wrapper opened it (a shared one stays open)."""
        try:
            self.inner.close()
        finally:
            if self._owns_store:
                self.store.close()

    def stats(self) -> dict[str, Any]:
        """Usage plus what cached answers cost when they were computed, and corrupt entries seen."""
        with self._lock:
            extra = dict(self._extra)
        return {**self.usage.snapshot(), **extra, "corrupt_entries": self.store.corrupt}

    # -- cached request kinds ----------------------------------------------------------------------
    def score(self, requests: Sequence[ScoreRequest]) -> list[np.ndarray]:
        texts = [self.inner.render(r.prompt) for r in requests]
        keys = [self._key("score", t, choices=list(r.choices), **({"top_k": r.top_k} if r.top_k else {}))
                for t, r in zip(texts, requests)]
        sizes = {k: len(r.choices) for k, r in zip(keys, requests)}

        def entries_of(idx: list[int], out: Sequence[Any]) -> list[Entry]:
            tokens = self.inner.count_tokens([texts[i] for i in idx])
            return [Entry(keys[i], "score", [float(x) for x in np.asarray(o, dtype=np.float64)], n)
                    for i, o, n in zip(idx, out, tokens)]

        def compute(idx: list[int]) -> list[Entry]:
            return entries_of(idx, self.inner.score([requests[i] for i in idx]))

        entries = self._answer(keys, compute, lambda e: len(e.value) == sizes[e.key], entries_of)
        return [np.asarray(entries[k].value, dtype=np.float64) for k in keys]

    def generate(self, prompts: Sequence[Prompt], max_new_tokens: int, sampling: SamplingArg = None) -> list[Generation]:
        texts = [self.inner.render(p) for p in prompts]
        samplings = sampling_list(sampling, len(prompts))
        # sampled answers are keyed by temperature, top-p and seed too (greedy keys are unchanged)
        keys = [self._key("generate", t, max_new_tokens=int(max_new_tokens), **s.key()) for t, s in zip(texts, samplings)]

        def entries_of(idx: list[int], out: Sequence[Generation]) -> list[Entry]:
            return [Entry(keys[i], "generate", {"text": g.text}, g.prompt_tokens, g.generated_tokens)
                    for i, g in zip(idx, out)]

        def compute(idx: list[int]) -> list[Entry]:
            if all(samplings[i].plain for i in idx):
                return entries_of(idx, self.inner.generate([prompts[i] for i in idx], max_new_tokens))
            return entries_of(idx, self.inner.generate([prompts[i] for i in idx], max_new_tokens,
                                                       sampling=[samplings[i] for i in idx]))

        entries = self._answer(keys, compute, lambda e: isinstance(e.value, dict) and isinstance(e.value.get("text"), str),
                               entries_of)
        return [Generation(entries[k].value["text"], entries[k].prompt_tokens, entries[k].generated_tokens)
                for k in keys]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        keys = [self._key("embed", t) for t in texts]

        def entries_of(idx: list[int], out: Sequence[Any]) -> list[Entry]:
            tokens = self.inner.count_tokens([texts[i] for i in idx])
            return [Entry(keys[i], "embed", [float(x) for x in np.asarray(row, dtype=np.float32)], n)
                    for i, row, n in zip(idx, out, tokens)]

        def compute(idx: list[int]) -> list[Entry]:
            return entries_of(idx, np.asarray(self.inner.embed([texts[i] for i in idx]), dtype=np.float32))

        entries = self._answer(keys, compute, lambda e: isinstance(e.value, list) and len(e.value) > 0, entries_of)
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.asarray([entries[k].value for k in keys], dtype=np.float32)

    def relevance(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        keys = [self._key("relevance", f"{q}\x00{d}") for q, d in pairs]

        def entries_of(idx: list[int], out: Sequence[Any]) -> list[Entry]:
            tokens = self.inner.count_tokens([f"{pairs[i][0]} {pairs[i][1]}" for i in idx])
            return [Entry(keys[i], "relevance", [float(v)], n) for i, v, n in zip(idx, out, tokens)]

        def compute(idx: list[int]) -> list[Entry]:
            return entries_of(idx, np.asarray(self.inner.relevance([pairs[i] for i in idx]), dtype=np.float64))

        entries = self._answer(keys, compute, lambda e: isinstance(e.value, list) and len(e.value) == 1, entries_of)
        return np.asarray([entries[k].value[0] for k in keys], dtype=np.float64)

    def represent(self, prompts: Sequence[Prompt]) -> tuple[np.ndarray, np.ndarray]:
        """Not cached (vocabulary-sized logits); counted as model calls."""
        before = self.inner.usage.snapshot()
        t0 = time.perf_counter()
        out = self.inner.represent(prompts)
        self._count_inner(before, time.perf_counter() - t0)
        return out

    # -- the lookup / compute / store loop ----------------------------------------------------------
    def _key(self, kind: str, prompt: str, **params: Any) -> str:
        b = self._base
        return call_key(b["backend"], b["model"], b["options"], kind, prompt, **params)

    def _answer(self, keys: list[str], compute: Callable[[list[int]], list[Entry]],
                valid: Callable[[Entry], bool],
                entries_of: Callable[[list[int], Sequence[Any]], list[Entry]]) -> dict[str, Entry]:
        found = self.store.get_many(keys)
        for k in [k for k, e in found.items() if not valid(e)]:
            self.store.mark_corrupt(k, f"{found[k].kind} value of the wrong shape")
            del found[k]
        first: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k not in found:
                first.setdefault(k, i)
        misses = list(first.values())
        for s in range(0, len(misses), self.chunk):
            idx = misses[s : s + self.chunk]
            before = self.inner.usage.snapshot()
            t0 = time.perf_counter()
            try:
                new = compute(idx)
            except ServerError as exc:
                self._keep_partial(idx, exc, entries_of, before, time.perf_counter() - t0)
                raise
            dt = time.perf_counter() - t0
            if len(new) != len(idx):
                raise BackendError(f"backend {self.name!r} answered {len(new)} of {len(idx)} requests")
            new = [Entry(e.key, e.kind, e.value, e.prompt_tokens, e.generated_tokens, dt / len(new)) for e in new]
            self.store.put_many(new, self.model_id)
            self._count_inner(before, dt)
            found.update((e.key, e) for e in new)
        hits = len(keys) - len(misses)
        if hits:
            fresh = set(first)
            reused = [found[k] for i, k in enumerate(keys) if k not in fresh or first[k] != i]
            self.usage.add(cached=hits)
            with self._lock:
                self._extra["cached_prompt_tokens"] += sum(e.prompt_tokens for e in reused)
                self._extra["cached_generated_tokens"] += sum(e.generated_tokens for e in reused)
                self._extra["cached_model_s"] += sum(e.compute_s for e in reused)
        return found

    def _keep_partial(self, idx: list[int], exc: ServerError,
                      entries_of: Callable[[list[int], Sequence[Any]], list[Entry]],
                      before: dict[str, int], seconds: float) -> None:
        """Store the answers a failed server batch did finish (``exc.partial``: position -> result)."""
        done = sorted(p for p in exc.partial if 0 <= p < len(idx))
        if not done:
            return
        try:
            kept = entries_of([idx[p] for p in done], [exc.partial[p] for p in done])
        except Exception:  # noqa: BLE001 - a malformed partial result must not hide the server error
            log.warning("could not keep the %d answers finished before the server failed", len(done), exc_info=True)
            return
        kept = [Entry(e.key, e.kind, e.value, e.prompt_tokens, e.generated_tokens, seconds / len(kept)) for e in kept]
        self.store.put_many(kept, self.model_id)
        self._count_inner(before, seconds)
        log.info("kept %d of %d answers finished before the server failed", len(kept), len(idx))

    def _count_inner(self, before: dict[str, int], seconds: float) -> None:
        after = self.inner.usage.snapshot()
        self.usage.add(after["model_calls"] - before["model_calls"], after["prompt_tokens"] - before["prompt_tokens"],
                       after["generated_tokens"] - before["generated_tokens"],
                       truncated=after.get("truncated_prompts", 0) - before.get("truncated_prompts", 0))
        with self._lock:
            self._extra["model_s"] += seconds
