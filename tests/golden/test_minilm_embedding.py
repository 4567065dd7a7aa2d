"""all-MiniLM-L6-v2 through the hf backend equals sentence-transformers' own encode; E²Rank-MiniLM runs."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

pytest.importorskip("torch")
st = pytest.importorskip("sentence_transformers")

from rerankkit import Doc, Query, Reranker  # noqa: E402
from rerankkit.backends.hf import HFBackend  # noqa: E402
from rerankkit.models import packaged_path  # noqa: E402


@pytest.fixture(scope="module")
def dl19(data_root):
    with gzip.open(data_root / "trec-dl19-passage" / "bm25_dl19_top100.jsonl.gz", "rt") as f:
        return json.loads(f.readline())


@pytest.fixture(scope="module")
def minilm():
    try:
        path = packaged_path("all-minilm-l6-v2")
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"packaged MiniLM not installed: {exc}")
    return path


@pytest.fixture(scope="module")
def st_model(minilm):
    return st.SentenceTransformer(str(minilm), device="cpu")


def test_hf_backend_matches_sentence_transformers(dl19, st_model):
    texts = [h["content"] for h in dl19["hits"][:24]]
    texts += [" ".join(["longword"] * 400), "", "a"]  # past the 256-token window, empty, one token
    reference = st_model.encode(texts, normalize_embeddings=True)
    be = HFBackend("packaged:all-minilm-l6-v2", dtype="fp32", batch_size=8)
    assert be.pooling == "mean" and be.embed_max_length == 256
    ours = be.embed(texts)
    assert np.abs(ours - reference).max() < 1e-5


def test_e2rank_minilm_on_a_dl19_query(dl19, st_model):
    docs = [Doc(h["docid"], h["content"]) for h in dl19["hits"][:30]]
    q = Query(str(dl19["hits"][0]["qid"]), dl19["query"])
    r = Reranker("e2rank-minilm", batch_size=16, dtype="fp32")  # exact comparison: fp32
    ranking = r.rerank_many([(q, docs)])[0]
    assert sorted(ranking.docids) == sorted(d.docid for d in docs)
    plain = Reranker("cosine-minilm", backend_instance=r.backend).rerank_many([(q, docs)])[0]
    qv = st_model.encode([dl19["query"]], normalize_embeddings=True)[0]
    dv = st_model.encode([d.text for d in docs], normalize_embeddings=True)
    expected = sorted(zip(docs, dv @ qv), key=lambda x: -x[1])
    assert plain.docids == [d.docid for d, _ in expected]  # plain cosine = sentence-transformers ranking
    assert ranking.docids != plain.docids  # the listwise prompt changes the query vector
