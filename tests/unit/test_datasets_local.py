"""Local collections, the registry's names and errors, manifests, missing data, evaluate()."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rerankkit.data import DATASETS, LocalDataset, apply_exclusions, load_dataset
from rerankkit.data.manifests import load_manifests, manifest_dirs
from rerankkit.errors import DataNotFoundError, InputError, UnknownNameError
from rerankkit.eval import evaluate
from rerankkit.types import Doc, Qrel, Query, Ranking, Run, ScoredDoc

REPO = Path(__file__).resolve().parents[2]


def _beir_folder(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "title": f"T{i}", "text": f"body {i}"})
                                               + "\n" for i in range(5)))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": f"query {q}"}) + "\n"
                                                for q in ("q1", "q2", "q3")))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t2\n")
    (root / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq3\td4\t1\n")
    return root


def test_local_beir_folder_with_splits_and_run(tmp_path):
    root = _beir_folder(tmp_path / "mycoll")
    (root / "bm25.run").write_text("q1 Q0 d2 1 3.0 x\nq1 Q0 d1 2 2.0 x\nq2 Q0 d3 1 1.0 x\n")
    ds = load_dataset(str(root))
    assert isinstance(ds, LocalDataset)
    assert [q.qid for q in ds.queries()] == ["q1", "q2"]  # only the judged ones
    assert len(ds.qrels()) == 2 and ds.num_docs == 5 and ds.has_corpus()
    assert next(iter(ds.corpus())) == Doc("d0", "body 0", "T0")
    run = ds.candidates("bm25")
    assert run["q1"].docids == ["d2", "d1"] and run["q1"].docs[0].doc.text == "body 2"
    assert run["q1"].query.text == "query q1"
    assert evaluate(run, ds, ["P@1"]).aggregate["P@1"] == pytest.approx(0.5)
    dev = load_dataset(f"local:{root}", split="dev")
    assert [q.qid for q in dev.queries()] == ["q3"]


def test_local_jsonl_and_tsv_corpus_files(tmp_path):
    (tmp_path / "c.jsonl").write_text('{"id": "a", "contents": "alpha"}\n{"id": "b", "contents": "beta"}')
    (tmp_path / "c.tsv").write_text("a\talpha\nb\tbeta\n")
    for name in ("c.jsonl", "c.tsv"):
        ds = load_dataset(str(tmp_path / name))
        assert [d.docid for d in ds.corpus()] == ["a", "b"] and ds.num_docs == 2


def test_local_trec_files_folder(tmp_path):
    (tmp_path / "topics.txt").write_text("1\tfirst\n2\tsecond\n3\tunjudged\n")
    (tmp_path / "qrels.txt").write_text("1 0 a 1\n2 0 b 1\n")
    (tmp_path / "cands.jsonl").write_text(json.dumps({"query": "first", "hits": [
        {"qid": 1, "docid": "a", "content": "A"}, {"qid": 1, "docid": "z", "content": "Z"}]}) + "\n")
    ds = load_dataset(str(tmp_path))
    assert [q.text for q in ds.queries()] == ["first", "second"]
    assert ds.candidate_sources() == ["cands"] and ds.candidates()["1"].docids == ["a", "z"]
    with pytest.raises(DataNotFoundError, match="no corpus"):
        list(ds.corpus())


def test_unknown_dataset_suggests_names():
    with pytest.raises(UnknownNameError, match="did you mean 'beir/scifact'"):
        load_dataset("beir/scifakt")
    with pytest.raises(UnknownNameError):
        load_dataset("trec-dl-2019/passage").candidates("splade")


def test_registry_has_every_family():
    names = DATASETS.names()
    assert {"trec-dl-2019/passage", "trec-dl-2020/passage", "beir/scifact", "beir/nfcorpus", "noveleval"} <= set(names)
    assert len([n for n in names if n.startswith("bright/")]) == 12
    assert len([n for n in names if n.startswith("beir/")]) >= 14
    assert DATASETS.resolve("dl19") == "trec-dl-2019/passage"


def test_manifests_are_data_in_the_top_level_folder():
    assert not (REPO / "datasets" / "__init__.py").exists()
    assert REPO / "datasets" in manifest_dirs()
    found = load_manifests()
    assert found["beir/scifact"]["manifest_file"].startswith(str(REPO / "datasets"))
    for name, m in found.items():
        assert m.get("description") and m.get("citation") and m.get("folder"), name


def test_manifest_dir_from_environment_wins(tmp_path, monkeypatch):
    (tmp_path / "x.toml").write_text('["beir/scifact"]\nkind = "beir"\nfolder = "elsewhere"\n'
                                     'description = "d"\ncitation = "c"\n')
    monkeypatch.setenv("RERANKKIT_MANIFESTS", str(tmp_path))
    assert load_manifests()["beir/scifact"]["folder"] == "elsewhere"


def test_missing_data_error_says_where_it_looked_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("RERANKKIT_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("RERANKKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("RERANKKIT_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    import rerankkit.data.paths as paths

    monkeypatch.setattr(paths, "_PACKAGE_DIR", tmp_path / "pkg" / "rerankkit")
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("beir/arguana").queries()
    msg = str(err.value)
    assert "\n" not in msg
    for place in (tmp_path / "nowhere" / "beir-arguana", tmp_path / "shared" / "data" / "beir-arguana",
                  tmp_path / "cache" / "data" / "beir-arguana"):
        assert str(place) in msg
    assert "arguana.zip" in msg and "RERANKKIT_DATA" in msg


def test_apply_exclusions_drops_only_listed_docs():
    q = Query("1", "q")
    run = Run([Ranking(q, tuple(ScoredDoc(Doc(d), s) for d, s in (("a", 3.0), ("b", 2.0), ("c", 1.0)))),
               Ranking(Query("2", "r"), (ScoredDoc(Doc("b"), 1.0),))])
    out = apply_exclusions(run, {"1": {"b", "zz"}, "3": {"a"}})
    assert out["1"].docids == ["a", "c"] and out["2"].docids == ["b"]
    assert [d.score for d in out["1"].docs] == [3.0, 1.0] and out.metadata["excluded_docs"] == 1


def test_evaluate_per_query_and_missing_queries():
    q = [Qrel("1", "a", 2), Qrel("1", "b", 0), Qrel("2", "c", 1)]
    run = Run([Ranking(Query("1", ""), (ScoredDoc(Doc("b"), 2.0), ScoredDoc(Doc("a"), 1.0)))])
    res = evaluate(run, q, ["P@1", "RR"])  # judged query "2" is missing from the run: it scores 0
    assert res.aggregate == {"P@1": 0.0, "RR": 0.25} and (res.num_queries, res.missing_queries) == (2, 1)
    assert res.per_query == {"1": {"P@1": 0.0, "RR": 0.5}, "2": {"P@1": 0.0, "RR": 0.0}}
    only = evaluate(run, q, ["P@1", "RR"], missing_as_zero=False)  # the run's judged queries only
    assert only.aggregate == {"P@1": 0.0, "RR": 0.5} and only.per_query == {"1": {"P@1": 0.0, "RR": 0.5}}
    assert only.missing_queries == 0
    scoped = evaluate(run, q, "RR", queries=["1"])  # a selection of queries: the others are out of scope
    assert scoped.aggregate["RR"] == 0.5 and scoped.num_queries == 1
    assert evaluate(run, q, "RR", queries=["1", "2", "3"]).aggregate["RR"] == 0.25  # "3" has no judgments
    with pytest.raises(InputError, match="among the 1 selected"):
        evaluate(run, q, "RR", queries=["2"])
    with pytest.raises(Exception, match="unknown measure"):
        evaluate(run, q, ["nDCG@ten"])


def _zip_beir(tmp_path: Path) -> tuple[str, str]:
    import hashlib
    import zipfile

    src = _beir_folder(tmp_path / "src" / "tiny")
    zpath = tmp_path / "tiny.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(src.parent).as_posix())
    return zpath.as_uri(), hashlib.md5(zpath.read_bytes()).hexdigest()


def test_beir_archive_is_fetched_checked_and_unpacked_when_missing(tmp_path, monkeypatch):
    from rerankkit.data.beir import BeirDataset

    url, md5 = _zip_beir(tmp_path)
    for var in ("RERANKKIT_OFFLINE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RERANKKIT_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("RERANKKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    manifest = {"kind": "beir", "folder": "beir-tiny", "url": url, "md5": md5}
    ds = BeirDataset("beir/tiny", manifest)
    assert [q.qid for q in ds.queries()] == ["q1", "q2"] and ds.num_docs == 5
    assert ds.location() == tmp_path / "cache" / "data" / "beir-tiny"
    assert (ds.location() / "qrels" / "dev.tsv").exists()
    # a second object finds the unpacked copy without fetching (the archive is gone)
    Path(url.removeprefix("file://")).unlink()
    assert len(BeirDataset("beir/tiny", manifest).qrels()) == 2

    bad = BeirDataset("beir/tiny2", {**manifest, "folder": "beir-tiny2", "md5": "0" * 32})
    with pytest.raises(DataNotFoundError, match="download of .* failed"):
        bad.queries()  # archive missing now: a failed download is a DataNotFoundError naming the URL


def test_beir_archive_with_wrong_checksum_is_refused(tmp_path, monkeypatch):
    from rerankkit.data.beir import BeirDataset
    from rerankkit.errors import InputError

    url, _ = _zip_beir(tmp_path)
    for var in ("RERANKKIT_OFFLINE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RERANKKIT_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("RERANKKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    ds = BeirDataset("beir/tiny", {"kind": "beir", "folder": "beir-tiny", "url": url, "md5": "0" * 32})
    with pytest.raises(InputError, match="does not match the published"):
        ds.queries()
    assert not (tmp_path / "cache" / "data" / "beir-tiny").exists()
