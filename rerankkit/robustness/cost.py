"""How many model calls a study will make, counted by a dry run before any model loads.

The strategy runs every planned (format, order) against a model-free judge that counts the requests, and the
distinct ones: a study runs through the answer cache, so a request asked before (the same prompt in another
order, a shuffle a pointwise reranker cannot notice) is not a model call. The judge is the oracle backend over
seeded random grades of the candidates, one query at a time: consistent, as a model that knows what it prefers,
so sorting strategies swap and move as they would. The dry run is made with two different sets of grades: when
both count the same, the count is exact (the strategy's requests do not depend on the answers: pointwise,
all-pairs PRP, listwise windows, FIRST, embeddings); otherwise (heap sort, sliding and bubble passes) the larger
count is reported as an estimate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backends.base import Generation, Prompt, SamplingArg, ScoreRequest, sampling_list
from ..backends.fake import OracleBackend
from ..types import Doc


class CountingBackend(OracleBackend):
    """The oracle over seeded random grades of ``docs``; counts requests and distinct requests (as the answer
    cache keys them) in ``requests`` and ``keys``, which callers may share between instances."""

    def __init__(self, docs: Sequence[Doc] = (), seed: int = 0, keys: set[tuple[Any, ...]] | None = None,
                 cut: int | None = None):
        grades = {}
        for d in docs:
            grades[d.prompt_text()] = _grade(seed, d.docid)
            if cut is not None:  # the text as a strategy shows it, cut to `cut` words by this backend's truncate
                grades.setdefault(self.truncate(d.prompt_text(), cut), grades[d.prompt_text()])
        super().__init__(grades, model="dry-run")
        self.requests = 0
        self.keys: set[tuple[Any, ...]] = set() if keys is None else keys

    def _count(self, keys: Sequence[tuple[Any, ...]]) -> None:
        self.requests += len(keys)
        self.keys.update(keys)

    def score(self, requests: Sequence[ScoreRequest]) -> list[np.ndarray]:
        self._count([("score", self.render(r.prompt), tuple(r.choices)) for r in requests])
        return super().score(requests)

    def generate(self, prompts: Sequence[Prompt], max_new_tokens: int, sampling: SamplingArg = None) -> list[Generation]:
        samplings = sampling_list(sampling, len(prompts))
        self._count([("generate", self.render(p), max_new_tokens, repr(s)) for p, s in zip(prompts, samplings)])
        return super().generate(prompts, max_new_tokens, sampling)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self._count([("embed", t) for t in texts])
        return super().embed(texts)


def _grade(seed: int, docid: str) -> float:
    h = hashlib.sha256(f"rerankkit-dry-run\0{seed}\0{docid}".encode()).digest()
    return 3.0 * int.from_bytes(h[:8], "little") / 2**64


@dataclass
class CostEstimate:
    """Requests per planned run, and the model calls the whole study makes with an empty cache."""

    strategy: str
    rows: list[dict[str, Any]] = field(default_factory=list)  # label, requests, new (distinct, not asked before)
    requests: int = 0
    model_calls: int = 0
    exact: bool = True

    def describe(self) -> str:
        how = "exact" if self.exact else "estimated: which comparisons this strategy makes depends on the answers"
        return (f"{self.model_calls} model calls ({self.requests} requests; the rest are repeats the answer cache "
                f"answers) for strategy {self.strategy!r} ({how})")


__all__ = ["CostEstimate", "CountingBackend"]
