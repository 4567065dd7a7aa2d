"""Shared helpers of the pairwise/setwise evaluation scripts: DL19 data, nDCG@10, the SmolLM2 backend.

Run the scripts from the repository root with ``PYTHONPATH=$PWD`` and ``RERANKKIT_DATA`` set.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

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


def hf_backend(dtype: str = "bf16", **options: Any) -> Any:
    from rerankkit.backends import create_backend

    return create_backend("hf", "packaged:smollm2-135m-instruct", dtype=dtype, **options)
