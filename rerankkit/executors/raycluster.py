"""``RayExecutor``: workers as Ray actors on a local or existing Ray cluster (extra ``ray``).

Each actor builds the task's state once (its backend: ``num_gpus``/``num_cpus`` per actor; vLLM's
tensor parallelism stays inside one actor) and takes shards until none are left. Answers go through the
hub (:mod:`rerankkit.executors.hub`): one SQLite answer cache on the driver's node, committed batch by
batch, so a rerun makes no model calls and an interrupted run resumes. An actor whose process or node
dies is restarted by Ray (``max_restarts``) and its shard retried (``max_task_retries``); the retry reads
every committed answer back from the cache, so only the batch in flight when it died is computed again
(counted as ``repeated_calls``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import socket
import tempfile
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._lazy import require
from ..errors import ClusterError, ConfigError, RerankkitError
from .base import CountingBackend, Executor, MapResult, WorkerContext, WorkerTask, progress_bar
from .hub import Hub, RemoteStore

log = logging.getLogger(__name__)


class RayExecutor(Executor):
    """Shards of work on Ray actors.

    Args:
        address: ``None`` or ``"local"``: start a Ray instance in this process (stopped by :meth:`close`);
            ``"auto"``: the cluster this machine belongs to; ``"HOST:PORT"``: the cluster whose head
            listens there (``ray start --head --port=PORT``). The driver must run on a node of the cluster.
        workers: how many actors (default: as many as the cluster's nodes hold, at most one per shard).
        num_cpus: CPUs each actor reserves (torch in an actor uses that many threads).
        num_gpus: GPUs each actor reserves (a vLLM backend with ``tensor_parallel_size=N`` needs N).
        resources: other Ray resources each actor reserves, e.g. ``{"accelerator_type:H100": 0.001}``.
        max_restarts: how often Ray restarts an actor whose process or node died.
        max_task_retries: how often a shard whose actor died is retried on the restarted actor.
        connect_timeout_s: give up connecting to ``address`` after this long.
        start_timeout_s: give up when actors have not started (model loaded) after this long, e.g. when
            other jobs hold the resources they need.
        cache_chunk: prompts an actor computes per committed batch of answers: the most it can lose when it
            dies, and the largest batch its backend sees (on a GPU, 128-256 feeds it better than 32).
        runtime_env: Ray runtime environment for the actors (``env_vars``, ``py_modules``, ...).
        poll_s: how often the driver refreshes progress while it waits.
    """

    name = "ray"
    in_process = False

    def __init__(self, address: str | None = None, *, workers: int | None = None, num_cpus: float = 1.0,
                 num_gpus: float = 0.0, resources: Mapping[str, float] | None = None, max_restarts: int = 3,
                 max_task_retries: int = 3, connect_timeout_s: float = 30.0, start_timeout_s: float = 600.0,
                 cache_chunk: int = 32, runtime_env: Mapping[str, Any] | None = None, poll_s: float = 0.5):
        if workers is not None and int(workers) < 1:
            raise ConfigError(f"workers must be at least 1, got {workers}")
        if num_cpus < 0 or num_gpus < 0:
            raise ConfigError("num_cpus and num_gpus must not be negative")
        if address and address.startswith("ray://"):
            raise ConfigError(f"{address}: Ray Client addresses are not supported; run the driver on a node of "
                              "the cluster (e.g. with `ray job submit`) and use --ray auto or --ray HOST:PORT")
        self.address = None if address in (None, "", "local") else str(address)
        self.workers = int(workers) if workers is not None else None
        self.num_cpus = float(num_cpus)
        self.num_gpus = float(num_gpus)
        self.resources = {str(k): float(v) for k, v in (resources or {}).items()}
        self.max_restarts = int(max_restarts)
        self.max_task_retries = int(max_task_retries)
        self.connect_timeout_s = float(connect_timeout_s)
        self.start_timeout_s = float(start_timeout_s)
        self.cache_chunk = max(1, int(cache_chunk))
        self.runtime_env = dict(runtime_env or {})
        self.poll_s = float(poll_s)
        self._ray: Any = None
        self._started_ray = False
        self._hub: Any = None

    def __repr__(self) -> str:
        return f"RayExecutor({self.address or 'local'!r}, workers={self.workers}, num_cpus={self.num_cpus}, " \
               f"num_gpus={self.num_gpus})"

    # -- the cluster ----------------------------------------------------------------------------------
    def connect(self) -> Any:
        """Connect (or start a local Ray instance) once; returns the ``ray`` module."""
        if self._ray is not None:
            return self._ray
        ray = require("ray", "ray", "the Ray executor")
        if self.address not in (None, "auto"):
            # checked even when Ray is already initialised in this process: a wrong address fails the same way
            _probe(self.address, self.connect_timeout_s)
        if not ray.is_initialized():
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            kw: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                                  "runtime_env": self.runtime_env or None}
            if self.address is None:
                log.info("starting a local Ray instance")
                ray.init(**kw)
            else:
                try:
                    ray.init(address=self.address, **kw)
                except (ConnectionError, RuntimeError, ValueError) as exc:
                    raise ClusterError(f"cannot connect to the Ray cluster at {self.address!r}: {exc}; start one "
                                       "with `ray start --head`, or leave out the address for a local one") from None
            self._started_ray = True
        self._ray = ray
        return ray

    def nodes(self) -> list[dict[str, float]]:
        """The total resources of every alive node."""
        ray = self.connect()
        return [dict(n.get("Resources", {})) for n in ray.nodes() if n.get("Alive")]

    def ask(self) -> dict[str, float]:
        """The resources one actor reserves."""
        out = {"CPU": self.num_cpus, "GPU": self.num_gpus, **self.resources}
        return {k: v for k, v in out.items() if v > 0}

    def capacity(self) -> int:
        """How many actors the cluster's nodes hold at once (0: not even one fits)."""
        ask = self.ask()
        total = 0
        for res in self.nodes():
            if ask:
                total += min(int(math.floor(res.get(k, 0.0) / v + 1e-9)) for k, v in ask.items())
            else:
                total += int(res.get("CPU", 1))
        return total

    def workers_for(self, n_shards: int) -> int:
        cap = self.capacity()
        if cap < 1:
            raise ClusterError(f"no node of the Ray cluster at {self.address or 'local'} has what one actor "
                               f"asks for ({_fmt(self.ask())}); nodes: {self._describe()}. Lower num_cpus/num_gpus "
                               "or add a node that has them")
        if self.workers is not None and self.workers > cap:
            raise ClusterError(f"{self.workers} actors of {_fmt(self.ask())} do not fit the Ray cluster at "
                               f"{self.address or 'local'} (room for {cap}; nodes: {self._describe()})")
        return max(1, min(self.workers or cap, n_shards))

    def _describe(self) -> str:
        return "; ".join(_fmt({k: v for k, v in n.items() if k in ("CPU", "GPU") or k in self.resources})
                         for n in self.nodes()) or "none alive"

    def status(self) -> dict[str, Any] | None:
        """The hub's counters during a :meth:`map` (worker pids and nodes, calls, restarts), else None."""
        if self._hub is None:
            return None
        return self._ray.get(self._hub.status.remote())

    # -- running ---------------------------------------------------------------------------------------
    def map(self, task: WorkerTask, shards: Sequence[Any], *, cache: str | os.PathLike[str] | None = None,
            cache_chunk: int | None = None, total: int | None = None, progress: bool = False,
            desc: str = "work", unit: str = "it",
            on_result: Callable[[int, Any], None] | None = None) -> MapResult:
        ray = self.connect()
        cache_chunk = cache_chunk or self.cache_chunk
        t0 = time.perf_counter()
        if not shards:
            return MapResult([], {"executor": self.name, "worker_count": 0, "shards": 0})
        n = self.workers_for(len(shards))
        scratch = None
        if cache is None:  # answers still go through a cache, so a restarted actor redoes only its last batch
            scratch = tempfile.mkdtemp(prefix="rerankkit-ray-")
            cache = Path(scratch) / "answers.sqlite"
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = ray.get_runtime_context().get_node_id()
        hub_cls = ray.remote(Hub)
        hub = hub_cls.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)
                              ).remote(str(Path(cache).resolve()))
        worker_cls = ray.remote(_Worker)
        opts: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus,
                                "max_restarts": self.max_restarts, "max_task_retries": self.max_task_retries}
        if self.resources:
            opts["resources"] = dict(self.resources)
        # the task travels by reference, held here for the whole map: a restarted actor reads it again
        task_ref = ray.put(task)
        actors = [worker_cls.options(**opts).remote(task_ref, hub, i, int(cache_chunk)) for i in range(n)]
        self._hub = hub
        bar = progress_bar(total, progress, desc, unit)
        try:
            self._wait_started(ray, actors)
            started = time.perf_counter() - t0
            resume = ("a rerun with cache=PATH (--cache) keeps finished answers across attempts" if scratch else
                      f"the answers finished are in the cache {cache}: rerun with it to resume")
            results = self._dispatch(ray, actors, list(shards), hub, bar, resume, on_result)
            stats = ray.get(hub.status.remote())
        finally:
            bar.close()
            self._hub = None
            for a in actors:
                with contextlib.suppress(Exception):
                    ray.kill(a)
            with contextlib.suppress(Exception):
                ray.get(hub.close.remote(), timeout=60)
            with contextlib.suppress(Exception):
                ray.kill(hub)
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)
        stats.update({"executor": self.name, "address": self.address or "local", "shards": len(shards),
                      "worker_count": n, "num_cpus": self.num_cpus, "num_gpus": self.num_gpus,
                      "cache": None if scratch else str(cache), "start_s": round(started, 3),
                      "wall_s": round(time.perf_counter() - t0, 3)})
        return MapResult(results, stats)

    def _wait_started(self, ray: Any, actors: list[Any]) -> None:
        refs = [a.ready.remote() for a in actors]
        try:
            ray.get(refs, timeout=self.start_timeout_s)
        except ray.exceptions.GetTimeoutError:
            raise ClusterError(f"{len(actors)} actor(s) of {_fmt(self.ask())} did not start within "
                               f"{self.start_timeout_s:.0f} s on the Ray cluster at {self.address or 'local'} "
                               f"(nodes: {self._describe()}); other jobs may hold those resources") from None
        except ray.exceptions.RayTaskError as exc:
            _reraise_cause(exc)
            raise

    def _dispatch(self, ray: Any, actors: list[Any], shards: list[Any], hub: Any, bar: Any,
                  resume: str, on_result: Callable[[int, Any], None] | None) -> list[Any]:
        queue = deque(range(len(shards)))
        pending: dict[Any, tuple[int, int]] = {}
        results: list[Any] = [None] * len(shards)

        def give(worker: int) -> None:
            if queue:
                s = queue.popleft()
                pending[actors[worker].run.remote(shards[s])] = (worker, s)

        for w in range(len(actors)):
            give(w)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=self.poll_s)
            for ref in ready:
                worker, s = pending.pop(ref)
                try:
                    results[s] = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    _reraise_cause(exc)
                    raise
                except ray.exceptions.RayActorError as exc:
                    raise ClusterError(f"actor {worker} died and was not restarted (max_restarts={self.max_restarts}, "
                                       f"shard {s}): {str(exc).splitlines()[0]}; {resume}") from None
                give(worker)
                if on_result is not None:
                    on_result(s, results[s])
            done = ray.get(hub.status.remote())["done"]
            if done > bar.n:
                bar.update(done - bar.n)
        return results

    def close(self) -> None:
        """Disconnect; a Ray instance this executor started is stopped."""
        if self._ray is not None and self._started_ray:
            self._ray.shutdown()
        self._ray = None
        self._started_ray = False


