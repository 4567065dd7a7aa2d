"""Hostile queries and documents through the Python API, every strategy, over the model-free random backend.

The property: ``rerank`` / ``rerank_many`` / ``rerank_run`` return a full permutation of the input (with
lone surrogates replaced and counted in ``replaced_chars``), or raise a typed :class:`RerankkitError`
(only for duplicate ids here) — never an exception from a dependency. The random backend answers every
prompt with pseudo-random scores, permutations and embeddings, so parsers see unplanned replies too.
The same property with real tokenizers is in ``tests/models/test_hostile_tokenizers.py``.
"""

from __future__ import annotations

import pytest
from hostile import count_surrogates, hostile_docid, hostile_text, huge_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerankkit import Doc, InputError, Query, Reranker
from rerankkit.backends.fake import RandomBackend
from rerankkit.types import Ranking, Run, ScoredDoc

CONFIGS = [
    ("pointwise-yes-no", {}),
    ("pointwise-graded", {}),
    ("prp-smollm2-135m", {"method": "allpair"}),
    ("prp-smollm2-135m", {"method": "heapsort", "k": 3}),
    ("prp-smollm2-135m", {"method": "sliding", "k": 2, "mode": "generate"}),
    ("setwise-smollm2-135m", {"method": "heapsort", "k": 3}),
    ("setwise-smollm2-135m", {"method": "bubblesort", "k": 2, "mode": "generate"}),
    ("listwise-smollm2-135m", {"window": 4, "stride": 2}),
    ("first-smollm2-135m", {"window": 4, "stride": 2}),
    ("grouprank-smollm2-135m", {"group_size": 3}),
    ("e2rank-minilm", {}),
    ("cosine-minilm", {}),
]
IDS = [f"{p}{'-' + '-'.join(f'{k}={v}' for k, v in o.items()) if o else ''}" for p, o in CONFIGS]
FUZZ = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module", params=CONFIGS, ids=IDS)
def reranker(request):
    preset, overrides = request.param
    return Reranker(preset, backend_instance=RandomBackend(seed=7), **overrides)


def assert_permutation(ranking: Ranking, docs: list[Doc], query_text: str, same: bool = False) -> None:
    assert sorted(ranking.docids) == sorted(d.docid for d in docs)
    by_id = {d.docid: d for d in docs}
    assert all(sd.doc == by_id[sd.docid] for sd in ranking.docs)  # unrepaired texts come back
    if same:  # the caller's own objects
        assert all(sd.doc is by_id[sd.docid] for sd in ranking.docs)
    assert ranking.query.text == query_text
    want = count_surrogates(query_text, *(d.text for d in docs), *(d.title for d in docs))
    assert ranking.metadata.get("replaced_chars", 0) == want


@FUZZ
@given(query=hostile_text(), texts=st.lists(hostile_text(), max_size=7))
def test_rerank_strings_gives_a_full_permutation(reranker, query, texts):
    ranking = reranker.rerank(query, texts)
    assert_permutation(ranking, [Doc(str(i), t) for i, t in enumerate(texts)], query)
    assert [sd.doc.text for sd in ranking.docs] == [texts[int(i)] for i in ranking.docids]


@FUZZ
@given(query=hostile_text(), fields=st.lists(st.tuples(hostile_docid(), hostile_text(), hostile_text(max_size=20)),
                                              max_size=7))
def test_rerank_docs_with_hostile_ids_titles_and_duplicates(reranker, query, fields):
    docs = [Doc(*f) for f in fields]
    ids = [d.docid for d in docs]
    if len(set(ids)) < len(ids):
        with pytest.raises(InputError, match="duplicate document id"):
            reranker.rerank(Query("q", query), docs)
        return
    assert_permutation(reranker.rerank(Query("q", query), docs), docs, query, same=True)


@FUZZ
@given(items=st.lists(st.tuples(hostile_text(), st.lists(hostile_text(), max_size=5)), min_size=1, max_size=4))
def test_rerank_many_keeps_every_item_apart(reranker, items):
    pairs = [(Query(f"q{n}", q), [Doc(f"d{i}", t) for i, t in enumerate(ts)]) for n, (q, ts) in enumerate(items)]
    rankings = reranker.rerank_many(pairs)
    assert len(rankings) == len(pairs)
    for ranking, (q, docs) in zip(rankings, pairs):
        assert ranking.query.qid == q.qid
        assert_permutation(ranking, docs, q.text)


@FUZZ
@given(items=st.lists(st.tuples(hostile_text(), st.lists(hostile_text(), max_size=6)), min_size=1, max_size=3),
       depth=st.one_of(st.none(), st.integers(0, 7)), top_k=st.one_of(st.none(), st.integers(1, 7)))
def test_rerank_run_is_a_permutation_of_each_input_ranking(reranker, items, depth, top_k):
    run = Run([Ranking(Query(f"q{n}", q), tuple(ScoredDoc(Doc(f"d{i}", t), -float(i)) for i, t in enumerate(ts)))
               for n, (q, ts) in enumerate(items)])
    out = reranker.rerank_run(run, depth=depth, top_k=top_k)
    assert list(out) == list(run)
    for qid, before in run.items():
        after = out[qid]
        assert after.docids == (after.docids[:top_k] if top_k else after.docids)
        if top_k is None:
            assert sorted(after.docids) == sorted(before.docids)
        else:
            assert len(after) == min(top_k, len(before)) and set(after.docids) <= set(before.docids)
        if depth is not None:  # below the depth, the input order is kept
            tail = [d for d in before.docids[depth:]]
            assert [d for d in after.docids if d in tail] == tail[: len([d for d in after.docids if d in tail])]
    replaced = sum(count_surrogates(q, *ts[:depth]) if depth is not None else count_surrogates(q, *ts)
                   for q, ts in items)
    assert out.metadata["totals"].get("replaced_chars", 0) == replaced


@pytest.mark.parametrize("preset", ["pointwise-yes-no", "prp-smollm2-135m", "listwise-smollm2-135m",
                                    "grouprank-smollm2-135m", "e2rank-minilm"])
@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(big=huge_text(), small=hostile_text())
def test_megabyte_documents_and_queries(preset, big, small):
    reranker = Reranker(preset, backend_instance=RandomBackend(seed=7))
    ranking = reranker.rerank(big[:4000], [big, small, big[: len(big) // 2]])
    assert sorted(ranking.docids) == ["0", "1", "2"]
    assert ranking.metadata.get("replaced_chars", 0) == count_surrogates(big[:4000], big, small, big[: len(big) // 2])
