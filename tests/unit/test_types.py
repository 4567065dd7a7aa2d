import math

import pytest

from rerankkit import Doc, InputError, Query, Ranking, Run
from rerankkit.types import ScoredDoc, as_doc


def test_from_scores_sorts_and_keeps_input_order_on_ties():
    q = Query("1", "q")
    docs = [Doc("a", "x"), Doc("b", "y"), Doc("c", "z"), Doc("d", "w")]
    r = Ranking.from_scores(q, docs, [1.0, 2.0, 1.0, float("nan")])
    assert r.docids == ["b", "a", "c", "d"]


def test_eval_scores_strictly_decreasing_and_unchanged_when_distinct():
    q = Query("1", "q")
    r = Ranking(q, tuple(ScoredDoc(Doc(str(i)), s) for i, s in enumerate([3.0, 3.0, 5.0, -math.inf, -math.inf])))
    s = r.eval_scores()
    assert all(a > b for a, b in zip(s, s[1:]))
    assert s[0] == 3.0 and s[1] < 3.0 and s[1] > 2.999999
    distinct = Ranking.from_scores(q, [Doc("a"), Doc("b")], [2.0, 1.0])
    assert distinct.eval_scores() == [2.0, 1.0]


def test_from_order_requires_a_permutation():
    q = Query("1", "q")
    docs = [Doc("a"), Doc("b"), Doc("c")]
    assert Ranking.from_order(q, docs, [2, 0, 1]).docids == ["c", "a", "b"]
    with pytest.raises(InputError):
        Ranking.from_order(q, docs, [0, 0, 1])


def test_duplicate_doc_ids_rejected_with_the_id():
    with pytest.raises(InputError, match="'a'"):
        Ranking(Query("1", "q"), (ScoredDoc(Doc("a"), 1.0), ScoredDoc(Doc("a"), 0.5)))


def test_run_mapping_and_duplicate_queries():
    r1 = Ranking.from_scores(Query("1", "q"), [Doc("a")], [1.0])
    run = Run([r1])
    assert list(run) == ["1"] and run["1"] is r1 and len(run) == 1
    with pytest.raises(InputError):
        Run([r1, r1])
    recs = list(run.to_ir_measures())
    assert recs[0].query_id == "1" and recs[0].doc_id == "a"


def test_records_are_frozen_and_typed():
    d = Doc("a", "text", "title")
    assert d.prompt_text() == "title: text"
    with pytest.raises(AttributeError):
        d.text = "other"  # type: ignore[misc]
    with pytest.raises(InputError):
        Doc(1, "x")  # type: ignore[arg-type]
    assert as_doc("plain", 3) == Doc("3", "plain")
    with pytest.raises(InputError):
        as_doc(3.5, 0)  # type: ignore[arg-type]
