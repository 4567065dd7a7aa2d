"""Hostile corpora and queries through every retriever engine's ``index`` and ``search``.

``index``: documents with lone surrogates, control characters, bidi and combining marks, prompt-like
text, empty and 1 MB texts are indexed (surrogates replaced and counted); duplicate ids (also ids that
become equal once repaired) and an empty corpus are typed errors. ``search``: every hostile query gets
a ranking of distinct corpus documents (a blank one: an empty ranking), never an engine's exception.
Lone surrogates in queries used to reach the dense tokenizer (``TypeError``) and Lucene's query file
(``UnicodeEncodeError``). Engines that need an extra or Java not installed here are skipped.
"""

from __future__ import annotations

import pytest
from hostile import count_surrogates, hostile_docid, hostile_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerankkit import Doc, InputError, Query
from rerankkit.errors import DataNotFoundError, MissingExtraError
from rerankkit.retrievers import Retriever

ENGINES = {"bm25": 12, "dense-minilm": 6, "bm25-lucene": 2}  # examples each (Lucene starts a JVM per index)
BASE = [Doc("bm25", "Okapi BM25 ranks documents by term statistics."), Doc("cats", "Cats sleep most of the day.")]


@pytest.fixture(scope="module", params=list(ENGINES))
def engine(request, tmp_path_factory):
    cache = tmp_path_factory.mktemp(f"hostile-{request.param}")
    try:
        r = Retriever(request.param, cache_dir=cache)
        r.index(BASE)
    except (MissingExtraError, DataNotFoundError) as exc:
        pytest.skip(f"{request.param} is not available here: {exc}")
    r.close()
    return request.param, cache


def _repaired(s: str) -> str:
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in s)


def _settings(n: int):
    return settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("examples", [None])
def test_index_and_search_hostile_text(engine, examples):
    name, cache = engine

    @_settings(ENGINES[name])
    @given(docs=st.lists(st.tuples(hostile_docid(), hostile_text(), hostile_text(max_size=12)), min_size=1,
                         max_size=6),
           queries=st.lists(hostile_text(), min_size=1, max_size=5), k=st.integers(1, 10), dup=st.booleans())
    def check(docs, queries, k, dup):
        # distinct ids unless `dup` (then two ids become equal once their lone surrogates are repaired)
        corpus = BASE + [Doc(f"{i}:{d}", t, title) for i, (d, t, title) in enumerate(docs)]
        if dup:
            corpus.append(Doc("0:" + docs[0][0].replace("\ufffd", "\ud800"), "again"))
        ids = [_repaired(d.docid) for d in corpus]
        with Retriever(name, cache_dir=cache) as r:
            if len(set(ids)) < len(ids):
                with pytest.raises(InputError, match="duplicate document id"):
                    r.index(corpus)
                return
            info = r.index(corpus)
            assert info.n_docs == len(corpus)
            assert info.replaced_chars == count_surrogates(*(t for d in corpus for t in (d.docid, d.title, d.text)))
            qs = [Query(f"q{i}", q) for i, q in enumerate(queries)]
            run = r.search(qs, k=k)
        assert list(run) == [q.qid for q in qs]
        assert run.metadata["replaced_chars"] == count_surrogates(*(q for q in queries if q.strip()))
        for q in qs:
            got = run[q.qid].docids
            assert len(got) == len(set(got)) <= k and set(got) <= set(ids)
            assert run[q.qid].query is q
            if not q.text.strip():
                assert got == []

    check()


def test_megabyte_document_and_query(engine):
    name, cache = engine
    big = "bm25 ranking \u0301\ud800 " * 50_000  # ~1 MB
    with Retriever(name, cache_dir=cache) as r:
        info = r.index(BASE + [Doc("big", big)])
        assert info.replaced_chars == 50_000
        run = r.search([Query("q", big)], k=3)
    assert set(run["q"].docids) <= {"bm25", "cats", "big"} and run.metadata["replaced_chars"] == 50_000


def test_empty_corpus_is_a_typed_error(engine):
    name, cache = engine
    with Retriever(name, cache_dir=cache) as r, pytest.raises(InputError, match="empty"):
        r.index([])
