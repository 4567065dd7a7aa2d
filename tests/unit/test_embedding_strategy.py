"""E²Rank / plain embedding reranking over fake backends; document vectors reused through the call cache."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from rerankkit import ConfigError, Doc, Query, Reranker
from rerankkit.backends.fake import OracleBackend, ScriptedBackend

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
    r = Reranker("e2rank-minilm", backend_instance=OracleBackend(REL), mode=mode)
    ranking = r.rerank("what subject", DOCS)
    grades = [REL[d.doc.text] for d in ranking.docs]
    assert grades == sorted(grades, reverse=True)


def test_listwise_prompt_holds_the_first_m_candidates_and_everything_is_one_embed_call():
    backend = Recorder()
    r = Reranker("e2rank-0.6b", backend_instance=backend, prompt_docs=3)
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
    Reranker("e2rank-0.6b", backend_instance=backend, mode="query").rerank("capital of china", DOCS[:2])
    assert ("Instruct: Given a web search query, retrieve relevant passages that answer the query\n"
            "Query:capital of china<|endoftext|>") in backend.calls[0]


def test_document_vectors_are_reused_through_the_call_cache(tmp_path):
    path = tmp_path / "calls.sqlite"
    first_backend = Recorder()
    Reranker("e2rank-minilm", backend_instance=first_backend, cache=path).rerank("query one", DOCS)
    assert len(first_backend.calls[0]) == 1 + len(DOCS)
    again = Recorder()  # a later run, same model and settings
    r = Reranker("e2rank-minilm", backend_instance=again, cache=path)
    second = r.rerank("query two", DOCS[2:])
    assert again.calls == [[next(t for t in again.calls[0] if "query two" in t)]]  # only the new prompt
    assert r.backend.usage.snapshot()["cached_calls"] == 6
    assert sorted(second.docids) == sorted(d.docid for d in DOCS[2:])


def test_empty_and_whitespace_documents_are_ranked_not_dropped():
    r = Reranker("e2rank-minilm", backend_instance=Recorder())
    ranking = r.rerank("q", ["", "   ", "text"])
    assert sorted(ranking.docids) == ["0", "1", "2"]


def test_bad_params():
    with pytest.raises(ConfigError, match="mode"):
        Reranker("e2rank-minilm", mode="pairwise")
    with pytest.raises(ConfigError, match="prompt_docs"):
        Reranker("e2rank-minilm", prompt_docs=-1)
