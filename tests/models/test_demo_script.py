"""``scripts/demo``, run as the README says: it reranks, evaluates and prints its table, and every nDCG@10 it
prints is the mean over the queries it reranked (its table says "first N queries"), computed here independently
with the ``ir_measures`` command line on qrels cut to those queries."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _ir_measures_mean_over_run_queries(qrels: Path, run: Path, tmp: Path) -> float:
    queries = {line.split()[0] for line in run.read_text().splitlines() if line.strip()}
    cut = tmp / f"{run.stem}.qrels"
    cut.write_text("".join(line for line in qrels.read_text().splitlines(keepends=True)
                           if (line.split() or [""])[0] in queries))
    out = subprocess.run([sys.executable, "-m", "ir_measures", str(cut), str(run), "nDCG@10", "--places", "6"],
                         capture_output=True, text=True, check=True, timeout=120)
    return float(out.stdout.split("\t")[1])


@pytest.mark.timeout(900)
def test_demo_prints_means_over_the_queries_it_reranked(data_root, tmp_path):
    env = {**os.environ, "DEMO_PRESETS": "cosine-minilm:10", "DEMO_QUERIES": "3", "DEMO_OUT": str(tmp_path / "out"),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(["bash", str(REPO / "scripts" / "demo")], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=850)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = dict(re.findall(r"^(BM25 \(first stage\)|cosine-minilm)\s+([0-9.]+)", done.stdout, re.M))
    assert set(printed) == {"BM25 (first stage)", "cosine-minilm"}, done.stdout
    qrels = data_root / "trec-dl19-passage" / "qrels.dl19-passage.txt"
    out = tmp_path / "out"
    assert float(printed["BM25 (first stage)"]) == pytest.approx(
        _ir_measures_mean_over_run_queries(qrels, out / "bm25.run", tmp_path), abs=1e-4)
    assert float(printed["cosine-minilm"]) == pytest.approx(
        _ir_measures_mean_over_run_queries(qrels, out / "cosine-minilm.run", tmp_path), abs=1e-4)
    assert "first 3 queries" in done.stdout
