"""Training examples and losses without a model: groups, hard positives, held-out split, LCE loss."""

from __future__ import annotations

import math

import pytest

from rerankkit.errors import ConfigError
from rerankkit.train.config import config_from_dict
from rerankkit.train.examples import pointwise_examples, pointwise_groups
from rerankkit.train.features import split_holdout
from rerankkit.types import Doc, Qrel, Query, Ranking, Run

Q = Query("q1", "what do bees eat")
DOCS = {f"d{i}": Doc(f"d{i}", f"text {i}") for i in range(8)}
# d0 and d5 are judged relevant (grade 1); only d5 was retrieved; d6 judged not relevant; d7 unjudged
QRELS = [Qrel("q1", "d0", 1), Qrel("q1", "d5", 1), Qrel("q1", "d6", 0)]
RETRIEVED = Run([Ranking.from_order(Q, [DOCS[d] for d in ("d1", "d5", "d6", "d7", "d2")], [0, 1, 2, 3, 4])])


def test_groups_lead_with_a_retrieved_positive_and_never_use_relevant_documents_as_negatives():
    for seed in range(20):
        (grp,) = pointwise_groups([Q], QRELS, RETRIEVED, DOCS, 1, 10, seed)
        assert grp[0].doc.docid == "d5" and grp[0].label == 1  # found by the retriever: preferred
        negs = [ex.doc.docid for ex in grp[1:]]
        assert sorted(negs) == ["d1", "d2", "d6", "d7"] and all(ex.label == 0 for ex in grp[1:])
    picked = {pointwise_groups([Q], QRELS, RETRIEVED, DOCS, 1, 2, s, hard_positives=False)[0][0].doc.docid
              for s in range(20)}
    assert picked == {"d0", "d5"}  # without the preference either judged document may be drawn


def test_pointwise_examples_list_each_document_once():
    exs = pointwise_examples(pointwise_groups([Q], QRELS, RETRIEVED, DOCS, 2, 2, seed=1), seed=1)
    keys = [(e.query.qid, e.doc.docid) for e in exs]
    assert len(keys) == len(set(keys)) == 4 and sum(e.label for e in exs) == 2


def test_split_holdout_is_seeded_and_disjoint():
    qs = [Query(f"q{i}", "x") for i in range(10)]
    train_a, held_a = split_holdout(qs, 3, seed=7)
    train_b, held_b = split_holdout(qs, 3, seed=7)
    assert held_a == held_b and len(held_a) == 3 and len(train_a) == 7
    assert not {q.qid for q in held_a} & {q.qid for q in train_a}
    assert split_holdout(qs, 0, seed=7) == (qs, [])
    with pytest.raises(ConfigError):
        split_holdout(qs, 10, seed=7)


def test_config_rejects_unknown_pointwise_loss():
    with pytest.raises(ConfigError, match="pointwise_loss"):
        config_from_dict({"preset": "x", "output_dir": "o", "pointwise_loss": "hinge"})


def test_contrastive_loss_is_the_groups_softmax_cross_entropy():
    torch = pytest.importorskip("torch")
    from rerankkit.train.losses import contrastive_loss

    m = torch.tensor([2.0, 0.0, 1.0, -1.0, 3.0])
    got = float(contrastive_loss(torch, m, [3, 2]))
    g1 = math.log(math.exp(2) + math.exp(0) + math.exp(1)) - 2
    g2 = math.log(math.exp(-1) + math.exp(3)) + 1
    assert got == pytest.approx((g1 + g2) / 2, rel=1e-6)
