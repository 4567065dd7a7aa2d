"""``Reranker.rerank_run(..., executor=...)``: queries sharded by candidate count, lock-step per worker."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .base import Executor, WorkerContext
from .sharding import balanced_shards

if TYPE_CHECKING:
    from ..reranker import Reranker
    from ..spec import RerankerSpec
    from ..types import Doc, Query, Ranking


@dataclass
class RerankTask:
    """Each worker builds the reranker's backend once (behind the run's answer cache) and reranks
    its shard of queries in lock-step. ``local``: a reranker of this process to use as it is."""

    spec: RerankerSpec
    chunk_size: int | None = None
    local: Reranker | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self.spec, "chunk_size": self.chunk_size, "local": None}

    def setup(self, ctx: WorkerContext) -> Reranker:
        if self.local is not None:
            return self.local
        from ..backends import create_backend
        from ..reranker import Reranker

        backend = create_backend(self.spec.backend, self.spec.model, **dict(self.spec.backend_options))
        return Reranker(self.spec, backend_instance=ctx.wrap(backend))

    def run(self, reranker: Reranker, items: Sequence[tuple[Query, Sequence[Doc]]], ctx: WorkerContext
            ) -> tuple[list[Ranking], dict[str, int]]:
        usage = reranker.backend.usage
        before = usage.snapshot()
        out: list[Ranking] = []
        step = self.chunk_size or max(1, len(items))
        for i in range(0, len(items), step):
            part = items[i : i + step]
            out.extend(reranker.rerank_many(part, on_query_done=lambda j, part=part: ctx.done(part[j][0].qid)))
        after = usage.snapshot()
        return out, {k: after[k] - before[k] for k in after}


def rerank_sharded(reranker: Reranker, items: Sequence[tuple[Query, Sequence[Doc]]], executor: Executor,
                   progress: bool = False, chunk_size: int | None = None
                   ) -> tuple[list[Ranking], dict[str, int], dict[str, Any]]:
    """Rerank ``items`` on ``executor``'s workers: (rankings in input order, usage summed, executor stats)."""
    if not items:
        return [], {}, {"executor": executor.name, "shards": 0}
    n = executor.workers_for(len(items))
    shards = balanced_shards([len(docs) for _, docs in items], n)
    task = RerankTask(reranker.spec, chunk_size, reranker if executor.in_process else None)
    cache = None if executor.in_process else reranker.cache  # in this process the reranker has its cache
    res = executor.map(task, [[items[i] for i in shard] for shard in shards], cache=cache, total=len(items),
                       progress=progress, desc="rerank", unit="q")
    rankings: list[Any] = [None] * len(items)
    usage: dict[str, int] = {}
    for shard, (out, used) in zip(shards, res.results):
        for i, ranking in zip(shard, out):
            rankings[i] = ranking
        for k, v in used.items():
            usage[k] = usage.get(k, 0) + v
    stats = dict(res.stats)
    stats["shard_sizes"] = [len(s) for s in shards]
    stats["shard_candidates"] = [sum(len(items[i][1]) for i in s) for s in shards]
    return rankings, usage, stats
