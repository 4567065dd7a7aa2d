"""How work is cut into shards: balanced by weight (queries by candidate count), or contiguous."""

from __future__ import annotations

import heapq
from collections.abc import Sequence


def balanced_shards(weights: Sequence[float], n: int) -> list[list[int]]:
    """Indices of ``weights`` split into at most ``n`` shards of near-equal total weight.

    Greedy longest-processing-time: the heaviest item goes to the lightest shard, ties to the
    lowest shard. Every index lands in exactly one shard; each shard lists its indices in input
    order (so a shard's queries keep the run's order), and empty shards are dropped.
    """
    if n < 1:
        raise ValueError(f"need at least one shard, got {n}")
    heap = [(0.0, s) for s in range(n)]
    shards: list[list[int]] = [[] for _ in range(n)]
    for i in sorted(range(len(weights)), key=lambda i: (-float(weights[i]), i)):
        load, s = heapq.heappop(heap)
        shards[s].append(i)
        heapq.heappush(heap, (load + float(weights[i]), s))
    return [sorted(s) for s in shards if s]


def contiguous_shards(n_items: int, size: int) -> list[range]:
    """``range(0, n_items)`` cut into consecutive pieces of at most ``size`` items."""
    if size < 1:
        raise ValueError(f"shard size must be positive, got {size}")
    return [range(i, min(i + size, n_items)) for i in range(0, n_items, size)]
