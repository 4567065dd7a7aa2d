"""The retriever front door with the bm25s engine on small corpora: cache, damage, bad input, overrides."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from rerankkit import Doc, Query
from rerankkit.errors import ConfigError, DataNotFoundError, InputError, UnknownNameError
from rerankkit.retrievers import RETRIEVER_PRESETS, Retriever, RetrieverSpec
from rerankkit.retrievers.index_cache import MANIFEST

pytest.importorskip("bm25s")

DOCS = [
    Doc("d1", "BM25 is a bag-of-words ranking function used by search engines.", "BM25"),
    Doc("d2", "Cats are small domesticated carnivorous mammals.", "Cat"),
    Doc("d3", "Dense retrieval encodes queries and passages into vectors.", "Dense retrieval"),
    Doc("d4", "The ranking of search results uses term frequency and document length.", ""),
    Doc("d5", "Dogs and cats are common pets.", "Pets"),
]


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def test_search_returns_ranked_docs_with_texts_and_metadata(cache):
    r = Retriever("bm25", cache_dir=cache)
    info = r.index(DOCS)
    assert not info.reused and info.n_docs == 5 and info.path.is_dir()
    run = r.search([Query("a", "ranking function for search"), Query("b", "cats")], k=3)
    assert list(run) == ["a", "b"]
    top = run["a"].docs[0]
    assert top.doc == DOCS[0]  # title and text travel with the hit
    assert [d.score for d in run["a"].docs] == sorted((d.score for d in run["a"].docs), reverse=True)
    assert set(run["b"].docids) == {"d2", "d5"}  # only documents sharing a term
    assert run.metadata["k"] == 3 and run.metadata["search_s"] >= 0
    assert run.metadata["retriever"]["name"] == "bm25" and run.metadata["index"]["n_docs"] == 5


def test_index_is_reused_and_keyed_by_corpus_and_settings(cache):
    first = Retriever("bm25", cache_dir=cache).index(DOCS)
    again = Retriever("bm25", cache_dir=cache).index(iter(DOCS))
    assert again.reused and again.path == first.path
    other_corpus = Retriever("bm25", cache_dir=cache).index(DOCS[:4])
    assert not other_corpus.reused and other_corpus.path != first.path
    other_k1 = Retriever("bm25", cache_dir=cache, k1=1.2).index(DOCS)
    assert not other_k1.reused and other_k1.path != first.path
    threads_only = Retriever("bm25", cache_dir=cache, threads=1).index(DOCS)  # a search setting
    assert threads_only.reused and threads_only.path == first.path
    rebuilt = Retriever("bm25", cache_dir=cache).index(DOCS, rebuild=True)
    assert not rebuilt.reused and rebuilt.path == first.path


@pytest.mark.parametrize("damage", ["flip", "truncate", "no-manifest", "bad-manifest", "missing-file"])
def test_damaged_index_is_detected_and_rebuilt(cache, caplog, damage):
    r = Retriever("bm25", cache_dir=cache)
    info = r.index(DOCS)
    expected = r.search(["ranking function"], k=5)["q0"].docids
    victim = max((p for p in info.path.rglob("*.npy")), key=lambda p: p.stat().st_size)
    if damage == "flip":
        data = bytearray(victim.read_bytes())
        data[-1] ^= 0xFF
        victim.write_bytes(bytes(data))
    elif damage == "truncate":
        victim.write_bytes(victim.read_bytes()[:-4])
    elif damage == "no-manifest":
        (info.path / MANIFEST).unlink()
    elif damage == "bad-manifest":
        (info.path / MANIFEST).write_text("{not json", encoding="utf-8")
    else:
        victim.unlink()
    caplog.set_level(logging.WARNING)
    r2 = Retriever("bm25", cache_dir=cache)
    info2 = r2.index(DOCS)
    assert not info2.reused, "a damaged index must never be used"
    assert "rebuilding" in caplog.text
    assert r2.search(["ranking function"], k=5)["q0"].docids == expected
    assert Retriever("bm25", cache_dir=cache).index(DOCS).reused  # the rebuilt one is intact


def test_size_only_verification_still_catches_truncation(cache):
    info = Retriever("bm25", cache_dir=cache).index(DOCS)
    victim = next(info.path.rglob("*.npy"))
    victim.write_bytes(victim.read_bytes() + b"x")
    assert not Retriever("bm25", cache_dir=cache, verify="size").index(DOCS).reused


def test_open_reads_an_index_folder_without_the_corpus(cache, tmp_path):
    r = Retriever("bm25", cache_dir=cache)
    info = r.index(DOCS)
    again = Retriever.open(info.path)
    assert again.search(["cats"], k=5)["q0"].docids == r.search(["cats"], k=5)["q0"].docids
    with pytest.raises(DataNotFoundError, match=str(tmp_path / "nowhere")):
        Retriever.open(tmp_path / "nowhere")


def test_empty_and_stopword_queries_get_empty_rankings(cache):
    r = Retriever("bm25", cache_dir=cache)
    r.index(DOCS)
    run = r.search(["", "   ", "the of and", "cats"], k=10)
    assert [len(run[q]) for q in run] == [0, 0, 0, 2]
    assert run.metadata["empty_queries"] == 2


def test_k_larger_than_the_corpus_returns_everything_that_matches(cache):
    docs = [Doc(f"d{i}", f"apple number {i}") for i in range(7)]
    r = Retriever("bm25", cache_dir=cache)
    r.index(docs)
    assert len(r.search(["apple"], k=10_000)["q0"]) == 7
    assert len(r.retrieve("apple", k=3)) == 3
    for bad in (0, -1, 2.5, True):
        with pytest.raises(InputError):
            r.search(["apple"], k=bad)


def test_ties_are_broken_by_docid_deterministically(cache):
    docs = [Doc(f"d{i}", "same words here") for i in (3, 1, 2)]
    r = Retriever("bm25", cache_dir=cache)
    r.index(docs)
    assert r.search(["words"], k=2)["q0"].docids == ["d1", "d2"]


def test_remove_query_drops_the_document_with_the_query_id(cache):
    docs = [Doc("q1", "argument about taxes"), Doc("x", "taxes are high"), Doc("y", "taxes")]
    r = Retriever("bm25", cache_dir=cache)
    r.index(docs)
    run = r.search([Query("q1", "argument about taxes")], k=2, remove_query=True)
    assert "q1" not in run["q1"].docids and len(run["q1"]) == 2


def test_undecodable_characters_are_replaced_and_counted(cache):
    bad = "caf\udce9 menu"  # what bytes b"caf\xe9" become under errors="surrogateescape"
    r = Retriever("bm25", cache_dir=cache)
    info = r.index([Doc("a", bad), Doc("b", "tea menu")])
    assert info.replaced_chars == 1 and info.docs_with_replacements == 1
    hit = r.search(["menu"], k=5)["q0"]
    assert {d.doc.text for d in hit.docs} == {"caf\ufffd menu", "tea menu"}
    assert json.loads((info.path / MANIFEST).read_text())["corpus"]["replaced_chars"] == 1


def test_undecodable_bytes_in_a_corpus_file_are_replaced_and_counted(cache, tmp_path):
    from rerankkit.data import load_dataset

    f = tmp_path / "corpus.jsonl"
    f.write_bytes(b'{"_id": "a", "title": "", "text": "caf\xe9 menu"}\n{"_id": "b", "text": "tea menu"}\n')
    r = Retriever("bm25", cache_dir=cache)
    info = r.index(load_dataset(str(f)))
    assert info.replaced_chars == 1 and info.n_docs == 2
    hits = r.search(["menu"], k=5)["q0"]
    assert {d.doc.docid: d.doc.text for d in hits.docs} == {"a": "caf\ufffd menu", "b": "tea menu"}


def test_bad_corpora_and_calls_raise_typed_errors(cache):
    r = Retriever("bm25", cache_dir=cache)
    with pytest.raises(InputError, match="call index"):
        r.search(["x"])
    with pytest.raises(InputError, match="empty"):
        r.index([])
    with pytest.raises(InputError, match="duplicate document id 'a'"):
        r.index([Doc("a", "x"), Doc("a", "y")])
    with pytest.raises(InputError):
        r.index("not a corpus")
    with pytest.raises(InputError):
        r.index([Doc("a", "x"), 3])


def test_strings_are_accepted_as_documents_and_queries(cache):
    r = Retriever("bm25", cache_dir=cache)
    r.index(["red apples", "green pears"])
    run = r.search("pears")
    assert list(run) == ["q0"] and run["q0"].docids == ["1"]


def test_presets_overrides_and_errors():
    assert {"bm25", "bm25-lucene", "dense-minilm", "dense"} <= set(RETRIEVER_PRESETS.names())
    for name, spec in RETRIEVER_PRESETS.items():
        assert spec.description and spec.paper, name
        assert RetrieverSpec.from_toml(spec.to_toml()) == spec
    r = Retriever("bm25", k1="1.5", stemmer="")
    assert r.spec.params["k1"] == 1.5 and r.spec.params["stemmer"] == ""
    with pytest.raises(UnknownNameError, match="did you mean"):
        Retriever("bm52")
    with pytest.raises(ConfigError, match="unknown parameter"):
        Retriever("bm25", k3=1)
    with pytest.raises(ConfigError, match="cannot read"):
        Retriever("bm25", k1="high")
    with pytest.raises(ConfigError, match="model"):
        Retriever("dense")  # no model given
    assert Retriever("dense", model="BAAI/bge-small-en-v1.5").spec.params["model"] == "BAAI/bge-small-en-v1.5"
    assert Retriever("bge-base-en-v1.5").spec.params["query_prefix"].startswith("Represent this sentence")
    e5 = Retriever("e5-base-v2").spec.params
    assert (e5["query_prefix"], e5["passage_prefix"]) == ("query: ", "passage: ")


def test_cache_dir_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RERANKKIT_CACHE", str(tmp_path / "env-cache"))
    info = Retriever("bm25").index(DOCS)
    assert str(info.path).startswith(str(tmp_path / "env-cache"))


def test_import_rerankkit_loads_no_heavy_library():
    code = ("import sys, rerankkit; r = rerankkit.Retriever; import rerankkit.retrievers; "
            "print(sorted(m for m in ('torch', 'faiss', 'bm25s', 'sentence_transformers', 'jnius') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_an_index_that_passes_a_size_check_but_fails_to_load_is_rebuilt(cache, caplog):
    info = Retriever("bm25", cache_dir=cache).index(DOCS)
    victim = next(info.path.rglob("data.csc.index.npy"))
    data = victim.read_bytes()
    victim.write_bytes(b"XXXXXX" + data[6:])  # same size, broken .npy header
    caplog.set_level(logging.WARNING)
    again = Retriever("bm25", cache_dir=cache, verify="size")
    assert not again.index(DOCS).reused and "failed to load" in caplog.text
    assert again.search(["cats"], k=2)["q0"].docids == ["d2", "d5"]
