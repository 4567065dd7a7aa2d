"""Reciprocal-rank fusion and normalised interpolation, checked against hand computation."""

from __future__ import annotations

import pytest

from rerankkit import Doc, Query, Ranking, Run
from rerankkit.errors import ConfigError, InputError
from rerankkit.retrievers import fuse, interpolate, rrf


def _run(rows: dict[str, list[tuple[str, float]]], name: str = "") -> Run:
    out = [Ranking.from_scores(Query(q, f"text {q}"), [Doc(d, f"text of {d}") for d, _ in hits],
                               [s for _, s in hits]) for q, hits in rows.items()]
    return Run(out, {"retriever": {"name": name}})


A = _run({"q1": [("a", 10.0), ("b", 8.0), ("c", 2.0)], "q2": [("x", 1.0)]}, "bm25")
B = _run({"q1": [("c", 0.9), ("a", 0.5), ("d", 0.1)], "q3": [("y", 0.3)]}, "dense")


def test_rrf_matches_the_formula():
    out = rrf([A, B], k=60)
    got = {d.docid: d.score for d in out["q1"].docs}
    assert got["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert got["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert got["b"] == pytest.approx(1 / 62)
    assert got["d"] == pytest.approx(1 / 63)
    assert out["q1"].docids == ["a", "c", "b", "d"]
    assert list(out) == ["q1", "q2", "q3"]  # queries of either run are kept
    assert out["q1"].docs[0].doc.text == "text of a"
    assert out.metadata["sources"] == ["bm25", "dense"] and out.metadata["fusion"]["method"] == "rrf"


def test_rrf_weights_depth_and_top_k():
    out = rrf([A, B], k=0, weights=[2.0, 1.0], depth=1, top_k=1)
    assert out["q1"].docids == ["a"] and out["q1"].docs[0].score == pytest.approx(2.0)
    assert {d.docid for d in rrf([A, B], depth=1)["q1"].docs} == {"a", "c"}


def test_minmax_interpolation_matches_hand_computation():
    out = interpolate(A, B, alpha=0.5)
    got = {d.docid: d.score for d in out["q1"].docs}
    # A normalised: a 1, b 0.75, c 0; B normalised: c 1, a 0.5, d 0; a doc missing from a run gets 0 there
    assert got == pytest.approx({"a": 0.75, "b": 0.375, "c": 0.5, "d": 0.0})
    assert out["q1"].docids == ["a", "c", "b", "d"]
    assert interpolate(A, B, alpha=1.0)["q1"].docids[:3] == ["a", "b", "c"]


def test_zscore_and_raw_interpolation():
    raw = interpolate(A, B, alpha=0.5, norm="none")
    assert {d.docid: d.score for d in raw["q1"].docs}["a"] == pytest.approx(0.5 * 10 + 0.5 * 0.5)
    z = interpolate(A, B, norm="zscore")
    assert z["q1"].docids[0] == "a"
    assert fuse(A, B, method="interpolate", alpha=0.3)["q1"].docids == interpolate(A, B, alpha=0.3)["q1"].docids
    assert fuse(A, B)["q1"].docids == rrf([A, B])["q1"].docids


def test_fusion_rejects_bad_settings():
    with pytest.raises(ConfigError):
        interpolate(A, B, norm="softmax")
    with pytest.raises(ConfigError):
        interpolate(A, B, alpha=1.5)
    with pytest.raises(ConfigError):
        fuse(A, B, method="borda")
    with pytest.raises(InputError):
        fuse(A, B, A, method="interpolate")
    with pytest.raises(InputError):
        rrf([])
    with pytest.raises(ConfigError):
        rrf([A, B], weights=[1.0])
