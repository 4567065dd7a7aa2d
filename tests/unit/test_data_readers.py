"""TREC / candidate / corpus readers and writers on small files written here (no real data needed)."""

from __future__ import annotations

import gzip
import json
import tomllib

import pytest

from rerankkit.data import (
    DecodeStats,
    read_candidates,
    read_jsonl_corpus,
    read_qrels,
    read_run,
    read_topics,
    read_tsv_corpus,
    write_candidates,
    write_run,
)
from rerankkit.errors import InputError
from rerankkit.types import Doc, Query, Ranking, Run, ScoredDoc


def _run() -> Run:
    q1, q2 = Query("q1", "first query"), Query("q2", "second")
    r1 = Ranking(q1, (ScoredDoc(Doc("d1", "one"), 0.123456789012345678), ScoredDoc(Doc("d2", "two"), 0.1234567890123),
                      ScoredDoc(Doc("d3", "three"), 0.1234567890123)))  # tie: order must survive
    r2 = Ranking(q2, (ScoredDoc(Doc("d9", "x"), -1e-300), ScoredDoc(Doc("d8", "y"), -2.5)))
    return Run([r1, r2], {"spec": {"strategy": "pointwise", "template": "yes-no", "backend": "oracle",
                                   "model": "m", "params": {"mode": "logodds"}}, "wall_s": 1.5,
                          "usage": {"model_calls": 5}})


def test_run_round_trip_keeps_order_scores_and_writes_spec_and_meta(tmp_path):
    run = _run()
    path = write_run(run, tmp_path / "runs" / "r.txt", tag="mytag")
    back = read_run(path)
    assert list(back) == ["q1", "q2"]
    for qid in run:
        assert back[qid].docids == run[qid].docids
        assert [d.score for d in back[qid].docs] == run[qid].eval_scores()  # full precision
    assert back.metadata["tag"] == "mytag"
    spec = tomllib.loads((tmp_path / "runs" / "r.txt.spec.toml").read_text())
    assert spec["strategy"] == "pointwise" and spec["params"] == {"mode": "logodds"}
    meta = json.loads((tmp_path / "runs" / "r.txt.meta.json").read_text())
    assert meta["wall_s"] == 1.5 and meta["usage"] == {"model_calls": 5} and meta["queries"] == 2
    assert meta["versions"]["python"] and "spec" not in meta


def test_run_file_texts_are_filled_from_mappings(tmp_path):
    path = write_run(_run(), tmp_path / "r.txt")
    back = read_run(path, queries={"q1": Query("q1", "first query")}, docs={"d2": Doc("d2", "two", "T")})
    assert back["q1"].query.text == "first query" and back["q2"].query.text == ""
    assert back["q1"].docs[1].doc == Doc("d2", "two", "T")


def test_write_run_rejects_ids_with_spaces(tmp_path):
    bad = Run([Ranking(Query("q 1", "x"), (ScoredDoc(Doc("d1"), 1.0),))])
    with pytest.raises(InputError, match="whitespace"):
        write_run(bad, tmp_path / "r.txt")


def test_topics_and_qrels_plain_gz_and_beir_tsv(tmp_path):
    (tmp_path / "t.tsv").write_text("1\tfirst q\n\n2\tsecond\tq with tab\n")
    with gzip.open(tmp_path / "t.tsv.gz", "wt") as f:
        f.write("1\tfirst q\n2\tsecond\tq with tab")  # no final newline
    for name in ("t.tsv", "t.tsv.gz"):
        assert read_topics(tmp_path / name) == [Query("1", "first q"), Query("2", "second\tq with tab")]
    (tmp_path / "q.txt").write_text("1 0 d1 2\n1 Q0 d2 0\n2\t0\td3\t1")
    (tmp_path / "q.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t2\n")
    assert [(q.qid, q.docid, q.relevance) for q in read_qrels(tmp_path / "q.txt")] == [
        ("1", "d1", 2), ("1", "d2", 0), ("2", "d3", 1)]
    assert [(q.qid, q.docid, q.relevance) for q in read_qrels(tmp_path / "q.tsv")] == [("1", "d1", 2)]
    (tmp_path / "bad.txt").write_text("1 0 d1 high\n")
    with pytest.raises(InputError, match="bad.txt:1"):
        read_qrels(tmp_path / "bad.txt")


