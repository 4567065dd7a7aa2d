"""Hostile arguments and files through the command line: exit 0 with output, or exit 2 with one error line.

In-process (``rerankkit.cli.main.main``) for speed: ``prompt render`` with hostile queries and documents,
``rerank`` (over the model-free random backend) and ``eval`` over hostile candidate and run files,
``train`` over hostile YAML; plus one real process whose arguments are bytes that are not UTF-8 (Python
hands them over as lone surrogates). An exception escaping ``main`` fails the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hostile import hostile_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerankkit.cli.main import main

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
ROOT = Path(__file__).resolve().parents[2]
_n = iter(range(10**9))


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's usage errors: exit 2 with one "error:" line
        rc = exc.code
        out, err = capsys.readouterr()
        assert rc == 2 and "error:" in err and "Traceback" not in err, err
        return rc, out, err
    out, err = capsys.readouterr()
    assert rc in (0, 2), (rc, err)
    if rc == 2:
        lines = [ln for ln in err.splitlines() if ln.startswith("rerankkit: error:")]
        assert len(lines) == 1 and "Traceback" not in err, err
    return rc, out, err


@FUZZ
@given(query=hostile_text(), docs=st.lists(hostile_text(), min_size=1, max_size=3))
def test_prompt_render_messages(capsys, query, docs):
    argv = ["prompt", "render", "pointwise-yes-no", "--messages", f"--query={query}"]
    argv += [f"--doc={d}" for d in docs]  # the = form: a value may start with "-"
    rc, out, _ = run_cli(capsys, argv)
    assert rc == 0 and out.startswith("=== request 1/")
    assert not any(0xD800 <= ord(c) <= 0xDFFF for c in out)  # lone surrogates were replaced


HIT = st.fixed_dictionaries({"docid": st.one_of(hostile_text(max_size=6), st.integers()),
                             "content": st.one_of(hostile_text(), st.integers(), st.none())})
RECORD = st.fixed_dictionaries({"query": st.one_of(hostile_text(), st.integers()), "hits": st.lists(HIT, max_size=4)},
                               optional={"qid": st.one_of(hostile_text(max_size=6), st.integers(), st.none())})


@FUZZ
@given(records=st.lists(RECORD, min_size=1, max_size=3), preset=st.sampled_from(
    ["pointwise-yes-no", "listwise-smollm2-135m", "setwise-smollm2-135m"]))
def test_rerank_hostile_candidate_files(capsys, tmp_path_factory, records, preset):
    tmp = tmp_path_factory.mktemp("cli")
    cand = tmp / "cand.jsonl"
    cand.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    out_run = tmp / "out.run"
    rc, _, err = run_cli(capsys, ["rerank", preset, "--candidates", str(cand), "-o", str(out_run),
                                  "--set", "backend=random", "--no-progress"])
    if rc == 0:
        lines = out_run.read_text(encoding="utf-8").splitlines()
        assert len(lines) == sum(len(r["hits"]) for r in records)  # every candidate is written, none dropped
    else:
        assert str(cand) in err or "cannot be written" in err or "duplicate" in err, err


RUN_LINE = st.one_of(
    st.builds(lambda q, d, r, s: f"{q} Q0 {d} {r} {s} tag", st.sampled_from(["1", "2"]), st.sampled_from(["d1", "d2", "d3"]),
              st.integers(0, 5), st.floats(allow_nan=True).map(repr)),
    hostile_text().map(lambda s: s.replace("\n", " ")),
)


@FUZZ
@given(lines=st.lists(RUN_LINE, max_size=6), bom=st.booleans())
def test_eval_hostile_run_files(capsys, tmp_path_factory, lines, bom):
    tmp = tmp_path_factory.mktemp("cli-eval")
    (tmp / "ds").mkdir()
    (tmp / "ds" / "qrels.txt").write_text("1 0 d1 1\n2 0 d2 2\n", encoding="utf-8")
    run = tmp / "x.run"
    run.write_bytes((b"\xef\xbb\xbf" if bom else b"") + "\n".join(lines).encode("utf-8", "surrogatepass"))
    rc, out, err = run_cli(capsys, ["eval", str(run), "--dataset", str(tmp / "ds"), "-m", "nDCG@10"])
    if rc == 2:
        assert str(run) in err or "no quer" in err or "judged" in err, err


def test_train_with_a_hostile_config_is_a_one_line_error(capsys, tmp_path):
    for i, text in enumerate(["[1, 2]", "preset: a\npreset: b\noutput_dir: o\n", "\x00", "preset: [\n",
                              "preset: p\noutput_dir: o\nmax_steps: ten\n", "preset: p\noutput_dir: o\nlora: 3\n"]):
        cfg = tmp_path / f"c{i}.yaml"
        cfg.write_text(text, encoding="utf-8")
        rc, _, err = run_cli(capsys, ["train", str(cfg)])
        assert rc == 2, err


def test_arguments_that_are_not_utf8(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable.encode(), b"-m", b"rerankkit.cli.main", b"prompt", b"render", b"pointwise-yes-no",
            b"--messages", b"--query", b"caf\xe9 \xff", b"--doc", b"\xed\xa0\x80 text"]
    p = subprocess.run(args, capture_output=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr.decode("utf-8", "replace")
    assert "\ufffd".encode() in p.stdout and b"Traceback" not in p.stderr
