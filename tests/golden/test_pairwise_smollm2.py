"""PRP and setwise with the real SmolLM2-135M-Instruct on two DL19 queries (small: a few dozen prompts)."""

from __future__ import annotations

import gzip
import json

import pytest

from rerankkit.reranker import Reranker
from rerankkit.types import Doc, Query

pytestmark = [pytest.mark.golden, pytest.mark.slow]


@pytest.fixture(scope="module")
def items(data_root):
    out = []
    with gzip.open(data_root / "trec-dl19-passage" / "bm25_dl19_top100.jsonl.gz", "rt") as f:
        for line in f:
            rec = json.loads(line)
            hits = rec["hits"][:5]
            out.append((Query(str(hits[0]["qid"]), rec["query"]), [Doc(h["docid"], h["content"]) for h in hits]))
            if len(out) == 2:
                return out
    return out


@pytest.fixture(scope="module")
def backend(smollm2_dir):
    from rerankkit.backends import create_backend

    return create_backend("hf", str(smollm2_dir), dtype="fp32", device="cpu")


@pytest.mark.parametrize("preset,method", [("prp-smollm2-135m", "sliding"), ("setwise-smollm2-135m", "heapsort")])
def test_real_model_lockstep_matches_single_queries(items, backend, preset, method):
    reranker = Reranker(preset, backend_instance=backend, method=method, k=3)
    together = reranker.rerank_many(items)
    alone = [reranker.rerank_many([it])[0] for it in items]
    for (_, docs), a, b in zip(items, together, alone):
        assert sorted(a.docids) == sorted(d.docid for d in docs)
        assert a.docids == b.docids  # fp32: batching other queries alongside must not change answers
        assert a.metadata["model_calls"] == b.metadata["model_calls"]
    if preset.startswith("prp"):
        assert all(r.metadata["model_calls"] <= 2 * 3 * 4 for r in together)  # sliding-3 over 5: <= 2k(n-1)
