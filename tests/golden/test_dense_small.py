"""Dense engine options with the packaged all-MiniLM-L6-v2 on a small corpus: HNSW, prefixes, folders."""

from __future__ import annotations

import numpy as np
import pytest

from rerankkit import Doc
from rerankkit.errors import DataNotFoundError
from rerankkit.retrievers import Retriever
from rerankkit.retrievers.dense import resolve_model

pytestmark = pytest.mark.golden
pytest.importorskip("faiss")
pytest.importorskip("sentence_transformers")

DOCS = [Doc(f"d{i}", t) for i, t in enumerate([
    "The mitochondria is the powerhouse of the cell.", "Paris is the capital of France.",
    "Photosynthesis converts light into chemical energy.", "The Great Wall of China is very long.",
    "Jupiter is the largest planet in the solar system.", "Insulin regulates blood sugar levels.",
    "Mount Everest is the highest mountain on Earth.", "Honey bees pollinate flowering plants.",
])]
QUERIES = ["what produces energy in cells", "capital city of France", "biggest planet", "blood glucose hormone"]


@pytest.fixture(scope="module")
def model_dir() -> str:
    try:
        return resolve_model("packaged:all-minilm-l6-v2")
    except DataNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("dense-small")


def test_hnsw_agrees_with_exact_search_and_gets_its_own_index(model_dir, cache):
    flat, hnsw = Retriever("dense-minilm", cache_dir=cache), Retriever("dense-minilm", cache_dir=cache, index="hnsw")
    fi, hi = flat.index(DOCS), hnsw.index(DOCS)
    assert fi.path != hi.path
    a, b = flat.search(QUERIES, k=8), hnsw.search(QUERIES, k=8)
    for q in a:
        assert b[q].docids == a[q].docids
        assert [d.score for d in b[q].docs] == pytest.approx([d.score for d in a[q].docs], abs=1e-5)
    assert [a[q].docids[0] for q in a] == ["d0", "d1", "d4", "d5"]


def test_scores_are_cosines_of_the_plain_model(model_dir, cache):
    from sentence_transformers import SentenceTransformer

    r = Retriever("dense-minilm", cache_dir=cache)
    r.index(DOCS)
    run = r.search(QUERIES[:1], k=3)
    m = SentenceTransformer(model_dir, device="cpu")
    q = m.encode(QUERIES[:1], normalize_embeddings=True)
    d = m.encode([x.text for x in DOCS], normalize_embeddings=True)
    cos = (q @ d.T)[0]
    want = np.argsort(-cos)[:3]
    assert run["q0"].docids == [f"d{i}" for i in want]
    assert [s.score for s in run["q0"].docs] == pytest.approx(cos[want].tolist(), abs=1e-5)


def test_a_model_folder_with_prefixes_is_a_different_index_and_query(model_dir, cache):
    plain = Retriever("dense", model=model_dir, cache_dir=cache)
    prefixed = Retriever("dense", model=model_dir, cache_dir=cache, query_prefix="query: ", passage_prefix="passage: ")
    assert plain.index(DOCS).path != prefixed.index(DOCS).path
    s1 = [d.score for d in plain.search(QUERIES[:1], k=3)["q0"].docs]
    s2 = [d.score for d in prefixed.search(QUERIES[:1], k=3)["q0"].docs]
    assert s1 != pytest.approx(s2, abs=1e-4)  # the prefixes reach the encoder
    only_query = Retriever("dense", model=model_dir, cache_dir=cache, query_prefix="query: ")
    assert only_query.index(DOCS).reused  # a query prefix does not change the document vectors
