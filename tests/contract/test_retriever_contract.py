"""One contract, every engine: bm25s, Lucene (Anserini) and dense (packaged MiniLM) on a small corpus."""

from __future__ import annotations

import pytest

from rerankkit import Doc, Query, Run
from rerankkit.errors import DataNotFoundError, MissingExtraError
from rerankkit.retrievers import Retriever, RetrieverProtocol

CORPUS = [
    Doc("bm25", "Okapi BM25 ranks documents by term frequency, inverse document frequency and length.", "BM25"),
    Doc("dogs", "Dogs bark at strangers and love to play fetch in the park.", "Dogs"),
    Doc("cats", "Cats purr when they are content and often sleep most of the day.", "Cats"),
    Doc("doc with space", "The Eiffel Tower in Paris was completed in 1889.", "Eiffel Tower"),
    Doc("café-ü", "Espresso is brewed by forcing hot water through finely ground coffee beans.", "Café"),
    Doc("rain", "Rain forms when water vapour condenses into droplets heavy enough to fall.", "Rain"),
    Doc("volcano", "Volcanoes erupt when magma rises through the crust to the surface.", ""),
    Doc("python", "Python is a programming language that emphasises readable code.", "Python"),
]
QUERIES = [
    Query("1", "which animal barks at strangers"),
    Query("2", "when was the Eiffel Tower completed"),
    Query("3", "how is espresso coffee brewed"),
    Query("4", "magma eruption"),
    Query("5", ""),
]
EXPECTED_TOP = {"1": "dogs", "2": "doc with space", "3": "café-ü", "4": "volcano"}
ENGINES = ["bm25", "bm25-lucene", "dense-minilm"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("retriever-contract")


@pytest.fixture(scope="module", params=ENGINES)
def indexed(request, cache):
    try:
        r = Retriever(request.param, cache_dir=cache)
        info = r.index(CORPUS)
    except (MissingExtraError, DataNotFoundError) as exc:
        pytest.skip(f"{request.param} is not available here: {exc}")
    run = r.search(QUERIES, k=3)
    yield r, info, run
    r.close()


def test_it_is_a_retriever(indexed):
    r, _, _ = indexed
    assert isinstance(r, RetrieverProtocol)


def test_rankings_are_well_formed_and_carry_texts(indexed):
    _, _, run = indexed
    assert isinstance(run, Run) and list(run) == [q.qid for q in QUERIES]
    by_id = {d.docid: d for d in CORPUS}
    for qid, ranking in run.items():
        assert len(ranking) <= 3
        scores = [d.score for d in ranking.docs]
        assert scores == sorted(scores, reverse=True), qid
        assert len(set(ranking.docids)) == len(ranking.docids)
        for sd in ranking.docs:
            assert sd.doc == by_id[sd.docid]  # id, title and text exactly as indexed
    assert len(run["5"]) == 0  # empty query -> empty ranking
    assert run.metadata["n_queries"] == 5 and run.metadata["empty_queries"] == 1


def test_obvious_queries_find_their_document(indexed):
    _, _, run = indexed
    for qid, docid in EXPECTED_TOP.items():
        assert run[qid].docids[0] == docid, (qid, run[qid].docids)


def test_search_is_deterministic_and_the_index_is_reused(indexed, cache):
    r, info, run = indexed
    again = Retriever(r.spec.name, cache_dir=cache)
    info2 = again.index(CORPUS)
    assert info2.reused and info2.path == info.path
    run2 = again.search(QUERIES, k=3)
    for qid in run:
        assert run2[qid].docids == run[qid].docids
        assert [d.score for d in run2[qid].docs] == pytest.approx([d.score for d in run[qid].docs], rel=1e-5)


def test_k_beyond_the_corpus_returns_all_it_scores(indexed):
    r, _, _ = indexed
    ranking = r.retrieve("water", k=1000)
    assert 0 < len(ranking) <= len(CORPUS)
    if r.spec.engine == "dense":
        assert len(ranking) == len(CORPUS)
    else:  # lexical engines return the documents that contain the term
        assert set(ranking.docids) == {"café-ü", "rain"}
