"""Long documents as overlapping chunks (max / first / mean) and per-request document policies, over
scripted backends whose scores are known functions of the text they see."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

from rerankkit import ConfigError, Doc, InputError, Query, Reranker
from rerankkit.backends.fake import ScriptedBackend
from rerankkit.strategies.chunking import DocPolicy, _windows, spans_of


def gold_score(text: str, choices: tuple[str, ...]) -> list[float]:
    """Log-probs with log-odds 2 * (occurrences of 'gold' in the document part of the prompt)."""
    doc = text.split("Passage:", 1)[1].split("\nQuery:", 1)[0]
    v = float(doc.count("gold"))
    return [v if c.strip().lower() == "yes" else -v for c in choices]


def pointwise(**kw) -> tuple[Reranker, ScriptedBackend]:
    backend = ScriptedBackend(score=gold_score)
    return Reranker("pointwise-yes-no", backend_instance=backend, **kw), backend


def words(n: int, start: int = 0) -> str:
    return " ".join(f"w{i}" for i in range(start, start + n))


LATE_GOLD = words(100) + " gold gold"  # the evidence is past the first 50 words
EARLY_GOLD = "gold " + words(30)
NOTHING = words(120)


def test_max_finds_evidence_that_truncation_cuts_off():
    cut, _ = pointwise(max_doc_tokens=50)
    ranked = cut.rerank("q", [NOTHING, LATE_GOLD, EARLY_GOLD])
    assert ranked.docids[0] == "2" and ranked.metadata["truncated_docs"] == 2  # LATE_GOLD lost its gold

    chunked, backend = pointwise(max_doc_tokens=50, chunking="max", chunk_overlap=10)
    ranked = chunked.rerank("q", [NOTHING, LATE_GOLD, EARLY_GOLD])
    assert ranked.docids == ["1", "2", "0"]  # two golds beat one
    assert [d.score for d in ranked.docs] == pytest.approx([4.0, 2.0, 0.0])
    # 120 words in windows of 50 stepping 40: 3 windows; 102 words: 3; 31 words: 1
    assert ranked.metadata["chunks"] == 7 and ranked.metadata["chunked_docs"] == 2
    assert ranked.metadata["truncated_docs"] == 0 and ranked.metadata["model_calls"] == 7
    assert len(backend.seen) == 7


def test_first_is_truncation_and_mean_averages():
    cut, _ = pointwise(max_doc_tokens=50)
    first, _ = pointwise(max_doc_tokens=50, chunking="first")
    docs = [NOTHING, LATE_GOLD, EARLY_GOLD]
    a, b = cut.rerank("q", docs), first.rerank("q", docs)
    assert a.docids == b.docids and [d.score for d in a.docs] == [d.score for d in b.docs]
    assert b.metadata["chunks"] == 3 and b.metadata["truncated_docs"] == 2

    mean, _ = pointwise(chunking="mean", chunk_tokens=40, chunk_overlap=0)
    doc = words(40) + " gold gold gold " + words(77)  # windows of 40: [none], [3 gold], [none]
    ranked = mean.rerank("q", [doc, "gold"])
    assert {d.docid: d.score for d in ranked.docs} == pytest.approx({"0": 2 * 3 / 3, "1": 2.0})


def test_max_chunks_counts_the_unread_rest_as_truncated():
    r, _ = pointwise(chunking="max", chunk_tokens=20, chunk_overlap=0, max_chunks=2)
    ranked = r.rerank("q", [words(100) + " gold", words(10)])
    assert ranked.metadata["chunks"] == 3 and ranked.metadata["truncated_docs"] == 1
    assert ranked.docs[0].score == 0.0  # the gold was in the fifth window, never read


def test_windows_are_exact_overlapping_substrings_covering_the_text():
    text = "  Alpha beta\tgamma\n\ndelta  epsilon zeta eta theta iota kappa  "
    spans = spans_of(ScriptedBackend(score=gold_score), text)
    wins = _windows(spans, 4, 3)
    pieces = [text[w[0][0]: w[-1][1]] for w in wins]
    assert pieces[0] == "Alpha beta\tgamma\n\ndelta" and all(p in text for p in pieces)
    assert [len(w) for w in wins] == [4, 4, 4]  # strides of 3 over 10 words: 0-3, 3-6, 6-9
    covered = {s for w in wins for s in w}
    assert covered == set(spans)


def test_titles_repeat_in_every_window_and_every_document_comes_back():
    r, backend = pointwise(chunking="max", chunk_tokens=20, chunk_overlap=5)
    docs = [Doc("a", words(50), title="Title A"), Doc("b", "gold"), Doc("c", "")]
    ranked = r.rerank("q", docs)
    assert sorted(ranked.docids) == ["a", "b", "c"] and ranked.docids[0] == "b"
    assert sum("Title A:" in s for s in backend.seen) == ranked.metadata["chunks"] - 2


def test_strategies_that_do_not_score_one_by_one_refuse_chunking():
    r = Reranker("listwise-smollm2-135m", backend_instance=ScriptedBackend(generate=lambda t: "[1] > [2]"))
    with pytest.raises(ConfigError, match="cannot score them in chunks"):
        r.rerank_many([(Query("q", "x"), [Doc("1", "a"), Doc("2", "b")])], policies=[DocPolicy("max")])
    with pytest.raises(ConfigError, match="mode='query'"):
        Reranker("e2rank-minilm", backend_instance=ScriptedBackend(embed=lambda t: [1.0, 0.0]), chunking="max")
    with pytest.raises(ConfigError, match="chunking must be one of"):
        pointwise(chunking="maximum")
    with pytest.raises(ConfigError, match="smaller than chunk_tokens"):
        pointwise(chunking="max", chunk_tokens=10, chunk_overlap=10)


def test_embedding_query_mode_chunks_take_the_best_cosine():
    def vec(text: str) -> list[float]:
        return [1.0, 0.0] if "gold" in text else [0.0, 1.0]

    r = Reranker("cosine-minilm", backend_instance=ScriptedBackend(embed=vec), chunking="max", chunk_tokens=30)
    ranked = r.rerank("gold", [words(100) + " gold", words(100)])
    assert ranked.docids == ["0", "1"] and ranked.docs[0].score == pytest.approx(1.0)
    assert ranked.metadata["chunked_docs"] == 2


def test_request_policies_cut_keep_the_tail_or_refuse():
    r, _ = pointwise()
    q = Query("q", "x")
    docs = [Doc("0", LATE_GOLD), Doc("1", EARLY_GOLD)]
    head, tail = r.rerank_many([(q, docs), (q, docs)], policies=[DocPolicy(max_doc_tokens=20),
                                                                 DocPolicy(max_doc_tokens=20, keep="tail")])
    assert head.docids == ["1", "0"] and head.metadata["truncated_docs"] == 2
    assert tail.docids == ["0", "1"] and {d.docid: d.score for d in tail.docs}["0"] == pytest.approx(4.0)
    short, _ = pointwise(max_doc_tokens=50)
    with pytest.raises(InputError, match="reads at most 50"):
        short.rerank_many([(q, docs)], policies=[DocPolicy(on_overflow="error")])
    ok = short.rerank_many([(q, [Doc("1", EARLY_GOLD)])], policies=[DocPolicy(on_overflow="error")])
    assert ok[0].metadata["truncated_docs"] == 0


def test_async_chunked_equals_sync():
    r, _ = pointwise(chunking="max", chunk_tokens=30)
    docs = [NOTHING, LATE_GOLD, EARLY_GOLD]
    sync = r.rerank("q", docs)
    got = asyncio.run(r.arerank("q", docs))
    assert got.docids == sync.docids and [d.score for d in got.docs] == [d.score for d in sync.docs]
    r.close()


def test_crossencoder_strategy_activation_and_budget():
    def rel(q: str, d: str) -> float:
        return 3.0 * d.count("gold") - 1.0

    for activation, expect in (("none", [5.0, -1.0]), ("sigmoid", [1 / (1 + math.exp(-5)), 1 / (1 + math.exp(1))])):
        r = Reranker("cross-encoder", backend_instance=ScriptedBackend(relevance=rel), activation=activation)
        ranked = r.rerank("q", ["nothing", "gold gold"])
        assert ranked.docids == ["1", "0"] and np.allclose([d.score for d in ranked.docs], expect)
    r = Reranker("cross-encoder", backend_instance=ScriptedBackend(relevance=rel), chunking="max")
    with pytest.raises(ConfigError, match="give chunk_tokens"):
        r.rerank("q", ["a b c"])  # the scripted backend knows no input limit, and none was given
    r = Reranker("cross-encoder", backend_instance=ScriptedBackend(relevance=rel), chunking="max", chunk_tokens=10)
    assert r.rerank("q", [words(40) + " gold", words(40)]).docids == ["0", "1"]
