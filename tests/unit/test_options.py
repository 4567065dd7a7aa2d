"""One way to declare options: every strategy, engine, backend and training option is described; values are
read by one conversion; a misspelt key fails before any model loads, in Python, `--set`, a bench config and a
training config alike, naming the key that was meant."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rerankkit import Doc, Query, Ranking, Reranker, Run, ScoredDoc
from rerankkit.backends import BACKENDS
from rerankkit.backends.base import BackendBase
from rerankkit.backends.fake import OracleBackend
from rerankkit.errors import ConfigError
from rerankkit.options import build_options, describe, option, parse_value
from rerankkit.presets import RERANKER_PRESETS
from rerankkit.retrievers import ENGINES
from rerankkit.strategies import STRATEGIES
from rerankkit.train.config import LoraSettings, TrainConfig

REPO = Path(__file__).resolve().parents[2]


def _declarations():
    out = [(f"strategy {n}", cls.Params) for n, cls in STRATEGIES.items()]
    out += [(f"engine {n}", e.load().Params) for n, e in ENGINES.items()]
    out += [(f"backend {n}", e.load().Options) for n, e in BACKENDS.items()]
    return out + [("training config", TrainConfig), ("training config lora", LoraSettings)]


@pytest.mark.parametrize("owner,cls", _declarations(), ids=lambda x: x if isinstance(x, str) else "")
def test_every_option_has_help_and_a_default_that_passes_its_own_checks(owner, cls):
    infos = describe(cls)
    assert infos, owner
    for info in infos:
        assert info.help.strip(), f"{owner}: option {info.name!r} has no help text"
        if info.choices and info.default is not None:
            assert info.default in info.choices, f"{owner}: {info.name} default {info.default!r} not a choice"
    if not any(i.required for i in infos):
        build_options(cls, {}, owner=owner, label=owner)  # the defaults are valid


def test_parse_value_reads_strings_as_the_declared_type():
    assert parse_value("12", int, "k") == 12 and parse_value("0.5", float, "a") == 0.5
    assert parse_value("off", bool, "b") is False and parse_value("Yes", bool, "b") is True
    assert parse_value("none", int | None, "m") is None and parse_value("", int | None, "m") is None
    assert parse_value("auto", int | str, "t") == "auto" and parse_value("5", int | str, "t") == 5
    assert parse_value("{enable_thinking: false}", dict | None, "d") == {"enable_thinking": False}
    assert parse_value('{"a": 1}', dict, "d") == {"a": 1} and parse_value(3, float, "f") == 3.0
    with pytest.raises(ConfigError, match=r"k: cannot read 'ten' as int"):
        parse_value("ten", int, "k")
    with pytest.raises(ConfigError, match="must be bool"):
        parse_value(1, bool, "b")


def test_choices_bounds_and_unknown_keys_come_from_the_declaration():
    @dataclasses.dataclass
    class P:
        mode: str = option("a", choices=("a", "b"), help="which")
        k: int = option(1, bounds=(1, 5), help="how many")

    assert build_options(P, {"mode": "b", "k": "5"}, owner="thing 'x'", label="x") == P("b", 5)
    with pytest.raises(ConfigError, match=r"x mode must be one of 'a', 'b', not 'c'"):
        build_options(P, {"mode": "c"}, owner="thing 'x'", label="x")
    with pytest.raises(ConfigError, match=r"x k must be between 1 and 5, not 0"):
        build_options(P, {"k": 0}, owner="thing 'x'", label="x")
    with pytest.raises(ConfigError, match=r"unknown option 'mdoe' for thing 'x'; did you mean 'mode'\?"):
        build_options(P, {"mdoe": "a"}, owner="thing 'x'", label="x")


@pytest.fixture
def no_backend_may_load(monkeypatch):
    """Any backend created from here on fails the test: the errors must come before a model loads."""

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"a backend ({type(self).__name__}) was created")

    monkeypatch.setattr(BackendBase, "__init__", refuse)


def test_misspelt_key_in_python(no_backend_may_load):
    with pytest.raises(ConfigError, match=r"unknown option 'methd'.*did you mean 'method'\?"):
        Reranker("prp-smollm2-135m", methd="heapsort")
    with pytest.raises(ConfigError, match=r"did you mean 'dtype'\?"):
        Reranker("prp-smollm2-135m", dtyp="bf16")
    with pytest.raises(ConfigError, match=r"hf dtype must be one of"):
        Reranker("prp-smollm2-135m", dtype="fp64")  # a known key with a bad value: also before loading
    with pytest.raises(ConfigError, match=r"unknown parameter 'kk' for strategy 'pairwise'; did you mean 'k'\?"):
        Reranker("prp-smollm2-135m", **{"params.kk": 3})


def test_misspelt_key_on_the_command_line(no_backend_may_load, tmp_path, capsys):
    from rerankkit.cli.main import main
    from rerankkit.data import write_candidates

    run = Run([Ranking(Query("q1", "cats"), (ScoredDoc(Doc("a", "cats purr"), 1.0), ScoredDoc(Doc("b", "dogs"), 0.0)))])
    cands = write_candidates(run, tmp_path / "c.jsonl")
    argv = ["rerank", "prp-smollm2-135m", "--candidates", str(cands), "-o", str(tmp_path / "r.run"), "--no-progress"]
    assert main([*argv, "--set", "methd=heapsort"]) == 2
    assert "did you mean 'method'?" in capsys.readouterr().err
    assert main(["prompt", "render", "prp-smollm2-135m", "-q", "q", "-d", "d", "--set", "batch_sise=4"]) == 2
    assert "did you mean 'batch_size'?" in capsys.readouterr().err
    assert not (tmp_path / "r.run").exists()


def test_misspelt_key_in_a_bench_config(no_backend_may_load, tmp_path, capsys):
    from rerankkit.bench import load_config
    from rerankkit.cli.main import main

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(textwrap.dedent("""
        datasets: [dl19]
        defaults: {candidates: bm25, depth: 5, queries: 2}
        conditions:
          - reranker: prp-smollm2-135m
            overrides: {methd: heapsort}
    """).lstrip())
    with pytest.raises(ConfigError, match=rf"^{cfg}:5: .*did you mean 'method'\?"):
        load_config(cfg)
    assert main(["bench", str(cfg), "--out", str(tmp_path / "out")]) == 2
    assert "did you mean 'method'?" in capsys.readouterr().err
    cfg.write_text(cfg.read_text().replace("reranker: prp-smollm2-135m\n    overrides: {methd: heapsort}",
                                           "retriever: bm25\n    retriever_overrides: {k3: 1.2}")
                   .replace("candidates: bm25, ", ""))
    with pytest.raises(ConfigError, match=r"unknown parameter 'k3' for retriever 'bm25'"):
        load_config(cfg)


def test_misspelt_key_in_a_training_config(no_backend_may_load, tmp_path, capsys):
    from rerankkit.cli.main import main
    from rerankkit.train import train
    from rerankkit.train.config import config_from_dict

    base = {"preset": "pointwise-smollm2-135m", "output_dir": str(tmp_path / "out")}
    with pytest.raises(ConfigError, match=r"unknown field 'learnin_rate'.*did you mean 'learning_rate'\?"):
        config_from_dict({**base, "learnin_rate": 1e-4})
    with pytest.raises(ConfigError, match=r"unknown field 'rr' for .*lora; did you mean 'r'\?"):
        config_from_dict({**base, "lora": {"rr": 8}})
    with pytest.raises(ConfigError, match=r"unknown option 'mdoe'.*did you mean 'mode'"):
        train(config_from_dict({**base, "overrides": {"mdoe": "expected"}}), progress=False)
    with pytest.raises(ConfigError, match=r"cannot be fine-tuned; strategies that can: first, pointwise"):
        train(config_from_dict({**base, "preset": "prp-smollm2-135m"}), progress=False)
    cfg = tmp_path / "train.yaml"
    cfg.write_text(f"preset: pointwise-smollm2-135m\noutput_dir: {tmp_path / 'out'}\n")
    assert main(["train", str(cfg), "--set", "overrides.mdoe=expected"]) == 2
    assert "did you mean 'mode'" in capsys.readouterr().err
    assert main(["train", str(cfg), "--set", "max_step=3"]) == 2
    assert "did you mean 'max_steps'?" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_train_set_values_are_read_by_the_declared_types():
    from rerankkit.train.config import config_from_dict

    cfg = config_from_dict({"preset": "p", "output_dir": "o", "max_steps": "10", "negatives": "none",
                            "teacher_run": "t.run", "lora": "{r: 8}", "hard_positives": "false"})
    assert (cfg.max_steps, cfg.negatives, cfg.lora.r, cfg.hard_positives) == (10, None, 8, False)


def test_a_ready_backend_instance_takes_no_backend_options():
    oracle = OracleBackend({"a": 1.0})
    with pytest.raises(ConfigError, match=r"'dtype' do nothing with a ready backend instance"):
        Reranker("pointwise-smollm2-135m", backend_instance=oracle, dtype="bf16")
    r = Reranker("pointwise-smollm2-135m", backend_instance=oracle, mode="expected")
    preset = RERANKER_PRESETS.get("pointwise-smollm2-135m")
    assert r.spec.backend_options == preset.backend_options  # the preset's, not silently extended


def test_rerank_many_takes_plain_strings_like_rerank():
    r = Reranker("pointwise-yes-no", backend_instance=OracleBackend({"cats purr": 1.0, "dogs bark": 0.0}))
    one = r.rerank("cats?", ["dogs bark", "cats purr"])
    many = r.rerank_many([("cats?", ["dogs bark", "cats purr"]), (Query("x", "dogs?"), [Doc("z", "dogs bark")])])
    assert [m.query.qid for m in many] == ["q0", "x"]
    assert list(many[0].docids) == list(one.docids) == ["1", "0"]


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO), **env})


def test_a_bad_presets_path_is_reported_where_presets_are_used_not_at_import(tmp_path):
    bad = str(tmp_path / "missing.toml")
    p = _run("import sys, rerankkit\n"
             "from rerankkit import Reranker, RerankerSpec\n"
             "Reranker(RerankerSpec('pointwise', 'yes-no', 'oracle'))  # no preset needed: fine\n"
             "try:\n    Reranker('pointwise-smollm2-135m')\nexcept rerankkit.ConfigError as e:\n    print(e)\n",
             RERANKKIT_PRESETS=bad)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == f"$RERANKKIT_PRESETS: cannot read presets file {bad}: [Errno 2] No such file or " \
                               f"directory: '{bad}'"
    doctor = _run("from rerankkit.cli.main import main; raise SystemExit(main(['doctor', '--json']))",
                  RERANKKIT_PRESETS=bad)
    assert doctor.returncode == 0, doctor.stderr
    import json

    report = json.loads(doctor.stdout)
    assert report["presets"]["presets"]["error"].startswith("$RERANKKIT_PRESETS: cannot read presets file")
    assert report["presets"]["retrievers"]["count"] > 0 and report["presets"]["datasets"]["count"] > 0
