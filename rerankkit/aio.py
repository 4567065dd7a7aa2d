"""``await reranker.arerank(...)``: reranking from an event loop without blocking it.

Two ways, chosen by the backend:

- a backend with async calls (the ``openai`` backend: ``ascore``/``agenerate``/``aembed`` over
  ``httpx.AsyncClient``) runs the strategy's lock-step schedule on the event loop itself
  (:func:`~rerankkit.strategies.lockstep.arun_lockstep`); concurrent ``arerank`` calls share the
  backend's bound on requests in flight (``max_concurrency``);
- any other backend (a local model) gets one worker thread with the server's micro-batcher
  (:class:`~rerankkit.batching.MicroBatcher`): concurrent ``arerank`` calls wait in its queue and
  are reranked together in one ``rerank_many`` call, so they share forward passes.

Either way the rankings equal those of the blocking methods for a deterministic backend.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .types import Doc, Query, Ranking

if TYPE_CHECKING:
    from .reranker import Reranker
    from .strategies.chunking import DocPolicy

_ASYNC_METHODS = ("ascore", "agenerate", "aembed")
_LOCKS: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def lock_for(reranker: Reranker) -> threading.Lock:
    """The lock that keeps one blocking model call at a time on ``reranker`` (backends are not promised
    to be thread-safe): the framework adapters' worker threads and the async worker thread share it."""
    with _GUARD:
        return _LOCKS.setdefault(reranker, threading.Lock())


class AsyncRunner:
    """The async side of one :class:`~rerankkit.Reranker` (made on its first async call)."""

    def __init__(self, reranker: Reranker, max_batch_requests: int = 32, max_batch_documents: int = 4096) -> None:
        self.reranker = reranker
        self.max_batch_requests = max_batch_requests
        self.max_batch_documents = max_batch_documents
        self._batcher: Any = None
        self._lock = threading.Lock()
        self._loading = threading.Lock()

    async def backend(self) -> Any:
        """The backend, loaded once in a worker thread (loading a model blocks; concurrent first calls wait)."""
        if self.reranker._backend is None:
            def load() -> Any:
                with self._loading:
                    return self.reranker.backend

            await asyncio.to_thread(load)
        return self.reranker.backend

    @staticmethod
    def is_native(backend: Any) -> bool:
        inner = getattr(backend, "inner", None)  # a CachedBackend has no async calls: it blocks on its store
        return inner is None and all(hasattr(backend, m) for m in _ASYNC_METHODS)

    async def rerank_many(self, items: Sequence[tuple[Query, Sequence[Doc]]],
                          policies: Sequence[DocPolicy | None] | None = None) -> list[Ranking]:
        if not items:
            return []
        backend = await self.backend()
        if self.is_native(backend):
            return await self.reranker.strategy.arerank_many(backend, items, policies=policies)
        batcher = self._local_batcher()
        pols = list(policies) if policies is not None else [None] * len(items)
        done = await asyncio.gather(*(batcher.submit(q, d, p) for (q, d), p in zip(items, pols)))
        return [r.ranking for r in done]

    def _local_batcher(self) -> Any:
        with self._lock:
            if self._batcher is None:
                from .batching import MicroBatcher

                queue = 1 << 30  # callers in this process wait; they are never refused
                reranker = self.reranker

                def rerank_many(items: Any, **kwargs: Any) -> list[Ranking]:
                    with lock_for(reranker):
                        return reranker.rerank_many(items, **kwargs)

                self._batcher = MicroBatcher(rerank_many, self.max_batch_requests, self.max_batch_documents,
                                             queue, queue)
                self._batcher.start()
            return self._batcher

    def close(self) -> None:
        """Finish what is queued and end the worker thread."""
        with self._lock:
            batcher, self._batcher = self._batcher, None
        if batcher is not None:
            batcher.stop()