def _cand_record(qid, query, ids):
    return {"query": query, "hits": [{"content": f"text of {d}", "qid": qid, "docid": d, "rank": i + 1,
                                      "score": 10.0 - i} for i, d in enumerate(ids)]}


def test_candidates_jsonl_gz_without_final_newline_and_json_array(tmp_path):
    recs = [_cand_record(7, "query seven", ["a", "b", "c"]), _cand_record(8, "query eight", ["c", "d"])]
    with gzip.open(tmp_path / "c.jsonl.gz", "wt") as f:
        f.write("\n".join(json.dumps(r) for r in recs))
    (tmp_path / "c.json").write_text(json.dumps(recs, indent=1))
    for name in ("c.jsonl.gz", "c.json"):
        run = read_candidates(tmp_path / name)
        assert list(run) == ["7", "8"] and run["7"].query.text == "query seven"
        assert run["7"].docids == ["a", "b", "c"] and run["7"].docs[1].doc.text == "text of b"
        assert [d.score for d in run["8"].docs] == [10.0, 9.0]


def test_candidates_round_trip_and_errors(tmp_path):
    run = _run()
    back = read_candidates(write_candidates(run, tmp_path / "c.jsonl"))
    assert [back[q].docids for q in back] == [run[q].docids for q in run]
    assert back["q1"].docs[0].doc == run["q1"].docs[0].doc
    (tmp_path / "dup.jsonl").write_text(json.dumps(_cand_record(1, "q", ["a", "a"])) + "\n")
    with pytest.raises(InputError, match=r"dup.jsonl:1.*duplicate document id 'a'"):
        read_candidates(tmp_path / "dup.jsonl")
    (tmp_path / "broken.jsonl").write_text('{"query": "q", "hits": [}\n')
    with pytest.raises(InputError, match="broken.jsonl:1: not valid JSON"):
        read_candidates(tmp_path / "broken.jsonl")


def test_undecodable_bytes_are_replaced_and_counted(tmp_path, caplog):
    good = json.dumps({"_id": "d1", "title": "T", "text": "caf\u00e9 ok"}).encode()
    bad = b'{"_id": "d2", "text": "bad \xff\xfe bytes and \xc3"}'  # 3 invalid sequences
    also = json.dumps({"_id": "d3", "text": "literal \ufffd stays"}, ensure_ascii=False).encode()
    (tmp_path / "corpus.jsonl").write_bytes(good + b"\n" + bad + b"\n" + also + b"\n")
    stats = DecodeStats()
    with caplog.at_level("WARNING"):
        docs = list(read_jsonl_corpus(tmp_path / "corpus.jsonl", stats))
    assert [d.docid for d in docs] == ["d1", "d2", "d3"]
    assert docs[0] == Doc("d1", "caf\u00e9 ok", "T")
    assert docs[1].text == "bad \ufffd\ufffd bytes and \ufffd"
    assert stats.replaced == 3 and stats.lines == 1
    assert "replaced 3 undecodable" in caplog.text


def test_tsv_corpus_is_csv_aware(tmp_path):
    (tmp_path / "c.tsv").write_text('id\ttext\n1\tplain text\n2\t"quoted ""inner"" text"\n3\tbody\ttitle\n')
    docs = list(read_tsv_corpus(tmp_path / "c.tsv"))
    assert docs == [Doc("1", "plain text"), Doc("2", 'quoted "inner" text'), Doc("3", "body", "title")]
