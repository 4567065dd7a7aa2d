"""``rerankkit index`` / ``retrieve`` / ``retrievers`` on a small local BEIR-layout collection."""

from __future__ import annotations

import json

import pytest

from rerankkit.cli.main import main

pytest.importorskip("bm25s")


@pytest.fixture
def collection(tmp_path):
    d = tmp_path / "mini"
    (d / "qrels").mkdir(parents=True)
    docs = [("d1", "Tea", "green tea is brewed from leaves"), ("d2", "Coffee", "espresso is brewed coffee"),
            ("d3", "", "volcanoes erupt lava")]
    (d / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in docs))
    (d / "queries.jsonl").write_text(json.dumps({"_id": "1", "text": "brewed espresso"}) + "\n"
                                     + json.dumps({"_id": "2", "text": "lava"}) + "\n")
    (d / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td2\t1\n2\td3\t1\n")
    return d


def test_index_then_retrieve_writes_a_trec_run(collection, tmp_path, capsys):
    cache = str(tmp_path / "cache")
    assert main(["index", "bm25", "--dataset", str(collection), "--cache-dir", cache, "--no-progress"]) == 0
    assert "3 documents, built" in capsys.readouterr().out
    assert main(["index", "bm25", "--dataset", str(collection), "--cache-dir", cache, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["reused"] is True
    out = tmp_path / "run.txt"
    assert main(["retrieve", "bm25", "--dataset", str(collection), "--cache-dir", cache, "-k", "2", "-o", str(out),
                 "--set", "k1=1.2", "--no-progress"]) == 0
    lines = [ln.split() for ln in out.read_text().splitlines()]
    assert [ln[:3] for ln in lines] == [["1", "Q0", "d2"], ["1", "Q0", "d1"], ["2", "Q0", "d3"]]
    meta = json.loads((tmp_path / "run.txt.meta.json").read_text())
    assert meta["retriever"]["params"]["k1"] == 1.2 and meta["k"] == 2 and meta["index"]["n_docs"] == 3


def test_list_and_errors(capsys, tmp_path):
    assert main(["retrievers"]) == 0
    assert "bm25-lucene" in capsys.readouterr().out
    assert main(["retrieve", "bm52", "--dataset", str(tmp_path), "-o", str(tmp_path / "r")]) == 2
    assert "did you mean" in capsys.readouterr().err
    assert main(["index", "bm25", "--dataset", str(tmp_path / "absent")]) == 2
    assert str(tmp_path / "absent") in capsys.readouterr().err
