"""What each route does with a validated body: the batcher calls and the reply in the route's shape."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from ..batching import BatchResult, MicroBatcher
from .config import ServerConfig
from .protocol import build_response, parse_request
from .shapes import parse_score, parse_tei, request_policy, score_items, score_response, tei_response

Handler = Callable[[bytes, bool], Awaitable[tuple[Any, list[BatchResult]]]]


class Handlers:
    """``handle(body, tei) -> (reply body, the batch results it used)`` per route."""

    def __init__(self, batcher: MicroBatcher, strategy: Any, config: ServerConfig) -> None:
        self.batcher = batcher
        self.strategy = strategy
        self.cfg = config

    async def _submit(self, items: list[Any], policy: Any) -> list[BatchResult]:
        return list(await asyncio.gather(*(self.batcher.submit(q, d, policy) for q, d in items)))

    def rerank(self, version: str) -> Handler:
        """Cohere v1/v2, Jina and vLLM's rerank shape (TEI's when ``tei``)."""
        async def handle(raw: bytes, tei: bool = False) -> tuple[Any, list[BatchResult]]:
            if tei:
                return await self.tei(raw)
            job = parse_request(raw, self.cfg)
            policy = request_policy(self.strategy, job.max_tokens_per_doc, job.max_chunks_per_doc,
                                    warnings=job.warnings)
            result = (await self._submit([(job.query, job.docs)], policy))[0]
            counts = {k: int(result.ranking.metadata.get(k, 0)) for k in ("truncated_docs", "chunks", "chunked_docs",
                                                                            "replaced_chars")}
            meta = {"rerankkit": {"batch_requests": result.batch_requests, "queue_ms": round(result.queue_s * 1e3, 2),
                                  "compute_ms": round(result.compute_s * 1e3, 2), **counts}}
            return build_response(job, result.ranking, self.cfg, version, meta, self.strategy.score_scale), [result]
        return handle

    async def tei(self, raw: bytes) -> tuple[Any, list[BatchResult]]:
        job = parse_tei(raw, self.cfg)
        policy = request_policy(self.strategy, keep=job.keep, on_overflow=job.on_overflow)
        result = (await self._submit([(job.query, job.docs)], policy))[0]
        return tei_response(job, result.ranking, self.strategy.score_scale), [result]

    async def score(self, raw: bytes, tei: bool = False) -> tuple[Any, list[BatchResult]]:
        job = parse_score(raw, self.cfg, self.strategy.pointwise_like)
        results = await self._submit(score_items(job), None)
        return score_response(job, [r.ranking for r in results], self.cfg, self.strategy.score_scale), results


def is_tei(raw: bytes) -> bool:
    """Whether a ``/rerank`` body is TEI's shape (``texts``) rather than Cohere's (``documents``)."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and "texts" in data and "documents" not in data
