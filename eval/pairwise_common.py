"""Shared helpers of the pairwise/setwise evaluation scripts: DL19 data, nDCG@10, the SmolLM2 backend.

Run the scripts from the repository root with ``PYTHONPATH=$PWD`` and ``RERANKKIT_DATA`` set.
"""

from __future__ import annotations

from typing import Any

from rerankkit.data import load_dataset
from rerankkit.types import Ranking, Run


def load_dl19(depth: int, invert: bool = False, queries: int | None = None) -> tuple[Run, dict[str, dict[str, int]]]:
    """BM25 top-``depth`` candidates of TREC DL19 as a Run (``invert``: each list reversed), and the NIST qrels.

    Scores are ``len - rank`` of the (possibly reversed) order; ``queries``: the first N queries only.
    """
    ds = load_dataset("trec-dl-2019/passage")
    rankings = []
    for r in ds.candidates("bm25").head(queries).top(depth).values():
        docs = [sd.doc for sd in r.docs]
        if invert:
            docs = docs[::-1]
        rankings.append(Ranking.from_order(r.query, docs, list(range(len(docs)))))
    qrels: dict[str, dict[str, int]] = {}
    for q in ds.qrels():
        qrels.setdefault(q.qid, {})[q.docid] = q.relevance
    return Run(rankings), qrels


def ndcg10(run: Run, qrels: dict[str, dict[str, int]]) -> float:
    import ir_measures
    from ir_measures import nDCG

    q = [ir_measures.Qrel(qid, d, g) for qid, docs in qrels.items() if qid in run for d, g in docs.items()]
    return float(ir_measures.calc_aggregate([nDCG @ 10], q, list(run.to_ir_measures()))[nDCG @ 10])


def hf_backend(dtype: str = "bf16", **options: Any) -> Any:
    from rerankkit.backends import create_backend

    return create_backend("hf", "packaged:smollm2-135m-instruct", dtype=dtype, **options)
