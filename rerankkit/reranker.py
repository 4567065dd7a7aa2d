"""The front door: ``Reranker("preset-name", **overrides).rerank(query, docs)``."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .backends import BACKENDS, Backend, create_backend
from .errors import InputError
from .presets import RERANKER_PRESETS
from .prompts.template import load_template
from .spec import RerankerSpec
from .strategies import STRATEGIES, Strategy
from .types import Doc, Query, Ranking, Run, as_doc

log = logging.getLogger(__name__)
_SPEC_FIELDS = ("strategy", "template", "backend", "model", "description", "paper", "name")


class Reranker:
    """A reranker built from a preset name or a :class:`RerankerSpec`, with keyword overrides.

    Overrides: spec fields (``model=``, ``backend=``, ``template=``, ``strategy=``), strategy
    parameters (``k=10``), and backend options (``dtype="bf16"``, ``batch_size=8``). A bare key goes
    to the strategy when it declares that parameter, else to the backend; ``params.KEY`` and
    ``backend.KEY`` say it explicitly. ``backend_instance=`` passes a ready backend object.
    ``cache=PATH`` answers repeated model calls from a content-addressed SQLite cache (``CachedBackend``).
    """

    def __init__(self, name_or_spec: str | RerankerSpec, backend_instance: Backend | None = None,
                 cache: str | os.PathLike[str] | None = None, **overrides: Any):
        base = name_or_spec if isinstance(name_or_spec, RerankerSpec) else RERANKER_PRESETS.get(name_or_spec)
        self.spec = apply_overrides(base, overrides)
        STRATEGIES.resolve(self.spec.strategy)
        if backend_instance is None:
            BACKENDS.resolve(self.spec.backend)
        template = load_template(self.spec.template)
        self.strategy: Strategy = STRATEGIES.get(self.spec.strategy)(template, self.spec.params)
        if backend_instance is None:
            # fail on a capability mismatch before loading any model
            entry = BACKENDS.get(self.spec.backend)
            self.strategy.check_backend(_Declared(self.spec.backend, entry.capabilities))
        self.cache = cache
        self._aio: Any = None
        self._backend = backend_instance
        if backend_instance is not None:
            self.strategy.check_backend(backend_instance)
            self._backend = _cached(backend_instance, cache)

    @property
    def backend(self) -> Backend:
        """The backend, created (and the model loaded) on first use."""
        if self._backend is None:
            log.info("loading backend %s for %s", self.spec.backend, self.spec.model)
            backend = create_backend(self.spec.backend, self.spec.model, **dict(self.spec.backend_options))
            self.strategy.check_backend(backend)
            self._backend = _cached(backend, self.cache)
        return self._backend

    def rerank(self, query: str | Query, docs: Sequence[str | Doc], top_k: int | None = None) -> Ranking:
        """Rank ``docs`` for ``query``: a full permutation (or its first ``top_k``) with scores."""
        q = query if isinstance(query, Query) else Query("q0", _text(query))
        ds = [as_doc(d, i) for i, d in enumerate(docs)]
        return self.rerank_many([(q, ds)])[0].top(top_k)

    def rerank_many(
        self, items: Sequence[tuple[Query, Sequence[Doc]]], on_query_done: Callable[[int], None] | None = None,
        policies: Sequence[Any] | None = None, count_tokens: bool = False,
    ) -> list[Ranking]:
        """Rerank several (query, docs) pairs together (their model calls are batched).

        ``policies``: per item, a :class:`~rerankkit.strategies.chunking.DocPolicy` (or None) for how its
        documents are cut or chunked; ``count_tokens``: record each ranking's input tokens.
        """
        if not items:
            return []
        return self.strategy.rerank_many(self.backend, items, on_query_done, policies, count_tokens)

    async def arerank(self, query: str | Query, docs: Sequence[str | Doc], top_k: int | None = None) -> Ranking:
        """:meth:`rerank` from an event loop (see :mod:`rerankkit.aio`: async HTTP for the openai backend,
        a micro-batching worker thread for local models)."""
        q = query if isinstance(query, Query) else Query("q0", _text(query))
        ds = [as_doc(d, i) for i, d in enumerate(docs)]
        return (await self.arerank_many([(q, ds)]))[0].top(top_k)

    async def arerank_many(self, items: Sequence[tuple[Query, Sequence[Doc]]],
                           policies: Sequence[Any] | None = None) -> list[Ranking]:
        """:meth:`rerank_many` from an event loop."""
        return await self._runner().rerank_many(items, policies)

    async def arerank_run(self, run: Run, depth: int | None = None, top_k: int | None = None) -> Run:
        """:meth:`rerank_run` from an event loop."""
        rankings, items = _run_items(run, depth)
        before = (await self._runner().backend()).usage.snapshot()
        t0 = time.perf_counter()
        return self._run_result(rankings, await self.arerank_many(items), depth, top_k, before, t0)

    def _runner(self) -> Any:
        if self._aio is None:
            from .aio import AsyncRunner

            self._aio = AsyncRunner(self)
        return self._aio

    def rerank_run(
        self,
        run: Run,
        depth: int | None = None,
        top_k: int | None = None,
        progress: bool = False,
        chunk_size: int | None = None,
    ) -> Run:
        """Rerank the first ``depth`` candidates of every query in ``run``.

        Documents below ``depth`` keep their order beneath the reranked ones (scores shifted
        below), so the output is still a full permutation of each input ranking.
        Queries are processed in chunks of ``chunk_size`` (default: all at once).
        """
        rankings, items = _run_items(run, depth)
        before = self.backend.usage.snapshot()
        t0 = time.perf_counter()
        bar = _progress(len(items), progress)
        results: list[Ranking] = []
        step = chunk_size or max(1, len(items))
        try:
            for i in range(0, len(items), step):
                results.extend(self.rerank_many(items[i : i + step], on_query_done=lambda _: bar.update(1)))
        finally:
            bar.close()
        return self._run_result(rankings, results, depth, top_k, before, t0)

    def _run_result(self, rankings: list[Ranking], results: list[Ranking], depth: int | None, top_k: int | None,
                    before: dict[str, int], t0: float) -> Run:
        out = [_append_tail(new, old, depth).top(top_k) for new, old in zip(results, rankings)]
        after = self.backend.usage.snapshot()
        meta = {
            "spec": self.spec.to_dict(),
            "wall_s": round(time.perf_counter() - t0, 3),
            "depth": depth,
            "usage": {k: after[k] - before[k] for k in after},
            "truncated_docs": sum(int(r.metadata.get("truncated_docs", 0)) for r in results),
            "totals": _int_totals(results),  # every per-query counter (repairs, windows, ...) summed
        }
        return Run(out, meta)

    def close(self) -> None:
        if self._aio is not None:
            self._aio.close()
        if self._backend is not None:
            self._backend.close()


def apply_overrides(spec: RerankerSpec, overrides: Mapping[str, Any]) -> RerankerSpec:
    """Route ``overrides`` into spec fields, strategy params or backend options (see :class:`Reranker`)."""
    fields: dict[str, Any] = {}
    params = dict(spec.params)
    opts = dict(spec.backend_options)
    strategy_name = overrides.get("strategy", spec.strategy)
    strategy_params = {f.name for f in dataclasses.fields(STRATEGIES.get(strategy_name).Params)}
    for key, value in overrides.items():
        if key in _SPEC_FIELDS:
            fields[key] = str(value)
        elif key == "params":
            params.update(value)
        elif key == "backend_options":
            opts.update(value)
        elif key.startswith("params."):
            params[key[len("params."):]] = value
        elif key.startswith("backend."):
            opts[key[len("backend."):]] = value
        elif key in strategy_params:
            params[key] = value
        else:
            opts[key] = value
    if "backend" in fields and fields["backend"] != spec.backend and "backend_options" not in overrides:
        # options of the preset's backend rarely apply to another one; keep only the explicit ones
        opts = {k: v for k, v in opts.items() if k in overrides or f"backend.{k}" in overrides}
    return spec.replace(params=params, backend_options=opts, **fields)


def _run_items(run: Run, depth: int | None) -> tuple[list[Ranking], list[tuple[Query, list[Doc]]]]:
    rankings = list(run.values())
    return rankings, [(r.query, [sd.doc for sd in (r.docs if depth is None else r.docs[:depth])]) for r in rankings]


def _append_tail(new: Ranking, old: Ranking, depth: int | None) -> Ranking:
    if depth is None or depth >= len(old.docs):
        return new
    tail = old.docs[depth:]
    low = min((d.score for d in new.docs), default=0.0)
    from .types import ScoredDoc

    shifted = tuple(ScoredDoc(d.doc, low - 1.0 - i) for i, d in enumerate(tail))
    return Ranking(new.query, new.docs + shifted, new.metadata)


def _cached(backend: Backend, cache: str | os.PathLike[str] | None) -> Backend:
    if cache is None:
        return backend
    from .backends.cached import CachedBackend

    return CachedBackend(backend, cache)


def _int_totals(rankings: Sequence[Ranking]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for r in rankings:
        for k, v in r.metadata.items():
            if isinstance(v, int) and not isinstance(v, bool):
                totals[k] = totals.get(k, 0) + v
    return totals


def _text(query: Any) -> str:
    if not isinstance(query, str):
        raise InputError(f"query must be str or Query, got {type(query).__name__}")
    return query


class _Declared:
    """A stand-in with a backend's declared capabilities (checked before any model is loaded)."""

    def __init__(self, name: str, capabilities: Any):
        self.name = name
        self.capabilities = capabilities


def _progress(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc="rerank", unit="q")
