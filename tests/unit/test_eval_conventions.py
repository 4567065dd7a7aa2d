"""Evaluation conventions: judged queries missing from a run score 0 by default, as the ``ir_measures``
command line and ``trec_eval -c`` score them; both commands run for real on the same files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rerankkit.data import load_dataset, write_run

REPO = Path(__file__).resolve().parents[2]
DL_MEASURES = ["nDCG@10", "RR(rel=2)@10", "R(rel=2)@100", "AP"]


def _cli(*args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _ir_measures(qrels: Path, run: Path, measures: list[str]) -> dict[str, float]:
    text = _cli("-m", "ir_measures", str(qrels), str(run), *measures, "--places", "12")
    return {m: float(v) for m, v in (line.split("\t") for line in text.splitlines() if line.strip())}


def _rerankkit(run: Path, measures: list[str], *flags: str) -> dict:
    args = ["-m", "rerankkit", "eval", str(run), *flags, "--json"]
    for m in measures:
        args += ["-m", m]
    return json.loads(_cli(*args))


def test_eval_of_a_partial_dl19_run_equals_the_ir_measures_command_line(data_root, tmp_path):
    ds = load_dataset("dl19")
    run = ds.candidates("bm25").head(10)  # 10 of the 43 judged queries
    path = write_run(run, tmp_path / "ten.trec")
    qrels = data_root / "trec-dl19-passage" / "qrels.dl19-passage.txt"
    theirs = _ir_measures(qrels, path, DL_MEASURES)
    ours = _rerankkit(path, DL_MEASURES, "--qrels", str(qrels))
    assert ours["num_queries"] == 43 and ours["missing_queries"] == 33
    for m in DL_MEASURES:
        assert ours["aggregate"][m] == pytest.approx(theirs[m], abs=1e-9), m
    assert round(theirs["nDCG@10"], 4) == 0.1225  # the figure: 10 of 43 queries, the rest 0
    by_name = _rerankkit(path, ["nDCG@10"], "--dataset", "trec-dl-2019/passage")
    assert by_name["aggregate"]["nDCG@10"] == pytest.approx(theirs["nDCG@10"], abs=1e-9)
    # the other convention, on request: the mean over the run's 10 queries
    own = _rerankkit(path, ["nDCG@10"], "--qrels", str(qrels), "--no-missing-as-zero")
    assert own["num_queries"] == 10 and round(own["aggregate"]["nDCG@10"], 4) == 0.5267


def test_eval_of_a_run_missing_a_query_on_small_files(tmp_path):
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("q1 0 a 2\nq1 0 b 0\nq2 0 c 1\nq3 0 d 3\nq3 0 e 1\n")
    path = tmp_path / "run.trec"  # q2 missing; q9 is not judged (left out under either convention)
    path.write_text("q1 Q0 b 1 2.0 t\nq1 Q0 a 2 1.0 t\nq3 Q0 e 1 5.0 t\nq3 Q0 d 2 4.0 t\nq9 Q0 z 1 1.0 t\n")
    measures = ["nDCG@10", "RR(rel=2)@10", "R(rel=2)@100", "P@1"]
    theirs = _ir_measures(qrels, path, measures)
    ours = _rerankkit(path, measures, "--qrels", str(qrels))
    assert ours["num_queries"] == 3 and ours["missing_queries"] == 1
    for m in measures:
        assert ours["aggregate"][m] == pytest.approx(theirs[m], abs=1e-9), m
    assert ours["aggregate"]["RR(rel=2)@10"] == pytest.approx((0.5 + 0 + 0.5) / 3)  # q3's "e" is grade 1
    own = _rerankkit(path, ["RR(rel=2)@10"], "--qrels", str(qrels), "--no-missing-as-zero")
    assert own["aggregate"]["RR(rel=2)@10"] == pytest.approx(0.5) and own["num_queries"] == 2
