"""PromptReps sparse term selection and the hybrid index, on hand-made vectors (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from rerankkit import CapabilityError, ConfigError
from rerankkit.reps.encoder import Reps
from rerankkit.reps.index import PromptRepsIndex, _fuse
from rerankkit.reps.sparse import TermSelector, sparse_rows, term_weights, text_words

pytest.importorskip("scipy")


class WordTokenizer:
    """word -> ids: one id per character (a stand-in with multi-token words)."""

    def __call__(self, words, add_special_tokens=False):
        return {"input_ids": [[ord(c) - ord("a") for c in w if c.isalpha()] for w in words]}


def test_text_words_lowercases_and_drops_stopwords_and_punctuation():
    assert text_words("The Cat, the HAT; and it's a cat's life!") == ["cat", "hat", "cat's", "life"]
    assert text_words("") == [] and text_words("of the and ... !!") == []


def test_text_mode_keeps_only_the_texts_own_tokens_best_first_quantised():
    w = np.zeros(26, dtype=np.float32)
    w[[0, 1, 2, 25]] = [0.5, 2.0, 0.004, 9.0]  # z (25) is the best token overall but not in the text
    sel = TermSelector(WordTokenizer(), "text", max_terms=2)
    ids, vals = sel.select("Cab", w)  # words: cab -> ids c=2, a=0, b=1
    assert ids.tolist() == [1, 0] and vals.tolist() == [200.0, 50.0]
    ids, _ = TermSelector(WordTokenizer(), "text", max_terms=5).select("cab", w)
    assert ids.tolist() == [1, 0]  # c rounds to weight 0 and is dropped


def test_a_text_without_words_falls_back_to_the_vocabulary():
    w = np.linspace(0, 1, 26, dtype=np.float32)
    sel = TermSelector(WordTokenizer(), "text", max_terms=4, fallback_terms=3)
    ids, vals = sel.select("", w)
    assert ids.tolist() == [25, 24, 23] and sel.fallbacks == 1
    ids, _ = sel.select("the of and", w)
    assert ids.tolist() == [25, 24, 23] and sel.fallbacks == 2
    ids, vals = sel.select("", np.zeros(26, dtype=np.float32))  # even all-zero weights give one term
    assert len(ids) == 1 and vals.tolist() == [1.0]


def test_top_mode_and_bad_settings():
    w = np.arange(26, dtype=np.float32) / 10
    ids, _ = TermSelector(None, "top", max_terms=3).select("anything", w)
    assert ids.tolist() == [25, 24, 23]
    with pytest.raises(ConfigError):
        TermSelector(None, "bag")
    with pytest.raises(CapabilityError):
        TermSelector(None, "text")


def test_term_weights():
    assert np.allclose(term_weights(np.array([-3.0, 0.0, np.e - 1])), [0.0, 0.0, 1.0])


def reps(dense, rows, vocab=8):
    d = np.asarray(dense, dtype=np.float32)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return Reps(d, sparse_rows([(np.array(i, dtype=np.int64), np.array(v, dtype=np.float32)) for i, v in rows],
                               vocab))


def test_dense_sparse_and_hybrid_search_and_save_load(tmp_path):
    pytest.importorskip("faiss")
    docs = reps([[1, 0], [0.8, 0.6], [0, 1], [-1, 0]], [([0, 1], [3, 1]), ([1], [5]), ([2], [2]), ([], [])])
    index = PromptRepsIndex.from_reps(docs)
    q = reps([[1, 0.1]], [([1, 2], [1, 1])])
    assert [i for i, _ in index.dense_search(q, 4)[0]] == [0, 1, 2, 3]
    sparse = index.sparse_search(q, 10)[0]
    assert sparse == [(1, 5.0), (2, 2.0), (0, 1.0)]  # doc 3 shares no term: not retrieved
    hybrid = index.search(q, 4, "hybrid", alpha=0.5)[0]
    d = dict(index.dense_search(q, 4)[0])
    dn = {i: (s - min(d.values())) / (max(d.values()) - min(d.values())) for i, s in d.items()}
    sn = {1: 1.0, 2: 0.25, 0: 0.0}
    expected = sorted(((i, 0.5 * dn[i] + 0.5 * sn.get(i, 0.0)) for i in range(4)), key=lambda x: -x[1])
    assert [i for i, _ in hybrid] == [i for i, _ in expected]
    assert [s for _, s in hybrid] == pytest.approx([s for _, s in expected])
    index.save(tmp_path / "idx")
    again = PromptRepsIndex.load(tmp_path / "idx")
    assert again.search(q, 4, "hybrid") == index.search(q, 4, "hybrid")
    with pytest.raises(ConfigError):
        index.search(q, 4, "colbert")


def test_fuse_counts_a_missing_side_as_zero():
    fused = _fuse([(0, 2.0), (1, 1.0)], [(2, 7.0), (1, 3.0)], 0.7, 10)
    assert dict(fused) == pytest.approx({0: 0.7, 1: 0.0, 2: 0.3})
