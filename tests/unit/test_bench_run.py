"""Benchmark runs end to end on real DL19 data with a model-free backend: accounting, resume, reports, checks."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rerankkit.bench import check, load_config, read_results, run_bench, write_report
from rerankkit.cli.main import main

REPO = Path(__file__).resolve().parents[2]
PRESETS = """
[pointwise-random]
description = "pointwise yes/no over reproducible pseudo-random answers (no model)"
paper = "none: a model-free test preset"
strategy = "pointwise"
template = "yes-no"
backend = "random"
model = "random"
[pointwise-random.backend_options]
seed = 7
"""


def _config(tmp_path: Path, body: str, name: str = "cfg.yaml", **fmt: object) -> Path:
    (tmp_path / "presets.toml").write_text(PRESETS, encoding="utf-8")
    p = tmp_path / name
    p.write_text(textwrap.dedent(body).lstrip("\n").format(**fmt), encoding="utf-8")
    return p


QUICK = """
name: quick-random
presets: [presets.toml]
datasets: [dl19]
measures: [nDCG@10, RR@10]
cache_chunk: {chunk}
defaults: {{candidates: bm25, k: 20, depth: 20, queries: 10}}
conditions:
  - {{name: bm25, reranker: none}}
  - reranker: pointwise-random
    overrides: {{delay: {delay}}}
