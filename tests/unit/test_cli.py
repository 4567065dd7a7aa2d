"""The command line, end to end through ``main([...])`` and one subprocess, with the oracle backend."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import tomli_w

from rerankkit.cli.main import COMMANDS, main
from rerankkit.data import read_run, write_candidates
from rerankkit.eval import evaluate
from rerankkit.types import Doc, Qrel, Query, Ranking, Run, ScoredDoc

QUERIES = {"q1": "what do cats eat", "q2": "how tall is mount everest"}
DOCS = {
    "q1": [("a", "Mount Everest is 8849 m tall.", 0), ("b", "Cats eat meat: they are obligate carnivores.", 3),
           ("c", "Cat food contains fish and meat.", 2), ("d", "The moon orbits the earth.", 0)],
    "q2": [("e", "Cats sleep a lot.", 0), ("f", "Everest's summit is 8,849 metres above sea level.", 3),
           ("g", "K2 is the second highest mountain.", 1)],
}


@pytest.fixture(autouse=True)
def _isolated_presets(monkeypatch):
    """Presets registered by `--presets` in one test must not leak into the global registry."""
    from rerankkit.presets import RERANKER_PRESETS

    monkeypatch.setattr(RERANKER_PRESETS, "_items", dict(RERANKER_PRESETS._items))
    monkeypatch.setattr(RERANKER_PRESETS, "_aliases", dict(RERANKER_PRESETS._aliases))


@pytest.fixture()
def setup(tmp_path):
    """Candidates in BM25-like (wrong) order, qrels, and a presets file pointing a preset at the oracle."""
    run = Run(Ranking(Query(q, QUERIES[q]), tuple(ScoredDoc(Doc(d, t), float(-i)) for i, (d, t, _) in enumerate(docs)))
              for q, docs in DOCS.items())
    cands = write_candidates(run, tmp_path / "cands.jsonl")
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("".join(f"{q} 0 {d} {g}\n" for q, docs in DOCS.items() for d, _, g in docs))
    relevance = {t: g for docs in DOCS.values() for _, t, g in docs}
    presets = tmp_path / "presets.toml"
    presets.write_text(tomli_w.dumps({"oracle-yes-no": {
        "strategy": "pointwise", "template": "yes-no", "backend": "oracle", "model": "oracle",
        "description": "pointwise yes/no answered by an oracle", "paper": "none",
        "backend_options": {"relevance": relevance}}}))
    return tmp_path, cands, qrels, presets


def test_commands_are_listed_one_module_each():
    assert COMMANDS[:6] == ["rerank", "evaluation", "presets", "prompt", "datasets", "doctor"]


def test_rerank_then_eval(setup, capsys):
    tmp, cands, qrels, presets = setup
    out = tmp / "out" / "run.txt"
    assert main(["rerank", "oracle-yes-no", "--presets", str(presets), "--candidates", str(cands),
                 "--depth", "3", "-o", str(out), "--no-progress"]) == 0
    run = read_run(out)
    assert run["q1"].docids == ["b", "c", "a", "d"]  # first 3 reranked by the oracle, "d" below depth stays last
    assert run["q2"].docids == ["f", "g", "e"]
    spec = tomllib.loads(Path(f"{out}.spec.toml").read_text())
    assert spec["backend"] == "oracle" and spec["strategy"] == "pointwise"
    meta = json.loads(Path(f"{out}.meta.json").read_text())
    assert meta["depth"] == 3 and meta["usage"]["model_calls"] == 6 and meta["tag"] == "oracle-yes-no"
    capsys.readouterr()
    assert main(["eval", str(out), "--qrels", str(qrels), "-m", "nDCG@10", "-m", "P@1", "--json", "--per-query"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["aggregate"]["P@1"] == 1.0 and set(res["per_query"]) == {"q1", "q2"}
    qr = [Qrel(q, d, g) for q, docs in DOCS.items() for d, _, g in docs]
    assert res["aggregate"]["nDCG@10"] == evaluate(run, qr, ["nDCG@10"]).aggregate["nDCG@10"]
    assert main(["eval", str(out), "--qrels", str(qrels)]) == 0
    assert "nDCG@10" in capsys.readouterr().out


def test_rerank_queries_limit_and_set_override(setup):
    tmp, cands, _, presets = setup
    out = tmp / "r.txt"
    assert main(["rerank", "oracle-yes-no", "--presets", str(presets), "--candidates", str(cands), "--queries", "1",
                 "--set", "mode=expected", "--set", "backend.seed=3", "-o", str(out), "--no-progress"]) == 0
    assert list(read_run(out)) == ["q1"]
    spec = tomllib.loads(Path(f"{out}.spec.toml").read_text())
    assert spec["params"] == {"mode": "expected"} and spec["backend_options"]["seed"] == "3"


def test_errors_are_one_line_with_exit_code_2(setup, capsys):
    tmp, cands, _, presets = setup
    assert main(["rerank", "oracle-yes-nop", "--presets", str(presets), "--candidates", str(cands),
                 "-o", str(tmp / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rerankkit: error: unknown reranker preset 'oracle-yes-nop'; did you mean 'oracle-yes-no'")
    assert err.count("\n") == 1
    assert main(["rerank", "oracle-yes-no", "--presets", str(presets), "--candidates", str(cands),
                 "--set", "mode=sideways", "-o", str(tmp / "x")]) == 2
    assert "mode" in capsys.readouterr().err
    assert main(["eval", str(tmp / "nothing.txt"), "--qrels", str(cands)]) == 2
    assert capsys.readouterr().err == f"rerankkit: error: no such file: {tmp / 'nothing.txt'}\n"
    (tmp / "run.txt").write_text("q1 Q0 a 1 1.0 t\n")
    assert main(["eval", str(tmp / "run.txt"), "--dataset", "beir/scifakt"]) == 2
    assert "did you mean 'beir/scifact'" in capsys.readouterr().err


def test_subprocess_error_has_no_traceback(tmp_path):
    p = subprocess.run([sys.executable, "-m", "rerankkit", "show", "pointwise-smolm2"], capture_output=True, text=True,
                       env={**__import__("os").environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines() == [p.stderr.strip()] and "pointwise-smollm2-135m" in p.stderr


def test_list_and_show(setup, capsys):
    _, _, _, presets = setup
    assert main(["list", "--json", "--presets", str(presets)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["oracle-yes-no"]["backend"] == "oracle" and "pointwise-smollm2-135m" in data
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "pointwise-smollm2-135m" in out and "packaged GGUF" in out
    assert main(["show", "pointwise-smollm2-135m"]) == 0
    spec = tomllib.loads(capsys.readouterr().out)
    assert spec["model"] == "packaged:smollm2-135m-instruct" and spec["paper"] and spec["description"]


def test_prompt_render_prints_what_the_backend_sees(setup, capsys):
    _, _, _, presets = setup
    assert main(["prompt", "render", "oracle-yes-no", "--presets", str(presets), "--query", "what do cats eat",
                 "--doc", "Cats eat meat.", "--doc", "Dogs bark."]) == 0
    out = capsys.readouterr().out
    assert out.count("=== request") == 2 and "Cats eat meat." in out and "Dogs bark." in out
    assert "what do cats eat" in out and "'Yes'" in out
    assert main(["prompt", "render", "pointwise-smollm2-135m", "--messages", "-q", "qq", "-d", "dd"]) == 0
    out = capsys.readouterr().out
    assert "--- user" in out and "qq" in out and "dd" in out


def test_datasets_and_doctor(capsys, tmp_path):
    assert main(["datasets", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} >= {"trec-dl-2019/passage", "beir/scifact", "bright/leetcode", "noveleval"}
    (tmp_path / "c.jsonl").write_text('{"id": "a", "text": "alpha"}\n')
    assert main(["datasets", "info", str(tmp_path / "c.jsonl"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["kind"], info["available"], info["corpus"], info["queries"]) == ("local", True, True, None)
    assert main(["datasets", "info", "beir/arguana", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["url"].endswith("arguana.zip") and info["citation"]
    assert main(["doctor", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["python"] == sys.version.split()[0] and "hf" in rep["extras"] and "data" in rep
    assert set(rep["packaged_models"]) >= {"smollm2-135m-instruct"}
    if rep["torch"]:  # what auto padding resolves to goes with what auto dtype resolves to
        from rerankkit.backends.hf import default_pad_multiple

        device = "cuda" if rep["torch"]["cuda"] else "cpu"
        assert rep["torch"]["pad_multiple_auto"] == default_pad_multiple(device, rep["torch"]["dtype_auto"]["dtype"])
    from rerankkit.backends.vllm_engine import vllm_build

    build = vllm_build()  # this environment's vLLM build, as doctor reports it (none in the main venv)
    assert rep["vllm"] == {"build": build and build[0], "distribution": build and build[1], "version": build and build[2]}
    assert main(["doctor"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("vllm "))
    assert ("not installed" in line) if build is None else (f"({build[0]} build)" in line)


def test_rerank_from_a_dataset(data_root, tmp_path):
    """The real DL19 BM25 candidates, reranked by an oracle that knows the NIST grades."""
    from rerankkit.data import load_dataset

    ds = load_dataset("trec-dl-2019/passage")
    grade = {(q.qid, q.docid): q.relevance for q in ds.qrels()}
    cands = ds.candidates("bm25").head(3)
    rel: dict[str, int] = {}
    for qid, r in cands.items():
        for sd in r.docs[:20]:
            rel[sd.doc.text] = max(rel.get(sd.doc.text, 0), grade.get((qid, sd.docid), 0))
    presets = tmp_path / "p.toml"
    presets.write_text(tomli_w.dumps({"oracle-dl": {"strategy": "pointwise", "template": "yes-no", "backend": "oracle",
                                                    "description": "oracle with NIST grades", "paper": "none",
                                                    "backend_options": {"relevance": rel}}}))
    out = tmp_path / "dl.txt"
    assert main(["rerank", "oracle-dl", "--presets", str(presets), "--dataset", "dl19", "--queries", "3",
                 "--depth", "20", "-o", str(out), "--no-progress"]) == 0
    run = read_run(out)
    # independent expectation: each query's top 20 sorted by the oracle's grade (stable), then the rest
    for qid, r in cands.items():
        top = sorted(r.docs[:20], key=lambda sd: -rel[sd.doc.text])
        assert run[qid].docids == [sd.docid for sd in top] + r.docids[20:]
    assert evaluate(run, ds).aggregate["nDCG@10"] > evaluate(cands, ds).aggregate["nDCG@10"]



def test_rerank_a_first_stage_run_over_a_local_dataset(setup, capsys):
    """`--dataset FOLDER --run FILE`: a TREC run (e.g. from `rerankkit retrieve`) gets its texts from the dataset."""
    tmp, _, _, presets = setup
    root = tmp / "beir-like"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": d, "title": "", "text": t}) + "\n"
                                               for docs in DOCS.values() for d, t, _ in docs))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items()))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t{g}\n" for q, docs in DOCS.items() for d, _, g in docs))
    first = tmp / "first.run"
    first.write_text("".join(f"{q} Q0 {d} {i + 1} {10 - i} bm25\n" for q, docs in DOCS.items()
                             for i, (d, _, _) in enumerate(docs)))
    out = tmp / "reranked.run"
    assert main(["rerank", "oracle-yes-no", "--presets", str(presets), "--dataset", str(root), "--run", str(first),
                 "-o", str(out), "--no-progress"]) == 0
    run = read_run(out)
    assert run["q1"].docids[:2] == ["b", "c"] and run["q2"].docids[0] == "f"  # the oracle saw the corpus texts
    meta = json.loads((tmp / "reranked.run.meta.json").read_text())
    assert meta["candidates"] == str(first)

    bad = tmp / "bad.run"
    bad.write_text(first.read_text() + "q1 Q0 zzz 9 0.5 bm25\n")
    capsys.readouterr()
    assert main(["rerank", "oracle-yes-no", "--presets", str(presets), "--dataset", str(root), "--run", str(bad),
                 "-o", str(tmp / "x.run"), "--no-progress"]) == 2
    assert "1 document ids are not in" in capsys.readouterr().err
    assert main(["rerank", "oracle-yes-no", "--presets", str(presets), "--candidates", str(first), "--run", str(first),
                 "-o", str(tmp / "y.run"), "--no-progress"]) == 2