class _Worker:
    """One Ray actor: builds the task's state once (again after a restart), then runs shards."""

    def __init__(self, task: WorkerTask, hub: Any, index: int, cache_chunk: int):
        import ray

        self.ctx = _RayContext(hub, index, cache_chunk)
        self.start = ray.get(hub.hello.remote(index, os.getpid(), ray.get_runtime_context().get_node_id()))
        self.task = task
        self.error: BaseException | None = None
        try:
            self.state = task.setup(self.ctx)
        except Exception as exc:  # reported by ready()/run(), so the driver sees the real error
            self.state, self.error = None, exc

    def ready(self) -> int:
        if self.error is not None:
            raise self.error
        return os.getpid()

    def run(self, shard: Any) -> Any:
        if self.error is not None:
            raise self.error
        return self.task.run(self.state, shard, self.ctx)


class _RayContext(WorkerContext):
    def __init__(self, hub: Any, worker: int, cache_chunk: int):
        self.hub = hub
        self.worker = worker
        self.cache_chunk = cache_chunk
        self._store = RemoteStore(hub)

    @property
    def store(self) -> Any:
        return self._store

    def done(self, key: str) -> None:
        self.hub.mark_done.remote([key])

    def wrap(self, backend: Any) -> Any:
        from ..backends.cached import CachedBackend

        return CachedBackend(CountingBackend(backend, self._computing), self._store, chunk=self.cache_chunk)

    def _computing(self, n: int) -> None:
        import ray

        ray.get(self.hub.computing.remote(n))


def _probe(address: str, timeout: float) -> None:
    """Fail fast with a clear error when nothing listens at ``HOST:PORT``."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"Ray address must be HOST:PORT, 'auto' or 'local', got {address!r}")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=min(timeout, 10.0)):
            pass
    except OSError as exc:
        raise ClusterError(f"cannot reach a Ray cluster at {address} ({exc.strerror or exc}); start one with "
                           f"`ray start --head --port={port}`, or leave out the address for a local one") from None


def _reraise_cause(exc: Any) -> None:
    """A worker's own rerankkit error (bad option, missing data) surfaces as itself, not as a Ray error."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, RerankkitError):
        raise cause from None


def _fmt(res: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in res.items()) or "nothing"
