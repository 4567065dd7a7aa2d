import math

import numpy as np
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


def test_eval_scores_keep_the_order_through_trec_eval_which_compares_float32():
    """Tied scores (allpair win counts, quantised bf16 log-odds) must reach trec_eval in the ranking's order,
    not re-broken by document id: a step of one double ulp is lost in its float32 scores."""
    import ir_measures
    from ir_measures import RR

    q = Query("q", "q")
    n = 30
    # docids chosen so trec_eval's own tie rule (docid, descending) would put the relevant "a00" last
    docs = [Doc(f"z{i:02d}") for i in range(n - 1)] + [Doc("a00")]
    for scores in ([9.5] * n, [1e6 + 1e-3 * (n - i) for i in range(n)], [-math.inf] * n, [1e300] * 3 + [9.5] * (n - 3)):
        r = Ranking.from_scores(q, docs, scores)
        rel = next(i for i, d in enumerate(r.docs) if d.doc.docid == "a00") + 1
        es = r.eval_scores()
        assert all(math.isfinite(x) for x in es)
        assert len({float(np.float32(x)) for x in es}) == n  # distinct as float32
        qrels = [ir_measures.Qrel("q", "a00", 1)]
        run = [ir_measures.ScoredDoc("q", d.doc.docid, s) for d, s in zip(r.docs, es)]
        assert ir_measures.calc_aggregate([RR], qrels, run)[RR] == pytest.approx(1 / rel)
    distinct = Ranking.from_scores(q, [Doc("a"), Doc("b"), Doc("c")], [0.3, 0.2, 0.1])
    assert distinct.eval_scores() == [0.3, 0.2, 0.1]  # float32-distinct scores are written exactly


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
