"""The front door: ``Reranker("preset-name", **overrides).rerank(query, docs)``."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .backends import Backend, create_backend
from .errors import InputError
from .overrides import apply_overrides, check_spec
from .presets import RERANKER_PRESETS
from .prompts.template import load_template
from .spec import RerankerSpec
from .strategies import STRATEGIES, Strategy
from .text import repair_items, restore
from .types import Doc, Query, Ranking, Run, as_doc

if TYPE_CHECKING:
    from .executors.base import Executor

log = logging.getLogger(__name__)


class Reranker:
    """A reranker built from a preset name or a :class:`RerankerSpec`, with keyword overrides.

    Overrides: spec fields (``model=``, ``backend=``, ``template=``, ``strategy=``), strategy
    parameters (``k=10``), and backend options (``dtype="bf16"``, ``batch_size=8``). A bare key goes
    to the strategy when it declares that parameter, else to the backend when it declares that option;
    ``params.KEY`` and ``backend.KEY`` say it explicitly (see :mod:`rerankkit.overrides`). Every key and
    value is checked before any model loads: a misspelt one is a ConfigError naming the closest valid keys.
    ``backend_instance=`` passes a ready backend object (then backend options are refused: set them where
    it is created). ``cache=PATH`` answers repeated model calls from a content-addressed SQLite cache
    (``CachedBackend``).
    """

    def __init__(self, name_or_spec: str | RerankerSpec, backend_instance: Backend | None = None,
                 cache: str | os.PathLike[str] | None = None, **overrides: Any):
        base = name_or_spec if isinstance(name_or_spec, RerankerSpec) else RERANKER_PRESETS.get(name_or_spec)
        self.spec = apply_overrides(base, overrides, ready_backend=backend_instance is not None)
        template = load_template(self.spec.template)
        self.strategy: Strategy = STRATEGIES.get(self.spec.strategy)(template, self.spec.params)
        self.cache = cache
        self._aio: Any = None
        self._backend = backend_instance
        if backend_instance is None:
            # backend options and declared capabilities are checked before any model is loaded
            cls = check_spec(self.spec)
            self.strategy.check_backend(_Declared(self.spec.backend, cls.capabilities))
        else:
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
        return self.rerank_many([(query, docs)])[0].top(top_k)

    def rerank_many(
        self, items: Sequence[tuple[str | Query, Sequence[str | Doc]]],
        on_query_done: Callable[[int], None] | None = None,
        policies: Sequence[Any] | None = None, count_tokens: bool = False,
    ) -> list[Ranking]:
        """Rerank several (query, docs) pairs together (their model calls are batched).

        As in :meth:`rerank`, a query may be a plain string (it becomes query ``q0``, ``q1``, ... by position)
        and a document a plain string (id ``"0"``, ``"1"``, ... by its position in the list).
        ``policies``: per item, a :class:`~rerankkit.strategies.chunking.DocPolicy` (or None) for how its
        documents are cut or chunked; ``count_tokens``: record each ranking's input tokens."""
        if not items:
            return []
        pairs = _as_items(items)
        # lone surrogates (no UTF-8 encoding) become U+FFFD, counted as ranking.metadata["replaced_chars"]
        clean, replaced = repair_items(pairs)
        rankings = self.strategy.rerank_many(self.backend, clean, on_query_done, policies, count_tokens)
        return [restore(r, q, d, n) for r, (q, d), n in zip(rankings, pairs, replaced)]

    async def arerank(self, query: str | Query, docs: Sequence[str | Doc], top_k: int | None = None) -> Ranking:
        """:meth:`rerank` from an event loop (see :mod:`rerankkit.aio`: async HTTP for the openai backend,
        a micro-batching worker thread for local models)."""
        return (await self.arerank_many([(query, docs)]))[0].top(top_k)

    async def arerank_many(self, items: Sequence[tuple[str | Query, Sequence[str | Doc]]],
                           policies: Sequence[Any] | None = None) -> list[Ranking]:
        """:meth:`rerank_many` from an event loop."""
        pairs = _as_items(items)
        clean, replaced = repair_items(pairs)
        rankings = await self._runner().rerank_many(clean, policies)
        return [restore(r, q, d, n) for r, (q, d), n in zip(rankings, pairs, replaced)]

    async def arerank_run(self, run: Run, depth: int | None = None, top_k: int | None = None) -> Run:
        """:meth:`rerank_run` from an event loop (the strategy's first-stage merge included)."""
        rankings, items = _run_items(run, depth)
        t0 = time.perf_counter()
        backend = await self._runner().backend()
        before = backend.usage.snapshot()
        results = await self.arerank_many(items)
        after = backend.usage.snapshot()
        return self._run_result(rankings, results, depth, top_k, {k: after[k] - before[k] for k in after}, t0)

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
        executor: Executor | None = None,
    ) -> Run:
        """Rerank the first ``depth`` candidates of every query in ``run``.

        Documents below ``depth`` keep their order beneath the reranked ones (scores shifted
        below), so the output is still a full permutation of each input ranking.
        Queries are processed in chunks of ``chunk_size`` (default: all at once).
        ``executor`` (e.g. ``RayExecutor()``) shards the queries across workers that each load the
        backend once; the run's metadata then says how (``executor``).
        """
        rankings, items = _run_items(run, depth)
        t0 = time.perf_counter()
        spread: dict[str, Any] | None = None
        if executor is not None:
            from .executors.rerank import rerank_sharded

            results, usage, spread = rerank_sharded(self, items, executor, progress, chunk_size)
        else:
            results, usage = self._rerank_here(items, progress, chunk_size)
        return self._run_result(rankings, results, depth, top_k, usage, t0, spread)

    def _run_result(self, rankings: list[Ranking], results: list[Ranking], depth: int | None, top_k: int | None,
                    usage: dict[str, int], t0: float, spread: dict[str, Any] | None = None) -> Run:
        """The reranked run: each query's reranking merged with its first stage (the strategy's
        ``merge_first_stage``), the unreranked tail appended, cut to ``top_k``, with the run's metadata."""
        results = [self.strategy.merge_first_stage(new, old.docs if depth is None else old.docs[:depth])
                   for new, old in zip(results, rankings)]
        out = [_append_tail(new, old, depth).top(top_k) for new, old in zip(results, rankings)]
        meta = {
            "spec": self.spec.to_dict(),
            "wall_s": round(time.perf_counter() - t0, 3),
            "depth": depth,
            "usage": usage,
            "truncated_docs": sum(int(r.metadata.get("truncated_docs", 0)) for r in results),
            "totals": _int_totals(results),  # every per-query counter (repairs, windows, ...) summed
        }
        if spread is not None:
            meta["executor"] = spread
        return Run(out, meta)

    def _rerank_here(self, items: Sequence[tuple[Query, Sequence[Doc]]], progress: bool,
                     chunk_size: int | None) -> tuple[list[Ranking], dict[str, int]]:
        before = self.backend.usage.snapshot()
        bar = _progress(len(items), progress)
        results: list[Ranking] = []
        step = chunk_size or max(1, len(items))
        try:
            for i in range(0, len(items), step):
                results.extend(self.rerank_many(items[i : i + step], on_query_done=lambda _: bar.update(1)))
        finally:
            bar.close()
        after = self.backend.usage.snapshot()
        return results, {k: after[k] - before[k] for k in after}

    def close(self) -> None:
        if self._aio is not None:
            self._aio.close()
        if self._backend is not None:
            self._backend.close()


def _as_items(items: Sequence[tuple[str | Query, Sequence[str | Doc]]]) -> list[tuple[Query, list[Doc]]]:
    """(Query, [Doc]) pairs: a plain-string query becomes ``q<position>``, a plain-string document ``<position>``."""
    return [(q if isinstance(q, Query) else Query(f"q{i}", _text(q)), [as_doc(d, j) for j, d in enumerate(ds)])
            for i, (q, ds) in enumerate(items)]


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
