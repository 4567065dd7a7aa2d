"""Hostile text through real tokenizers and models: the packaged MiniLM (WordPiece) and tiny random models with
SmolLM2's BPE tokenizer and chat template (causal and seq2seq).

A lone surrogate used to reach the Rust tokenizer and fail with ``TypeError`` (the server's 500); now
the reranker replaces it by U+FFFD and counts it. The random tiny models also generate arbitrary
token soup, so the listwise, setwise, PRP and GroupRank parsers see unplanned replies.
"""

from __future__ import annotations

import pytest
from hostile import count_surrogates, hostile_text, huge_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")

from rerankkit import Doc, Query, Reranker  # noqa: E402

FUZZ = settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                       HealthCheck.function_scoped_fixture])
TINY = [  # (preset, overrides) over the tiny causal model
    ("pointwise-yes-no", {}),
    ("prp-smollm2-135m", {"method": "heapsort", "k": 2, "mode": "generate", "max_new_tokens": 6}),
    ("setwise-smollm2-135m", {"method": "bubblesort", "k": 1}),
    ("listwise-smollm2-135m", {"window": 3, "stride": 2, "max_new_tokens": 12}),
    ("first-smollm2-135m", {"window": 3, "stride": 2}),
    ("grouprank-smollm2-135m", {"group_size": 3, "max_new_tokens": 24}),
]


@pytest.fixture(scope="module")
def minilm():
    try:
        r = Reranker("cosine-minilm")
        r.backend  # noqa: B018 - load now
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"packaged MiniLM not available: {exc}")
    return r


@pytest.fixture(scope="module", params=TINY, ids=[p for p, _ in TINY])
def tiny(request, tiny_causal_dir):
    preset, overrides = request.param
    return Reranker(preset, model=str(tiny_causal_dir), dtype="fp32", backend="hf", **overrides)


@pytest.fixture(scope="module")
def tiny_t5(tiny_seq2seq_dir):
    return Reranker("pointwise-yes-no", model=str(tiny_seq2seq_dir), dtype="fp32", backend="hf")


def check(ranking, query: str, texts: list[str]) -> None:
    assert sorted(ranking.docids, key=int) == [str(i) for i in range(len(texts))]
    assert [sd.doc.text for sd in ranking.docs] == [texts[int(i)] for i in ranking.docids]
    assert ranking.metadata.get("replaced_chars", 0) == count_surrogates(query, *texts)


def test_lone_surrogates_reach_no_tokenizer(minilm, tiny_t5):
    """The reported bug: ``"\\ud800"`` in a document (valid JSON) made the tokenizer raise TypeError."""
    for r in (minilm, tiny_t5):
        texts = ["bm25 \ud800 ranks", "cats", "\udfff\ud800"]
        ranking = r.rerank("what is bm25\udc00", texts)
        check(ranking, "what is bm25\udc00", texts)
        assert ranking.metadata["replaced_chars"] == 4


@FUZZ
@given(query=hostile_text(), texts=st.lists(hostile_text(), min_size=1, max_size=5))
def test_minilm_ranks_hostile_text(minilm, query, texts):
    check(minilm.rerank(query, texts), query, texts)


@FUZZ
@given(query=hostile_text(), texts=st.lists(hostile_text(), min_size=1, max_size=4))
def test_tiny_models_rank_hostile_text(tiny, query, texts):
    check(tiny.rerank(query, texts), query, texts)


@FUZZ
@given(query=hostile_text(), texts=st.lists(hostile_text(), min_size=1, max_size=4))
def test_tiny_seq2seq_ranks_hostile_text(tiny_t5, query, texts):
    check(tiny_t5.rerank(query, texts), query, texts)


@settings(max_examples=1, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                 HealthCheck.function_scoped_fixture])
@given(big=huge_text())
def test_megabyte_texts_are_truncated_not_fatal(minilm, tiny_causal_dir, big):
    pointwise = Reranker("pointwise-yes-no", model=str(tiny_causal_dir), dtype="fp32", backend="hf")
    for r in (minilm, pointwise):
        texts = [big, "short", big[:1000]]
        check(r.rerank(big[:2000], texts), big[:2000], texts)


def test_rerank_many_with_a_real_tokenizer_counts_per_query(minilm):
    items = [(Query("a", "q\ud800"), [Doc("x", "one\udc00\udc01"), Doc("y", "two")]),
             (Query("b", "fine"), [Doc("x", "\x00\x01\u202e"), Doc("y", "")])]
    out = minilm.rerank_many(items)
    assert [r.metadata.get("replaced_chars", 0) for r in out] == [3, 0]
    assert [sorted(r.docids) for r in out] == [["x", "y"], ["x", "y"]]
