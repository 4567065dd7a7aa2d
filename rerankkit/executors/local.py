"""``LocalExecutor``: one worker in this process (what every run did before executors existed)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from .base import Executor, MapResult, WorkerContext, WorkerTask, progress_bar


class _LocalContext(WorkerContext):
    def __init__(self, store: Any | None, cache_chunk: int, bar: Any):
        self.worker = 0
        self.cache_chunk = cache_chunk
        self._store = store
        self._bar = bar
        self._done: set[str] = set()

    @property
    def store(self) -> Any | None:
        return self._store

    def done(self, key: str) -> None:
        if key not in self._done:
            self._done.add(key)
            self._bar.update(1)


class LocalExecutor(Executor):
    """Runs every shard, in order, on one worker built once in this process.

    ``threads``: torch intra-op threads for the work (None: leave torch's setting alone).
    """

    name = "local"
    in_process = True

    def __init__(self, threads: int | None = None):
        self.threads = threads

    def workers_for(self, n_shards: int) -> int:
        return 1

    def map(self, task: WorkerTask, shards: Sequence[Any], *, cache: str | os.PathLike[str] | None = None,
            cache_chunk: int | None = None, total: int | None = None, progress: bool = False,
            desc: str = "work", unit: str = "it",
            on_result: Callable[[int, Any], None] | None = None) -> MapResult:
        if self.threads:
            import torch

            torch.set_num_threads(int(self.threads))
        store = None
        if cache is not None:
            from ..answer_cache import CallCache

            store = CallCache(cache)
        bar = progress_bar(total, progress, desc, unit)
        t0 = time.perf_counter()
        state = None
        try:
            ctx = _LocalContext(store, cache_chunk or 32, bar)
            state = task.setup(ctx)
            results = []
            for i, shard in enumerate(shards):
                results.append(task.run(state, shard, ctx))
                if on_result is not None:
                    on_result(i, results[-1])
        finally:
            bar.close()
            teardown = getattr(task, "teardown", None)
            if teardown is not None and state is not None:
                teardown(state)
            if store is not None:
                store.close()
        return MapResult(results, {"executor": self.name, "worker_count": 1, "shards": len(shards),
                                   "wall_s": round(time.perf_counter() - t0, 3)})
