"""Robustness studies on model-free judges: a perfect judge is order- and format-invariant, a position-biased
judge shows the bias it was given, the cost estimate matches what a run makes, and the outputs are written."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest

from rerankkit.backends.fake import OracleBackend, ScriptedBackend
from rerankkit.cli.main import main
from rerankkit.robustness import Study, StudySettings, summarize
from rerankkit.robustness.analysis import position_bias, spread
from rerankkit.robustness.orders import permutation, shown, shuffled
from rerankkit.robustness.report import write_outputs
from rerankkit.types import Doc, Qrel, Query, Ranking, Run, ScoredDoc

N_DOCS = 6


def _data(queries: int = 4, docs: int = N_DOCS):
    """Queries whose candidates have distinct grades (a perfect judge has one right order), first stage worst-first."""
    rel, rankings, qrels = {}, [], []
    for q in range(queries):
        items = []
        for d in range(docs):
            text = f"passage {q}-{d} on subject {q}, point {d}"
            rel[text] = d * 3.0 / docs
            items.append(ScoredDoc(Doc(f"d{q}-{d}", text), float(docs - d)))
            qrels.append(Qrel(f"q{q}", f"d{q}-{d}", d * 3 // docs))
        rankings.append(Ranking(Query(f"q{q}", f"subject {q}"), tuple(items)))
    return Run(rankings), qrels, rel


def _summary(study, records):
    return summarize(study.describe(), records, {o: study.shown(o) for o in study.orders})


@pytest.mark.parametrize(("preset", "overrides"), [
    ("pointwise-smollm2-135m", {}),
    ("prp-smollm2-135m", {"k": N_DOCS}),  # sliding passes over every position: a full sort
    ("first-smollm2-135m", {"window": N_DOCS, "stride": 3}),
    ("listwise-smollm2-135m", {"window": N_DOCS, "stride": 3}),
    ("cosine-minilm", {}),
])
def test_a_perfect_judge_is_order_and_format_invariant(preset, overrides, tmp_path):
    run, qrels, rel = _data()
    study = Study(preset, run, qrels, tmp_path, StudySettings(formats=4, orders=3, depth=N_DOCS, grid=True),
                  overrides, backend=OracleBackend(rel))
    assert len(study.formats) == 4 and len(study.cells) == 16
    s = _summary(study, study.run(cache=tmp_path / "cache.sqlite"))
    f = s["formats"]
    assert f["spread"]["spread"] == 0.0 and f["spread"]["std"] == 0.0 and f["spread"]["max"] == pytest.approx(1.0)
    assert "best_vs_worst" not in f  # no difference to test
    assert len(s["orders"]) == 4
    for o in s["orders"]:
        assert o["tau_mean"] == 1.0 and o["tau_min"] == 1.0 and o["identical_share"] == 1.0
        assert o["measure"]["spread"] == 0.0 and o["top10_overlap"] == 1.0
    # an order-blind judge: the top document is wherever the shuffle put the best one
    pb = s["position_bias"]
    assert pb["samples"] == 4 * 3 * 4  # formats x shuffles x queries
    best_at = [study.shown(c.order)[q].index(f"d{q[1:]}-{N_DOCS - 1}") for c in study.cells if c.order
               for q in study.shown(c.order)]
    assert pb["top1"] == pytest.approx(list(np.bincount(best_at, minlength=N_DOCS) / len(best_at)))


def _first_scorer(rel, bias):
    """A FIRST judge: identifier j's log-prob is the relevance of the document listed as [j], plus ``bias`` for
    the first listed; ties of a deterministic coin (per prompt) go the biased way with probability ``bias``."""
    def score(prompt, choices):
        listed = {m.group(1): m.group(2) for m in re.finditer(r"(?m)^\[([A-Z])\] (.+)$", prompt)}
        out = [rel[listed[c].strip()] for c in choices]
        coin = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "little") / 2**32
        if coin < bias:
            out[0] += 100.0
        return out
    return score


@pytest.mark.parametrize("bias", [0.0, 0.5, 1.0])
def test_a_position_biased_judge_shows_the_bias_it_was_given(bias, tmp_path):
    run, qrels, rel = _data(queries=30)
    judge = ScriptedBackend(score=_first_scorer(rel, bias))
    study = Study("first-smollm2-135m", run, qrels, tmp_path, StudySettings(formats=1, orders=4, depth=N_DOCS),
                  {"window": N_DOCS, "stride": 3}, backend=judge)
    s = _summary(study, study.run())
    pb = s["position_bias"]
    assert pb["samples"] == 120
    # the best document lands at position 0 in about 1/n of the shuffles, so P(top = first shown) is about
    # bias + (1 - bias) / n; exactly 1 and exactly the order-blind share at the extremes
    expected = bias + (1 - bias) / N_DOCS
    assert pb["top1"][0] == pytest.approx(expected, abs=0.08)
    if bias == 1.0:
        assert pb["top1"][0] == 1.0 and pb["top1"][1:] == [0.0] * (N_DOCS - 1)
        assert pb["mean_final_rank"][0] == 1.0
    if bias == 0.0:
        assert s["orders"][0]["tau_mean"] == 1.0  # unbiased: every order gives the same ranking
    else:
        assert s["orders"][0]["tau_mean"] < 1.0


def test_the_cost_estimate_is_what_a_fresh_run_makes(tmp_path):
    run, qrels, rel = _data()
    for preset, overrides in (("pointwise-smollm2-135m", {}), ("first-smollm2-135m", {"window": 4, "stride": 2}),
                              ("prp-smollm2-135m", {"method": "allpair"})):
        study = Study(preset, run, qrels, tmp_path / preset, StudySettings(formats=3, orders=2, depth=N_DOCS),
                      overrides, backend=OracleBackend(rel))
        est = study.estimate()
        assert est.exact, preset
        records = study.run(cache=tmp_path / preset / "cache.sqlite")
        assert sum(r["model_calls"] for r in records) == est.model_calls
        assert sum(r["requests"] for r in records) == est.requests
        again = study.run(cache=tmp_path / preset / "cache.sqlite")  # a rerun is free
        assert sum(r["model_calls"] for r in again) == 0
    # pointwise shuffles ask nothing new: the estimate counts only the formats' prompts
    study = Study("pointwise-smollm2-135m", run, qrels, tmp_path / "pw", StudySettings(formats=2, orders=5,
                                                                                       depth=N_DOCS),
                  backend=OracleBackend(rel))
    assert study.estimate().model_calls == 2 * 4 * N_DOCS
    sliding = Study("prp-smollm2-135m", run, qrels, tmp_path / "sl", StudySettings(formats=2, orders=2, depth=N_DOCS),
                    backend=OracleBackend(rel)).estimate()
    assert not sliding.exact and "estimated" in sliding.describe()


def test_shuffles_are_seeded_per_query_and_keep_the_tail():
    run, _, _ = _data(queries=3, docs=8)
    assert shuffled(run, 5, 0, 0) is run
    a = shuffled(run, 5, 0, 1)
    assert a == shuffled(run, 5, 0, 1) and a["q0"].docids != shuffled(run, 5, 0, 2)["q0"].docids
    for qid, r in a.items():
        assert sorted(r.docids[:5]) == sorted(run[qid].docids[:5]) and r.docids[5:] == run[qid].docids[5:]
        assert {sd.docid: sd.score for sd in r.docs} == {sd.docid: sd.score for sd in run[qid].docs}
    # a query's order does not depend on the other queries in the run
    assert shuffled(run.head(1), 5, 0, 1)["q0"].docids == a["q0"].docids
    assert permutation("q0", 4, 0, 0) == [0, 1, 2, 3] and sorted(permutation("q0", 9, 3, 2)) == list(range(9))
    assert shown(a, 3)["q1"] == a["q1"].docids[:3]


def test_spread_and_position_bias_by_hand():
    assert spread([0.5, 0.7, 0.6]) == pytest.approx({"min": 0.5, "max": 0.7, "spread": 0.2, "mean": 0.6, "std": 0.1})
    records = [{"order": 1, "format": 0, "rankings": {"q": ["b", "a", "c"]}},
               {"order": 2, "format": 0, "rankings": {"q": ["c", "a", "b"]}}]
    pb = position_bias(records, {1: {"q": ["b", "c", "a"]}, 2: {"q": ["c", "b", "a"]}})
    assert pb["top1"] == [1.0, 0.0, 0.0] and pb["uniform"] == pytest.approx([1 / 3] * 3)
    assert pb["mean_final_rank"] == [1.0, 3.0, 2.0]
    assert position_bias([{"order": 0, "format": 0, "rankings": {}}], {}) is None


def test_report_outputs(tmp_path):
    pytest.importorskip("matplotlib")
    run, qrels, rel = _data()
    noisy = OracleBackend(rel, noise=1.5, seed=3)  # an imperfect judge: formats and orders now matter
    study = Study("pointwise-smollm2-135m", run, qrels, tmp_path, StudySettings(formats=4, orders=2, depth=N_DOCS,
                                                                               resamples=500),
                  backend=noisy, dataset="toy")
    records = study.run(cache=tmp_path / "cache.sqlite")
    paths = write_outputs(study, records, tmp_path, "rerankkit robustness ...", {"model_calls": 1, "exact": True})
    data = json.loads(paths["json"].read_text())
    f = data["formats"]
    assert f["spread"]["spread"] > 0 and f["best"] != f["worst"]
    bw = f["best_vs_worst"]
    assert bw["wins"] + bw["ties"] + bw["losses"] == 4 and 0 < bw["p_t"] <= 1 and 0 < bw["p_boot"] <= 1
    md = paths["md"].read_text()
    assert "Robustness: pointwise-smollm2-135m on toy" in md and "**spread" in md and "Position bias" in md
    assert f"F{f['best']:02d}" in md and "[user]" in md and "(formats.png)" in md
    assert paths["formats_png"].stat().st_size > 1000 and paths["position_png"].exists()
    assert "data:image/png;base64" in paths["html"].read_text()
    for fmt in data["setup"]["formats"]:  # every format's template file is there for --set template=PATH
        assert (tmp_path / "formats").joinpath(fmt["template"].rsplit("/", 1)[-1]).exists()


def test_cli_prints_the_calls_and_asks_for_yes_above_the_limit(tmp_path, data_root, capsys):
    args = ["robustness", "pointwise-smollm2-135m", "--dataset", "trec-dl-2019/passage", "--queries", "2",
            "--depth", "5", "--formats", "2", "--orders", "1", "-o", str(tmp_path)]
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "20 model calls (30 requests" in out and "(exact)" in out
    assert main([*args, "--limit", "10"]) == 2  # refused before any model loads
    err = capsys.readouterr().err
    assert "more than --limit 10" in err and "--yes" in err
    assert main([*args, "--formats", "0", "--dry-run"]) == 2
    assert "formats must be at least 1" in capsys.readouterr().err