"""


@pytest.fixture
def quick(tmp_path, data_root):
    return _config(tmp_path, QUICK, chunk=16, delay=0.0)


def test_end_to_end_accounting_outputs_and_free_rerun(quick, tmp_path):
    cfg = load_config(quick)
    out = tmp_path / "out"
    first = run_bench(cfg, out, progress=False)
    bm25, pw = first
    assert bm25["model_calls"] == 0 and "rerank" not in bm25["stages"]
    assert pw["queries"] == 10 and pw["requests"] == 200  # 10 queries x 20 candidates, one prompt each
    assert pw["model_calls"] == 200 and pw["cached_calls"] == 0
    assert pw["prompt_tokens"] > 0 and pw["generated_tokens"] == 0 and pw["wall_s"] > 0
    assert pw["per_query"]["requests"] == 20 and pw["per_query"]["prompt_tokens"] == pw["prompt_tokens"] / 10
    assert set(pw["metrics"]) == {"nDCG@10", "RR@10"} and pw["metrics"] != bm25["metrics"]
    assert pw["spec"]["backend"] == "random" and pw["versions"]["rerankkit"] and pw["stages"]["retrieve"]["wall_s"] >= 0
    run_file = out / "runs" / "pointwise-random.dl19.trec"
    lines = run_file.read_text().splitlines()
    assert len(lines) == 200 and lines[0].split()[5] == "pointwise-random"
    assert (out / "runs" / "pointwise-random.dl19.trec.spec.toml").exists()
    per_query = [json.loads(x) for x in (out / "runs" / "pointwise-random.dl19.queries.jsonl").read_text().splitlines()]
    assert len(per_query) == 10 and all(q["requests"] == 20 for q in per_query)

    again = run_bench(cfg, out, progress=False)  # a rerun of a finished config makes no model call
    assert again[1]["model_calls"] == 0 and again[1]["cached_calls"] == 200
    assert again[1]["metrics"] == pw["metrics"] and again[0]["metrics"] == bm25["metrics"]
    assert again[1]["per_query"]["prompt_tokens"] == pw["per_query"]["prompt_tokens"]
    assert [r["condition"] for r in read_results(out)] == ["bm25", "pointwise-random"]
    assert len((out / "history.jsonl").read_text().splitlines()) == 4

    paths = write_report(cfg, out)
    md = paths["md"].read_text()
    assert "| pointwise-random | dl19 | 10 |" in md and "![nDCG@10 vs cost](cost.png)" in md
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = paths["html"].read_text()
    assert "data:image/png;base64," in html and "src='cost.png'" not in html

    # per query against the baseline (the first condition, bm25): counts and differences from the query files
    from rerankkit.bench.compare import against_baseline

    bm25_q = {json.loads(x)["qid"]: json.loads(x) for x in (out / "runs" / "bm25.dl19.queries.jsonl").read_text().splitlines()}
    pw_q = {q["qid"]: q for q in per_query}
    rows = {r.measure: r.result for r in against_baseline(cfg, read_results(out), out, resamples=200)}
    d = [pw_q[q]["nDCG@10"] - bm25_q[q]["nDCG@10"] for q in pw_q]
    ndcg = rows["nDCG@10"]
    assert (ndcg.wins, ndcg.ties, ndcg.losses) == (sum(x > 1e-9 for x in d), sum(abs(x) <= 1e-9 for x in d),
                                                   sum(x < -1e-9 for x in d))
    assert ndcg.n == 10 and ndcg.diff == pytest.approx(pw["metrics"]["nDCG@10"] - bm25["metrics"]["nDCG@10"])
    assert "## Against the baseline (bm25)" in md and "| pointwise-random | dl19 | RR@10 |" in md
    assert "Against the baseline (bm25)" in html


def test_check_fails_on_a_wrong_expectation_and_passes_on_the_right_one(tmp_path, data_root, capsys):
    # BM25 on all 43 DL19 queries reproduces Pyserini's published 0.5058; the reranker's value comes from a run
    body = """
    presets: [presets.toml]
    datasets: [dl19]
    conditions:
      - name: bm25
        reranker: none
        expected: {{dl19: {{nDCG@10: {bm25}}}}}
      - reranker: pointwise-random
        queries: 10
        depth: 20
        expected: {{dl19: {{nDCG@10: {{value: {pw}, tolerance: 0.0001}}}}}}
    """
    out = tmp_path / "out"
    probe = _config(tmp_path, body, "probe.yaml", bm25=0.45, pw=0.5)
    assert main(["bench", str(probe), "--out", str(out), "--no-progress", "--check"]) == 1
    text = capsys.readouterr().out
    assert "FAIL" in text and "0 of 2 expectations met" in text
    actual = read_results(out)[1]["metrics"]["nDCG@10"]
    right = _config(tmp_path, body, "right.yaml", bm25=0.5058, pw=round(actual, 5))
    assert main(["bench", str(right), "--out", str(out), "--no-progress", "--check"]) == 0
    assert "2 of 2 expectations met" in capsys.readouterr().out
    wrong = _config(tmp_path, body, "wrong.yaml", bm25=0.5058, pw=round(actual + 0.01, 5))
    assert main(["bench", str(wrong), "--out", str(out), "--report-only", "--check"]) == 1
    assert "1 of 2 expectations met; 1 not met" in capsys.readouterr().out
    rows = check(load_config(wrong), read_results(out))
    assert [r.status for r in rows] == ["ok", "FAIL"]
    assert "FAIL (-0.0100)" in (out / "report.md").read_text()


def test_queries_missing_from_a_first_stage_score_0_unless_the_config_says_otherwise(tmp_path, data_root):
    from rerankkit.data import load_dataset, write_candidates
    from rerankkit.eval import evaluate

    ds = load_dataset("dl19")
    partial = ds.candidates("bm25").head(10).top(20)  # a candidate file that covers 10 of the 43 judged queries
    write_candidates(partial, tmp_path / "ten.jsonl")
    body = """
    datasets: [dl19]
    measures: [nDCG@10, RR(rel=2)@10]
    {extra}
    conditions:
      - {{name: ten, reranker: none, candidates: ten.jsonl}}
      - {{name: first5, reranker: none, queries: 5}}
    """
    ten, first5 = run_bench(load_config(_config(tmp_path, body, "zero.yaml", extra="")), tmp_path / "zero",
                            progress=False)
    assert ten["metrics"]["nDCG@10"] == pytest.approx(evaluate(partial, ds, missing_as_zero=True)["nDCG@10"])
    assert ten["evaluation"] == {"judged_queries": 43, "missing_queries": 33, "missing_as_zero": True}
    # a condition that selects its first N queries is scored over those N
    assert first5["evaluation"] == {"judged_queries": 5, "missing_queries": 0, "missing_as_zero": True}
    five = ds.candidates("bm25").head(5)
    assert first5["metrics"]["nDCG@10"] == pytest.approx(evaluate(five, ds, queries=list(five))["nDCG@10"])
    [own] = run_bench(load_config(_config(tmp_path, body, "own.yaml", extra="missing_as_zero: false")),
                      tmp_path / "own", only=["ten"], progress=False)
    assert own["evaluation"]["judged_queries"] == 10 and own["evaluation"]["missing_queries"] == 0
    assert own["metrics"]["nDCG@10"] == pytest.approx(ten["metrics"]["nDCG@10"] * 43 / 10)


def test_only_runs_the_selected_pairs(quick, tmp_path):
    out = tmp_path / "out"
    recs = run_bench(load_config(quick), out, only=["bm25"], progress=False)
    assert [r["condition"] for r in recs] == ["bm25"] and not (out / "runs" / "pointwise-random.dl19.trec").exists()


def test_kill_9_then_resume_redoes_only_unfinished_calls(tmp_path, data_root):
    ref_dir, killed_dir = tmp_path / "ref", tmp_path / "killed"
    ref_dir.mkdir()
    killed_dir.mkdir()
    reference = run_bench(load_config(_config(ref_dir, QUICK, chunk=16, delay=0.0)), ref_dir / "out",
                          progress=False)
    total = reference[1]["model_calls"]
    assert total == 200
    cfg = _config(killed_dir, QUICK, chunk=16, delay=0.01)  # delay is not part of the answer: same cache keys
    out = killed_dir / "out"
    cmd = [sys.executable, "-m", "rerankkit.cli.main", "bench", str(cfg), "--out", str(out), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    db = out / "cache.sqlite"
    stored = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        stored = _count(db)
        if stored >= 48:  # three batches of 16 committed: kill it mid-run
            break
        time.sleep(0.01)
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    done = _count(db)  # answers that were finished (committed) before the kill
    assert 48 <= done < total
    assert [r["condition"] for r in read_results(out)] == ["bm25"]  # the reranker's line was never written
    resumed = run_bench(load_config(cfg), out, progress=False)
    assert resumed[1]["model_calls"] == total - done
    assert resumed[1]["cached_calls"] == done
    assert resumed[1]["metrics"] == reference[1]["metrics"]
    ref_run = (ref_dir / "out" / "runs" / "pointwise-random.dl19.trec").read_text()
    assert (out / "runs" / "pointwise-random.dl19.trec").read_text() == ref_run


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0])
    except sqlite3.OperationalError:  # the table is not created yet
        return 0
