"""The hub: one process on the driver's node that owns the run's answer cache and counts the work.

Ray workers read and write answers through it (:class:`RemoteStore`), so a run on many machines keeps
one content-addressed SQLite file on the driver's disk (no shared filesystem needed) and every batch is
committed the moment a worker finishes it. Workers also announce each batch of prompts *before* they
compute it, so the hub knows how many answers were computed and then lost with a worker that died:
``repeated_calls = announced - stored``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from ..answer_cache import CallCache, Entry


class Hub:
    """Plain class; :class:`~rerankkit.executors.raycluster.RayExecutor` runs it as a Ray actor."""

    def __init__(self, cache_path: str | None):
        self.store = CallCache(cache_path) if cache_path else None
        self.announced = 0  # prompts workers said they were about to compute (answers that get cached)
        self.uncached = 0  # prompts of request kinds that are never cached
        self.stored = 0  # answers committed to the store
        self.corrupt = 0
        self.gets = 0
        self.done: set[str] = set()
        self.starts: list[dict[str, Any]] = []  # one per worker start (a restart adds one)
        self.t0 = time.time()

    # -- what workers call --------------------------------------------------------------------------
    def hello(self, worker: int, pid: int, node: str) -> int:
        """A worker (re)started; returns how many times this worker index has started."""
        self.starts.append({"worker": worker, "pid": pid, "node": node, "t": round(time.time() - self.t0, 3)})
        return sum(1 for s in self.starts if s["worker"] == worker)

    def get_many(self, keys: Sequence[str]) -> dict[str, Entry]:
        self.gets += 1
        return self.store.get_many(keys) if self.store is not None else {}

    def put_many(self, entries: Sequence[Entry], model: str = "") -> int:
        if self.store is not None:
            self.store.put_many(list(entries), model)
        self.stored += len(entries)
        return self.stored

    def mark_corrupt(self, key: str, why: str) -> None:
        self.corrupt += 1
        if self.store is not None:
            self.store.mark_corrupt(key, why)

    def computing(self, n: int, cached: bool = True) -> None:
        if cached:
            self.announced += int(n)
        else:
            self.uncached += int(n)

    def mark_done(self, keys: Iterable[str]) -> int:
        self.done.update(keys)
        return len(self.done)

    # -- what the driver calls ----------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Counters so far, and the pid and node of the latest start of every worker."""
        latest: dict[int, dict[str, Any]] = {}
        for s in self.starts:
            latest[s["worker"]] = s
        workers = len(latest)
        return {
            "model_calls": self.announced + self.uncached,
            "stored": self.stored,
            "repeated_calls": max(0, self.announced - self.stored),
            "restarts": len(self.starts) - workers,
            "done": len(self.done),
            "cache_reads": self.gets,
            "corrupt_entries": self.corrupt,
            "workers": {w: {"pid": s["pid"], "node": s["node"]} for w, s in sorted(latest.items())},
            "nodes": len({s["node"] for s in latest.values()}),
        }

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None


class RemoteStore:
    """The :class:`CallCache` interface, answered by the hub (what :class:`CachedBackend` uses in a worker).

    Every call waits for the hub, so a batch is committed before the worker moves on.
    """

    def __init__(self, hub: Any):
        self.hub = hub
        self.corrupt = 0

    def get_many(self, keys: Iterable[str]) -> dict[str, Entry]:
        import ray

        return ray.get(self.hub.get_many.remote(list(dict.fromkeys(keys))))

    def put_many(self, entries: Sequence[Entry], model: str = "") -> None:
        import ray

        if entries:
            ray.get(self.hub.put_many.remote(list(entries), model))

    def mark_corrupt(self, key: str, why: str) -> None:
        self.corrupt += 1
        self.hub.mark_corrupt.remote(key, why)

    def close(self) -> None:
        return None
