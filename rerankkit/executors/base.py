"""The executor contract: stateful workers, each built once, mapping a task over shards of work.

A :class:`WorkerTask` says what one worker builds once (``setup``: a backend, an encoder) and what it
does with one shard (``run``). An :class:`Executor` decides where workers live: in this process
(:class:`~rerankkit.executors.local.LocalExecutor`) or as Ray actors across a cluster
(:class:`~rerankkit.executors.raycluster.RayExecutor`). Workers see the run's answer cache and report
progress through their :class:`WorkerContext`; results come back in shard order.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..backends.base import Backend, BackendWrapper


class WorkerTask(Protocol):
    """What a worker does. Must pickle (it travels to Ray actors); heavy state is built in ``setup``."""

    def setup(self, ctx: WorkerContext) -> Any:
        """Build the worker's state once (again after the worker is restarted)."""
        ...

    def run(self, state: Any, shard: Any, ctx: WorkerContext) -> Any:
        """Process one shard with the state ``setup`` built; the result travels back to the caller."""
        ...

    # optional: ``teardown(state)`` releases the state in a worker that outlives the map (in-process)


class WorkerContext(ABC):
    """What a task sees inside a worker: its index, the shared answer cache, progress reporting."""

    worker: int = 0
    cache_chunk: int = 32

    @property
    @abstractmethod
    def store(self) -> Any | None:
        """The run's answer cache (a :class:`~rerankkit.answer_cache.CallCache` or a proxy to one), or None."""

    @abstractmethod
    def done(self, key: str) -> None:
        """One unit of work (a query, a document batch) is finished; a key reported twice counts once."""

    def wrap(self, backend: Backend) -> Backend:
        """``backend`` behind the run's answer cache (unchanged when the run has none)."""
        if self.store is None:
            return backend
        from ..backends.cached import CachedBackend

        return CachedBackend(backend, self.store, chunk=self.cache_chunk)


@dataclass
class MapResult:
    """The results of :meth:`Executor.map`, in shard order, with how the work was done."""

    results: list[Any]
    stats: dict[str, Any] = field(default_factory=dict)


class Executor(ABC):
    """Runs a :class:`WorkerTask` over shards on one or more workers."""

    name: str = "executor"
    #: True when workers share this process (they may reuse objects the caller already built)
    in_process: bool = False

    @abstractmethod
    def workers_for(self, n_shards: int) -> int:
        """How many workers a map over ``n_shards`` shards would use (fails fast when none can start)."""

    @abstractmethod
    def map(self, task: WorkerTask, shards: Sequence[Any], *, cache: str | os.PathLike[str] | None = None,
            cache_chunk: int | None = None, total: int | None = None, progress: bool = False,
            desc: str = "work", unit: str = "it",
            on_result: Callable[[int, Any], None] | None = None) -> MapResult:
        """Run ``task`` over ``shards``; ``cache`` is the answer store the workers share (committed every
        ``cache_chunk`` answers; None: the executor's default), ``total``
        the number of progress units (``ctx.done`` keys) the shards hold, ``on_result(i, result)`` is
        called in this process as soon as shard ``i`` is finished."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the executor holds (a cluster connection it opened)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CountingBackend(BackendWrapper):
    """A backend that reports every batch of prompts to ``on_calls`` before computing it.

    Used under :class:`~rerankkit.backends.cached.CachedBackend` inside a worker, so the cluster-wide
    count of model calls includes work that a worker finished and then lost when it died.
    """

    def __init__(self, inner: Backend, on_calls: Callable[[int], None]):
        super().__init__(inner)
        self._on_calls = on_calls

    def __getattr__(self, name: str) -> Any:  # everything else is the inner backend's
        inner = self.__dict__.get("inner")
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)

    @property
    def usage(self) -> Any:
        return self.inner.usage

    def score(self, requests: Sequence[Any]) -> Any:
        self._on_calls(len(requests))
        return self.inner.score(requests)

    def generate(self, prompts: Sequence[Any], max_new_tokens: int, sampling: Any = None) -> Any:
        self._on_calls(len(prompts))
        if sampling is None:  # greedy: the call every backend takes
            return self.inner.generate(prompts, max_new_tokens)
        return self.inner.generate(prompts, max_new_tokens, sampling=sampling)

    def embed(self, texts: Sequence[str]) -> Any:
        self._on_calls(len(texts))
        return self.inner.embed(texts)

    def represent(self, prompts: Sequence[Any]) -> Any:
        self._on_calls(len(prompts))
        return self.inner.represent(prompts)

    def relevance(self, pairs: Sequence[Any]) -> Any:
        self._on_calls(len(pairs))
        return self.inner.relevance(pairs)


def progress_bar(total: int | None, enabled: bool, desc: str, unit: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit=unit)
