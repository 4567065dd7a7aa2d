"""E²Rank / plain embedding reranking over fake backends, and the embedding cache."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from rerankkit import ConfigError, Doc, Query, Reranker
from rerankkit.backends.fake import OracleBackend, ScriptedBackend
from rerankkit.embedcache import EmbeddingCache, model_key

DOCS = [Doc(f"d{i}", f"passage number {i} on subject {i % 3}") for i in range(8)]
REL = {d.text: [3, 0, 1, 0, 2, 0, 3, 1][i] for i, d in enumerate(DOCS)}


def hashed(text: str) -> list[float]:
    """A deterministic pseudo-embedding of any text."""
    h = hashlib.sha256(text.encode()).digest()
    return [b / 255.0 - 0.5 for b in h[:16]]


class Recorder(ScriptedBackend):
    def __init__(self):
        super().__init__(embed=hashed)
        self.calls: list[list[str]] = []

    def embed(self, texts):
        self.calls.append(list(texts))
        return super().embed(texts)


@pytest.mark.parametrize("mode", ["listwise", "query"])
def test_oracle_gives_the_ideal_order(mode):
    r = Reranker("e2rank-minilm", backend_instance=OracleBackend(REL), mode=mode, cache="none")
    ranking = r.rerank("what subject", DOCS)
    grades = [REL[d.doc.text] for d in ranking.docs]
    assert grades == sorted(grades, reverse=True)


def test_listwise_prompt_holds_the_first_m_candidates_and_everything_is_one_embed_call():
    backend = Recorder()
    r = Reranker("e2rank-0.6b", backend_instance=backend, prompt_docs=3, cache="none")
    items = [(Query("a", "first query"), DOCS[:5]), (Query("b", "second query"), DOCS[3:])]
    rankings = r.rerank_many(items)
    assert len(backend.calls) == 1
    texts = backend.calls[0]
    prompt_a = next(t for t in texts if "first query" in t)
    expected_list = "\n".join(f"[{k}] {d.text}" for k, d in enumerate(DOCS[:3], start=1))
    assert prompt_a == ("Given a web search query and some relevant documents, rerank the documents that answer "
                        f"the query:\nDocuments:\n{expected_list}\nSearch Query: first query")
    # documents are embedded once each (d3 and d4 are shared by both queries), with the end-of-text suffix
    docs_embedded = [t for t in texts if t.startswith("passage")]
    assert sorted(docs_embedded) == sorted(d.text + "<|endoftext|>" for d in DOCS)
    # scores are the cosine of the prompt and document vectors
    q = np.asarray(hashed(prompt_a))
    for sd in rankings[0].docs:
        v = np.asarray(hashed(sd.doc.text + "<|endoftext|>"))
        assert sd.score == pytest.approx(float(q @ v / np.linalg.norm(q) / np.linalg.norm(v)), abs=1e-5)


def test_query_mode_embeds_the_instructed_query_without_a_chat_prompt():
    backend = Recorder()
    Reranker("e2rank-0.6b", backend_instance=backend, mode="query", cache="none").rerank("capital of china", DOCS[:2])
    assert ("Instruct: Given a web search query, retrieve relevant passages that answer the query\n"
            "Query:capital of china<|endoftext|>") in backend.calls[0]


def test_document_vectors_are_reused_from_the_cache(tmp_path):
    backend = Recorder()
    path = tmp_path / "vectors.sqlite"
    r = Reranker("e2rank-minilm", backend_instance=backend, cache=str(path))
    first = r.rerank("query one", DOCS)
    assert first.metadata["embedding_cached_docs"] == 0
    second = r.rerank("query two", DOCS[2:])
    assert second.metadata["embedding_cached_docs"] == 6
    assert backend.calls[1] == [next(t for t in backend.calls[1] if "query two" in t)]  # only the prompt
    # a fresh process-level cache on the same file still has them
    cache = EmbeddingCache(path)
    got = cache.get(model_key(backend), [d.text for d in DOCS])
    assert all(v is not None for v in got)
    assert np.allclose(got[0], np.asarray(hashed(DOCS[0].text)) / np.linalg.norm(hashed(DOCS[0].text)), atol=1e-6)


def test_cache_is_keyed_by_model_and_settings():
    cache = EmbeddingCache()
    a, b = Recorder(), ScriptedBackend(embed=hashed, model="other")
    cache.put(model_key(a), ["x"], [np.ones(3)])
    assert cache.get(model_key(b), ["x"]) == [None]
    assert cache.get(model_key(a), ["x", "y"])[1] is None and cache.hits == 1 and cache.misses == 2
    small = EmbeddingCache(max_items=2)
    small.put("k", ["1", "2", "3"], np.eye(3))
    assert len(small) == 2 and small.get("k", ["1"]) == [None]


def test_empty_and_whitespace_documents_are_ranked_not_dropped():
    r = Reranker("e2rank-minilm", backend_instance=Recorder(), cache="none")
    ranking = r.rerank("q", ["", "   ", "text"])
    assert sorted(ranking.docids) == ["0", "1", "2"]


def test_bad_params():
    with pytest.raises(ConfigError, match="mode"):
        Reranker("e2rank-minilm", mode="pairwise")
    with pytest.raises(ConfigError, match="prompt_docs"):
        Reranker("e2rank-minilm", prompt_docs=-1)
