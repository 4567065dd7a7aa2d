"""Benchmark configs are validated before any model loads; errors name the file, the line and close matches."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rerankkit.bench import load_config
from rerankkit.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "cfg.yaml"
    p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return p


GOOD = """
name: demo
datasets: [dl19, trec-dl-2020/passage]
measures: [nDCG@10]
defaults: {candidates: bm25, depth: 20, queries: 5}
conditions:
  - {name: bm25, reranker: none}
  - reranker: pointwise-smollm2-135m
    overrides: {dtype: bf16, threads: 1}
    expected:
      dl19: {nDCG@10: 0.5, RR@10: {value: 0.7, tolerance: 0.05}}
"""


def test_a_good_config_resolves_names_and_expectations(tmp_path):
    cfg = load_config(_write(tmp_path, GOOD))
    assert cfg.datasets == ("trec-dl-2019/passage", "trec-dl-2020/passage")
    assert cfg.measures == ("nDCG@10", "RR@10")  # measures named by expectations are added
    bm25, pw = cfg.conditions
    assert bm25.reranker is None and pw.name == "pointwise-smollm2-135m" and pw.depth == 20 and pw.queries == 5
    assert pw.overrides == {"dtype": "bf16", "threads": 1}
    [(_, e1), (_, e2)] = cfg.expectations()
    assert (e1.dataset, e1.measure, e1.value, e1.tolerance, e1.line) == ("trec-dl-2019/passage", "nDCG@10", 0.5,
                                                                         0.01, 10)
    assert (e2.measure, e2.tolerance) == ("RR@10", 0.05)
    assert cfg.baseline == "bm25"  # the first condition unless the config names one
    assert load_config(_write(tmp_path, "baseline: pointwise-smollm2-135m\n" + GOOD)).baseline == "pointwise-smollm2-135m"
    assert [f"{c.name}/{cfg.label(d)}" for c, d in cfg.pairs(["*/dl19"])] == ["bm25/dl19",
                                                                             "pointwise-smollm2-135m/dl19"]
    assert len(cfg.pairs(["pointwise-*"])) == 2 and len(cfg.pairs(["bm25/trec-dl-2020/passage"])) == 1
    with pytest.raises(ConfigError, match="matches no run"):
        cfg.pairs(["nothing"])


@pytest.mark.parametrize("old, new, line, expect", [
    ("reranker: pointwise-smollm2-135m", "reranker: pointwise-smolm2-135m", 7,
     r"unknown reranker preset 'pointwise-smolm2-135m'; did you mean 'pointwise-smollm2-135m'"),
    ("datasets: [dl19, trec-dl-2020/passage]", "datasets: [dl19,\n  trec-dl-2002/passage]", 3,
     r"unknown dataset 'trec-dl-2002/passage'; did you mean 'trec-dl-2020/passage'"),
    ("      dl19: {nDCG", "      dl91: {nDCG", 10, r"unknown dataset 'dl91'; did you mean 'dl19'"),
    ("overrides: {dtype: bf16, threads: 1}", "overrides: {dtype: bf16, thread: 1}", 8,
     r"backend 'hf' .* has no option 'thread'; did you mean 'threads'"),
    ("overrides: {dtype: bf16, threads: 1}", "overrides: {dtype: bf16, mode: sideways}", 8,
     r"pointwise mode must be"),
    ("    expected:", "    expect:", 9, r"unknown condition key 'expect'; did you mean 'expected'"),
    ("measures: [nDCG@10]", "measures: [nDCG@10, nDGC@10]", 3, r"unknown measure 'nDGC@10'"),
    ("nDCG@10: 0.5,", "nDCG@10: 71.83,", 10, r"write scores as fractions \(0.7183, not 71.83\)"),
    ("candidates: bm25,", "candidates: bm52,", 4, r"has no candidate source 'bm52'; did you mean 'bm25'"),
    ("- {name: bm25, reranker: none}", "- {name: bm 25, reranker: none}", 6, r"must be one word"),
    ("  - {name: bm25, reranker: none}", "  - {name: bm25, reranker: none}\n  - {name: bm25, reranker: none}", 7,
     r"two conditions are named 'bm25'"),
    ("name: demo", "name: demo\nbaseline: bm52", 2, r"baseline 'bm52' is not a condition; did you mean 'bm25'"),
])
def test_bad_names_are_rejected_with_line_and_close_matches(tmp_path, old, new, line, expect):
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ConfigError, match=expect) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}:{line}: "), str(err.value)


def test_yaml_syntax_errors_name_the_line(tmp_path):
    path = _write(tmp_path, "datasets: [dl19\nconditions:\n  - {reranker: none}\n")
    with pytest.raises(ConfigError, match=r"cfg.yaml:\d+: not valid YAML"):
        load_config(path)
    path = _write(tmp_path, "datasets: [dl19]\ndatasets: [dl20]\nconditions: [{reranker: none}]\n")
    with pytest.raises(ConfigError, match=r"cfg.yaml:2: duplicate key 'datasets' \(first on line 1\)"):
        load_config(path)


def test_beir_without_a_first_stage_is_rejected(tmp_path):
    path = _write(tmp_path, "datasets: [beir/scifact]\nconditions:\n  - {reranker: none}\n")
    with pytest.raises(ConfigError, match=r"ships no candidate lists; give the condition a 'retriever'"):
        load_config(path)


def test_validation_loads_no_model_and_the_cli_exits_2(tmp_path):
    good = _write(tmp_path, GOOD)
    code = ("import sys; from rerankkit.bench import load_config; load_config(sys.argv[1]); "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(good)], capture_output=True, text=True, cwd=REPO,
                         env=_env(), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.lstrip("\n").replace("pointwise-smollm2-135m", "pointwise-smollm-135m"), encoding="utf-8")
    cli = subprocess.run([sys.executable, "-m", "rerankkit.cli.main", "bench", str(bad)], capture_output=True,
                         text=True, cwd=REPO, env=_env(), timeout=120)
    assert cli.returncode == 2
    assert f"{bad}:7: unknown reranker preset 'pointwise-smollm-135m'; did you mean 'pointwise-smollm2-135m'" \
        in cli.stderr


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(REPO)}


def test_shipped_configs_are_valid():
    for path in sorted((REPO / "eval" / "configs").glob("*.yaml")):
        try:
            cfg = load_config(path)
        except ConfigError as exc:
            if "no retrieval layer" in str(exc):
                continue  # beir.yaml needs rerankkit.retrievers (issue 3)
            raise
        assert cfg.pairs()


def test_retriever_presets_are_checked(tmp_path):
    import importlib

    body = "datasets: [beir/scifact]\ndefaults: {{k: 100}}\nconditions:\n  - {{reranker: none, retriever: {name}}}\n"
    try:
        has_layer = hasattr(importlib.import_module("rerankkit.retrievers"), "RETRIEVER_PRESETS")
    except ModuleNotFoundError:
        has_layer = False
    path = _write(tmp_path, body.format(name="bm52"))
    if not has_layer:
        with pytest.raises(ConfigError, match=r"cfg.yaml:4: retriever 'bm52': this rerankkit has no retrieval layer"):
            load_config(path)
        return
    with pytest.raises(ConfigError, match=r"cfg.yaml:4: unknown retriever preset 'bm52'; did you mean 'bm25'"):
        load_config(path)
    cfg = load_config(_write(tmp_path, body.format(name="bm25")))
    assert cfg.conditions[0].retriever == "bm25" and cfg.conditions[0].name == "bm25"
