"""Readers, registry and evaluate() on the real benchmark files in $RERANKKIT_DATA (skipped when absent)."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys

import pytest

from rerankkit.data import apply_exclusions, load_dataset, read_run, write_run
from rerankkit.eval import evaluate
from rerankkit.types import Doc, Ranking, Run, ScoredDoc


@pytest.fixture(scope="module")
def dl19(data_root):
    return load_dataset("trec-dl-2019/passage")


def test_dl19_counts_and_judged_queries(dl19):
    assert len(dl19.queries()) == 43 and len(dl19.qrels()) == 9260
    assert {q.qid for q in dl19.queries()} == {q.qid for q in dl19.qrels()}
    cands = dl19.candidates("bm25")
    assert len(cands) == 43 and all(len(r) == 100 for r in cands.values())
    assert all(sd.doc.text for r in cands.values() for sd in r.docs)  # every hit has its passage text
    assert [r.query for r in cands.values()] == [dl19.query_map()[q] for q in cands]


def test_dl20_restricted_to_the_54_judged_of_200_topics(data_root):
    ds = load_dataset("trec-dl-2020/passage")
    assert len(ds.queries()) == 54 and len(ds.qrels()) == 11386
    assert len(ds.candidates("contriever")) == 54


@pytest.mark.parametrize("name, expected", [("trec-dl-2019/passage", 0.5058), ("trec-dl-2020/passage", 0.4796)])
def test_bm25_candidates_ndcg_equals_published_and_the_ir_measures_cli(data_root, tmp_path, name, expected):
    ds = load_dataset(name)
    run = ds.candidates("bm25")
    ours = evaluate(run, ds, ["nDCG@10"]).aggregate["nDCG@10"]
    assert round(ours, 4) == expected
    path = write_run(run, tmp_path / "bm25.run")
    qrels = ds.file("qrels")
    cli = subprocess.run([sys.executable, "-m", "ir_measures", str(qrels), str(path), "nDCG@10"],
                         capture_output=True, text=True, check=True)
    name_, value = cli.stdout.split()
    assert name_ == "nDCG@10"
    # the CLI prints 4 decimals; with --places 10 it must agree to float precision
    cli10 = subprocess.run([sys.executable, "-m", "ir_measures", str(qrels), str(path), "nDCG@10", "--places", "10"],
                           capture_output=True, text=True, check=True)
    assert float(cli10.stdout.split()[1]) == pytest.approx(ours, abs=1e-10)
    assert value == f"{ours:.4f}"
    # reading the written run back gives the identical score
    assert evaluate(read_run(path), ds, ["nDCG@10"]).aggregate["nDCG@10"] == ours


def test_a_subset_run_scores_missing_judged_queries_0_unless_asked_otherwise(dl19, tmp_path):
    run = dl19.candidates("bm25").head(5)
    own = evaluate(run, dl19, ["nDCG@10"], missing_as_zero=False)
    assert own.num_queries == 5
    assert own.aggregate["nDCG@10"] == pytest.approx(sum(v["nDCG@10"] for v in own.per_query.values()) / 5)
    full = evaluate(run, dl19, ["nDCG@10"])  # the default: the other 38 judged queries score 0
    assert (full.num_queries, full.missing_queries) == (43, 38)
    assert full.aggregate["nDCG@10"] == pytest.approx(own.aggregate["nDCG@10"] * 5 / 43)
    scoped = evaluate(run, dl19, ["nDCG@10"], queries=list(run))
    assert scoped.aggregate == own.aggregate


def test_beir_scifact_and_nfcorpus(data_root):
    sf = load_dataset("beir/scifact")
    assert (len(sf.queries()), len(sf.qrels())) == (300, 339)
    docs = list(sf.corpus())
    assert len(docs) == sf.num_docs == 5183 and len({d.docid for d in docs}) == 5183
    assert all(d.title or d.text for d in docs)
    nf = load_dataset("beir/nfcorpus")
    assert (len(nf.queries()), len(nf.qrels()), nf.num_docs) == (323, 12334, 3633)
    dev = load_dataset("beir/nfcorpus", split="dev")
    assert len(dev.queries()) == 324 and not {q.qid for q in dev.queries()} & {q.qid for q in nf.queries()}


def test_noveleval_search_order(data_root):
    ds = load_dataset("noveleval")
    assert (len(ds.queries()), len(ds.qrels())) == (21, 420)
    run = ds.candidates()
    corpus = {d.docid: d.text for d in ds.corpus()}
    assert len(corpus) == 420
    assert all(sd.doc.text == corpus[sd.docid] for r in run.values() for sd in r.docs)  # csv-aware corpus
    assert round(evaluate(run, ds).aggregate["nDCG@10"], 4) == 0.6503


@pytest.mark.parametrize("name", ["trec-dl-2019/passage", "beir/scifact", "bright/leetcode", "noveleval"])
def test_manifest_checksums_match_the_local_files(data_root, name):
    status = load_dataset(name).verify()
    assert status and set(status.values()) == {"ok"}, status


BRIGHT_COUNTS = {"biology": 103, "earth-science": 116, "economics": 103, "psychology": 101, "robotics": 101,
                 "stackoverflow": 117, "sustainable-living": 108, "leetcode": 142, "pony": 112, "aops": 111,
                 "theoremqa-questions": 194, "theoremqa-theorems": 76}


@pytest.mark.parametrize("task", sorted(BRIGHT_COUNTS))
def test_bright_topics_qrels_and_exclusions(data_root, task):
    ds = load_dataset(f"bright/{task}")
    qs = ds.queries()
    assert len(qs) == BRIGHT_COUNTS[task]
    # query ids equal the Anserini topics file's, and qrels are exactly BRIGHT's gold_ids
    with gzip.open(data_root / "bright" / "topics" / f"topics.bright-{task}.tsv.gz", "rt") as f:
        assert [q.qid for q in qs] == [line.split("\t", 1)[0] for line in f if line.strip()]
    with gzip.open(ds.file("examples"), "rt") as f:
        examples = [json.loads(line) for line in f]
    gold = {(str(e["id"]), g) for e in examples for g in e["gold_ids"]}
    assert {(q.qid, q.docid) for q in ds.qrels()} == gold
    excluded = ds.excluded_ids()
    assert set(excluded) == {q.qid for q in qs}
    assert all("N/A" not in ids for ids in excluded.values())
    assert not {(q, d) for q, ids in excluded.items() for d in ids} & gold  # never excludes a gold document
    if task in ("leetcode", "aops", "theoremqa-questions"):
        assert any(excluded.values())


def test_bright_documents_from_a_local_folder_and_the_exclusion_rule(data_root, tmp_path, monkeypatch):
    """A small document file in BRIGHT's format (``{"id", "content"}``) next to the real topics/qrels."""
    real = load_dataset("bright/leetcode")
    qid, excl = next((q, ids) for q, ids in real.excluded_ids().items() if len(ids) >= 2)
    gold = [q.docid for q in real.qrels() if q.qid == qid]
    bad = sorted(excl)[:2]
    root = tmp_path / "data"
    shutil.copytree(data_root / "bright", root / "bright", ignore=shutil.ignore_patterns("documents"))
    (root / "bright" / "documents").mkdir()
    rows = [{"id": d, "content": f"content of {d}"} for d in [*gold, *bad, "leetcode/leetcode_unrelated.txt"]]
    (root / "bright" / "documents" / "leetcode.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    monkeypatch.setenv("RERANKKIT_DATA", str(root))
    ds = load_dataset("bright/leetcode")
    assert ds.location() == root / "bright"
    docs = list(ds.corpus())
    assert [d.docid for d in docs] == [r["id"] for r in rows] and docs[0].text == rows[0]["content"]
    # a run that puts the excluded documents first: they are dropped before scoring
    order = [*bad, *gold, "leetcode/leetcode_unrelated.txt"]
    run = Run([Ranking(ds.query_map()[qid], tuple(ScoredDoc(Doc(d), float(-i)) for i, d in enumerate(order)))])
    kept = apply_exclusions(run, ds.excluded_ids())
    assert kept[qid].docids == [*gold, "leetcode/leetcode_unrelated.txt"] and kept.metadata["excluded_docs"] == 2
    # evaluate(dataset) applies the exclusions itself; bare qrels do not
    assert evaluate(run, ds, ["RR"], queries=[qid]).aggregate["RR"] == 1.0
    assert evaluate(run, ds.qrels(), ["RR"], queries=[qid]).aggregate["RR"] == pytest.approx(1 / 3)


def test_bright_without_documents_offline_says_how_to_get_them(data_root, monkeypatch):
    monkeypatch.setenv("RERANKKIT_OFFLINE", "1")
    ds = load_dataset("bright/biology")
    with pytest.raises(Exception, match=r"documents/biology\.jsonl.*xlangai/BRIGHT"):
        next(iter(ds.corpus()))

