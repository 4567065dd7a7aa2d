"""Executors: where the work that parallelises runs (this process, or Ray actors across a cluster).

``Reranker.rerank_run(run, executor=RayExecutor())``, ``Retriever.index(corpus, executor=...)`` (dense),
``run_bench(..., executor=...)`` and the ``--ray [ADDRESS]`` option of ``rerankkit rerank|bench|index``.
Ray is imported only when a :class:`RayExecutor` connects (extra ``ray``).
"""

from __future__ import annotations

from typing import Any

from .base import Executor, MapResult, WorkerContext, WorkerTask
from .local import LocalExecutor
from .raycluster import RayExecutor
from .sharding import balanced_shards, contiguous_shards


def ray_executor_from_args(address: str | None, options: dict[str, str] | None = None) -> RayExecutor:
    """A :class:`RayExecutor` from ``--ray [ADDRESS]`` and ``--ray-set KEY=VALUE`` strings.

    Keys are :class:`RayExecutor`'s keyword arguments (typed by their defaults);
    ``resources.NAME=AMOUNT`` adds a custom Ray resource per actor.
    """
    import inspect

    from ..errors import ConfigError

    params = {n: p for n, p in inspect.signature(RayExecutor.__init__).parameters.items()
              if p.kind is inspect.Parameter.KEYWORD_ONLY and n not in ("resources", "runtime_env")}
    typed: dict[str, Any] = {}
    for key, value in (options or {}).items():
        if key.startswith("resources."):
            kind, name = float, key
        elif key in params:
            default = params[key].default
            kind, name = (int if key == "workers" else type(default)), key
        else:
            raise ConfigError(f"unknown Ray option {key!r}; known: {', '.join([*params, 'resources.NAME'])}")
        try:
            v = kind(value)
        except ValueError:
            raise ConfigError(f"Ray option {key}: cannot read {value!r} as {kind.__name__}") from None
        if name.startswith("resources."):
            typed.setdefault("resources", {})[name.removeprefix("resources.")] = v
        else:
            typed[name] = v
    return RayExecutor(address, **typed)


__all__ = ["Executor", "LocalExecutor", "MapResult", "RayExecutor", "WorkerContext", "WorkerTask",
           "balanced_shards", "contiguous_shards", "ray_executor_from_args"]
