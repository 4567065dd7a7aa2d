"""Micro-batching: concurrent requests share model calls, through a bounded queue and one worker thread.

Requests are queued from the event loop; a worker thread takes everything waiting (up to
``max_batch_requests`` requests / ``max_batch_documents`` documents), calls ``rerank_many`` once, and
hands each request its ranking. A full queue raises :class:`Overloaded` instead of growing. It serves the
server (:mod:`rerankkit.server`) and ``Reranker.arerank`` for local backends (:mod:`rerankkit.aio`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .types import Doc, Query, Ranking

log = logging.getLogger(__name__)

RerankMany = Callable[..., list[Ranking]]  # rerank_many(items[, policies=..., count_tokens=...])


class Overloaded(Exception):
    """The queue is full (or the server is shutting down); the caller should retry later."""


@dataclass(frozen=True)
class BatchResult:
    """One request's ranking and how it was computed."""

    ranking: Ranking
    batch_requests: int  # requests that shared this model call
    queue_s: float
    compute_s: float


@dataclass(eq=False)  # compared by identity (removal from the queue)
class _Job:
    query: Query
    docs: Sequence[Doc]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    enqueued: float
    policy: Any = None  # a DocPolicy for this request's documents (None: the reranker's own)


class MicroBatcher:
    """A bounded request queue drained by one worker thread in batches (see module docstring)."""

    def __init__(
        self,
        rerank_many: RerankMany,
        max_batch_requests: int = 32,
        max_batch_documents: int = 1024,
        max_queue_requests: int = 256,
        max_queue_documents: int = 32_768,
        count_tokens: bool = False,
    ) -> None:
        self._rerank_many = rerank_many
        self.count_tokens = count_tokens  # ask rerank_many for each ranking's input tokens
        self.max_batch_requests = max_batch_requests
        self.max_batch_documents = max_batch_documents
        self.max_queue_requests = max_queue_requests
        self.max_queue_documents = max_queue_documents
        self._queue: collections.deque[_Job] = collections.deque()
        self._queued_docs = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.running = 0  # requests in the model call now
        self.batches = 0
        self.completed = 0

    # -- life cycle --------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="rerankkit-batcher", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Refuse new requests, finish every queued one, then end the worker."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("batcher did not finish its queue within %s s", timeout)

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def accepting(self) -> bool:
        return not self._stopping

    # -- the event-loop side -------------------------------------------------------------------------
    async def submit(self, query: Query, docs: Sequence[Doc], policy: Any = None) -> BatchResult:
        """Queue one request and wait for its ranking; raises :class:`Overloaded` when full."""
        loop = asyncio.get_running_loop()
        job = _Job(query, docs, loop.create_future(), loop, time.perf_counter(), policy)
        with self._cond:
            if self._stopping:
                raise Overloaded("the server is shutting down")
            if len(self._queue) >= self.max_queue_requests:
                raise Overloaded(f"the request queue is full (max_queue_requests={self.max_queue_requests})")
            if self._queue and self._queued_docs + len(docs) > self.max_queue_documents:
                raise Overloaded(f"too many queued documents (max_queue_documents={self.max_queue_documents})")
            self._queue.append(job)
            self._queued_docs += len(docs)
            self._cond.notify()
        try:
            return await job.future
        except asyncio.CancelledError:  # timed out or abandoned: free its queue slot if still waiting
            with self._cond:
                if job in self._queue:
                    self._queue.remove(job)
                    self._queued_docs -= len(docs)
            raise

    # -- the worker thread -------------------------------------------------------------------------
    def _take(self) -> list[_Job] | None:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            if not self._queue:
                return None
            batch = [self._queue.popleft()]
            n_docs = len(batch[0].docs)
            while (self._queue and len(batch) < self.max_batch_requests
                   and n_docs + len(self._queue[0].docs) <= self.max_batch_documents):
                job = self._queue.popleft()
                batch.append(job)
                n_docs += len(job.docs)
            self._queued_docs -= n_docs
            self.running = len(batch)
            return batch

    def _work(self) -> None:
        while (batch := self._take()) is not None:
            batch = [j for j in batch if not j.future.cancelled()]
            try:
                if batch:
                    self._run(batch)
            finally:
                with self._cond:
                    self.running = 0
                    self.batches += 1
                    self.completed += len(batch)

    def _run(self, batch: list[_Job]) -> None:
        t0 = time.perf_counter()
        try:
            kwargs: dict[str, Any] = {"count_tokens": True} if self.count_tokens else {}
            if any(j.policy is not None for j in batch):
                kwargs["policies"] = [j.policy for j in batch]
            rankings = self._rerank_many([(j.query, j.docs) for j in batch], **kwargs)
        except Exception as exc:  # noqa: BLE001 - delivered to the callers
            if len(batch) == 1:
                _deliver(batch[0], exc=exc)
                return
            log.warning("a batch of %d requests failed (%s); retrying them one by one", len(batch), exc)
            for job in batch:
                self._run([job])
            return
        dt = time.perf_counter() - t0
        for job, ranking in zip(batch, rankings):
            _deliver(job, BatchResult(ranking, len(batch), t0 - job.enqueued, dt))


def _deliver(job: _Job, result: BatchResult | None = None, exc: BaseException | None = None) -> None:
    def settle() -> None:
        if job.future.done():
            return
        if exc is not None:
            job.future.set_exception(exc)
        else:
            job.future.set_result(result)

    try:
        job.loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the event loop is closed: nobody is waiting any more
        log.debug("dropping a result: its event loop is closed")
