"""Shared helpers of the pairwise/setwise evaluation scripts: DL19 data, nDCG@10, a prompt cache.

Run the scripts from the repository root with ``PYTHONPATH=$PWD`` and ``RERANKKIT_DATA`` set.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rerankkit.backends.base import Generation, Prompt, ScoreRequest
from rerankkit.types import Doc, Query, Ranking, Run


def data_dir() -> Path:
    root = os.environ.get("RERANKKIT_DATA", "/work/shared/data")
    return Path(root) / "trec-dl19-passage"


def load_dl19(depth: int, invert: bool = False, queries: int | None = None) -> tuple[Run, dict[str, dict[str, int]]]:
    """BM25 top-``depth`` candidates (RankGPT jsonl) as a Run, and the NIST qrels."""
    rankings = []
    with gzip.open(data_dir() / "bm25_dl19_top100.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            hits = rec["hits"][:depth]
            q = Query(str(hits[0]["qid"]), rec["query"])
            docs = [Doc(str(h["docid"]), h["content"]) for h in hits]
            if invert:
                docs = docs[::-1]
            rankings.append(Ranking.from_order(q, docs, list(range(len(docs)))))
    if queries is not None:
        rankings = rankings[:queries]
    qrels: dict[str, dict[str, int]] = {}
    for line in (data_dir() / "qrels.dl19-passage.txt").read_text().splitlines():
        qid, _, docid, grade = line.split()
        qrels.setdefault(qid, {})[docid] = int(grade)
    return Run(rankings), qrels


def ndcg10(run: Run, qrels: dict[str, dict[str, int]]) -> float:
    import ir_measures
    from ir_measures import nDCG

    q = [ir_measures.Qrel(qid, d, g) for qid, docs in qrels.items() if qid in run for d, g in docs.items()]
    return float(ir_measures.calc_aggregate([nDCG @ 10], q, list(run.to_ir_measures()))[nDCG @ 10])


class CachedBackend:
    """Wraps a backend; a prompt (rendered text + choices, or + max_new_tokens) is computed once.

    Only the evaluation uses it, so that variants that share prompts (every PRP variant asks a subset
    of allpair's prompts) do not pay twice. ``inner.usage`` counts the prompts actually computed.
    """

    def __init__(self, inner: Any):
        self.inner = inner
        self.capabilities = inner.capabilities
        self.usage = inner.usage
        self._scores: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}
        self._gens: dict[tuple[str, int], Generation] = {}
        self.requests = 0

    def __getattr__(self, name: str) -> Any:  # name, model_id, render, truncate, count_tokens, ...
        return getattr(self.inner, name)

    def score(self, requests: Sequence[ScoreRequest]) -> list[np.ndarray]:
        self.requests += len(requests)
        keys = [(self.inner.render(r.prompt), tuple(r.choices)) for r in requests]
        miss = {k: r for k, r in zip(keys, requests) if k not in self._scores}
        if miss:
            for k, out in zip(miss, self.inner.score(list(miss.values()))):
                self._scores[k] = out
        return [self._scores[k] for k in keys]

    def generate(self, prompts: Sequence[Prompt], max_new_tokens: int) -> list[Generation]:
        self.requests += len(prompts)
        keys = [(self.inner.render(p), max_new_tokens) for p in prompts]
        miss = {k: p for k, p in zip(keys, prompts) if k not in self._gens}
        if miss:
            for k, out in zip(miss, self.inner.generate(list(miss.values()), max_new_tokens)):
                self._gens[k] = out
        return [self._gens[k] for k in keys]


def hf_backend(dtype: str = "bf16", **options: Any) -> Any:
    from rerankkit.backends import create_backend

    return create_backend("hf", "packaged:smollm2-135m-instruct", dtype=dtype, **options)
