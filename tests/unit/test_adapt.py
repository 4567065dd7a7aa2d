"""rerankkit adapt, the parts without a model: k-means, DUQGen's sampling, the few-shot prompt, cleaning generated
queries, overlap refusal, labels for DUQGen and distillation, and the config's checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rerankkit.adapt.cluster import Clustering, kmeans
from rerankkit.adapt.collection import EvalSet, check_query_overlap, judged_overlap, normalize_query
from rerankkit.adapt.config import (
    NegativeSettings,
    TeacherSettings,
    adapt_config_from_dict,
    load_adapt_config,
)
from rerankkit.adapt.labels import duqgen_data, teacher_data
from rerankkit.adapt.querygen import (
    FewShot,
    QueryGenerator,
    clean_query,
    load_generation_template,
    read_fewshot_file,
    template_examples,
)
from rerankkit.adapt.sampling import cluster_quotas, mmr, sample_documents
from rerankkit.backends.fake import ScriptedBackend
from rerankkit.errors import ConfigError, InputError, TemplateError
from rerankkit.prompts import Template
from rerankkit.types import Doc, Query, Ranking, Run, ScoredDoc


def blobs(seed=0, per=20, centers=((0, 0, 5), (5, 0, 0), (0, 5, 0))):
    rng = np.random.default_rng(seed)
    x = np.concatenate([np.asarray(c, float) + rng.normal(0, 0.3, size=(per, 3)) for c in centers])
    truth = np.repeat(np.arange(len(centers)), per)
    return x.astype(np.float32), truth


def same_partition(a, b) -> bool:
    pairs = {(int(i), int(j)) for i, j in zip(a, b)}
    return len(pairs) == len(set(a)) == len(set(b))


# -- k-means -----------------------------------------------------------------------------------------------
def test_numpy_kmeans_finds_separated_groups_and_is_seeded():
    x, truth = blobs()
    a = kmeans(x, 3, seed=1, engine="numpy")
    assert a.engine == "numpy" and same_partition(a.assign, truth)
    b = kmeans(x, 3, seed=1, engine="numpy")
    assert np.array_equal(a.assign, b.assign) and np.allclose(a.centroids, b.centroids)
    assert sorted(a.sizes().tolist()) == [20, 20, 20]


def test_faiss_kmeans_agrees_on_separated_groups():
    pytest.importorskip("faiss")
    x, truth = blobs(seed=2)
    c = kmeans(x, 3, seed=5, engine="faiss")
    assert c.engine == "faiss" and same_partition(c.assign, truth)
    assert kmeans(x, 3, seed=5, engine="auto").engine == "faiss"


def test_kmeans_refuses_impossible_requests():
    x, _ = blobs(per=2)
    with pytest.raises(ConfigError, match="cannot make 7 clusters of 6"):
        kmeans(x, 7, seed=0, engine="numpy")
    with pytest.raises(ConfigError, match="engine"):
        kmeans(x, 2, seed=0, engine="sklearn")


def test_kmeans_never_returns_an_empty_cluster():
    x = np.zeros((10, 2), dtype=np.float32)  # nine identical points: they cannot fill four clusters
    x[0] = [9, 9]
    c = kmeans(x, 4, seed=0, engine="numpy")
    assert (c.sizes() > 0).all() and c.sizes().sum() == 10 and len(c.centroids) == 2
    assert c.assign[0] != c.assign[1]


# -- DUQGen sampling -----------------------------------------------------------------------------------------
def test_quotas_follow_duqgen_formula():
    # 1 + floor((10 - 3) * size / 100) = 4, 3, 2 -> 9; the one missing goes to the largest cluster
    assert cluster_quotas([50, 30, 20], 10).tolist() == [5, 3, 2]
    # N = K: one document per cluster, whatever the sizes
    assert cluster_quotas([97, 2, 1], 3).tolist() == [1, 1, 1]


@pytest.mark.parametrize("sizes,n", [([2, 2, 96], 99), ([1, 1, 1, 50], 40), ([3, 3], 6), ([5, 1, 9], 4)])
def test_quotas_sum_to_n_and_fit_every_cluster(sizes, n):
    q = cluster_quotas(sizes, n)
    assert q.sum() == n and (q >= 1).all() and (q <= np.asarray(sizes)).all()


def test_quotas_refuse_fewer_documents_than_clusters():
    with pytest.raises(ConfigError, match="between the number of clusters"):
        cluster_quotas([5, 5, 5], 2)
    with pytest.raises(ConfigError, match="between the number of clusters"):
        cluster_quotas([1, 1], 3)


def _clustering_of(x, truth):
    cents = np.stack([x[truth == c].mean(0) for c in range(truth.max() + 1)])
    return Clustering(cents.astype(np.float32), truth.astype(np.int64), "given")


def test_sampling_spreads_over_clusters_proportionally_and_is_seeded():
    x, truth = blobs(per=30, centers=((0, 0, 5), (5, 0, 0), (0, 5, 0), (4, 4, 0)))
    truth = truth.copy()
    truth[truth == 3] = 2  # clusters of 30, 30 and 60 documents
    cl = _clustering_of(x, truth)
    picked = sample_documents(x, cl, 12, seed=3)
    rows = [p.row for p in picked]
    assert len(set(rows)) == 12
    counts = np.bincount([p.cluster for p in picked], minlength=3).tolist()
    assert counts == cluster_quotas([30, 30, 60], 12).tolist() == [3, 3, 6]
    assert all(truth[p.row] == p.cluster for p in picked)
    assert [p.row for p in sample_documents(x, cl, 12, seed=3)] == rows
    assert [p.row for p in sample_documents(x, cl, 12, seed=4, rounds=1)] != rows


def test_sampling_prefers_documents_near_the_centroid():
    x, truth = blobs(per=40)
    cl = _clustering_of(x, truth)
    # a cold softmax (T small) makes the probabilistic draw take the most central documents
    picked = sample_documents(x, cl, 3, seed=0, temperature=1e-8, rounds=1)
    for p in picked:
        members = np.flatnonzero(truth == p.cluster)
        unit = x[members] / np.linalg.norm(x[members], axis=1, keepdims=True)
        c = cl.centroids[p.cluster] / np.linalg.norm(cl.centroids[p.cluster])
        assert p.row == members[int(np.argmax(unit @ c))]
        assert p.centroid_cosine == pytest.approx(float((unit @ c).max()), abs=1e-6)


def test_mmr_lambda_trades_centrality_for_spread():
    x = np.array([[1, 0], [0.99, 0.14], [0.98, 0.2], [0.6, 0.8], [0, 1]], dtype=np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    assert mmr(range(5), x, seed_row=0, k=3, lam=1.0) == [0, 1, 2]
    spread = mmr(range(5), x, seed_row=0, k=3, lam=0.3)
    assert spread[0] == 0 and 4 in spread


# -- prompting -----------------------------------------------------------------------------------------------
def scripted(replies):
    return ScriptedBackend(generate=list(replies))


def test_duqgen_template_cites_the_paper_and_renders_numbered_examples():
    t = load_generation_template("duqgen")
    assert "DUQGen" in t.source and "NAACL 2024" in t.source
    shots = template_examples(t)
    assert len(shots) == 3
    gen = QueryGenerator(t, shots, scripted([]), max_doc_tokens=5)
    text = gen.backend.render(gen.prompt(Doc("d1", "one two three four five six seven")))
    assert text.count("Relevant Query:") == 4
    assert "Example 1:\nDocument:" in text and "Relevant Query: " + shots[2].query in text
    assert text.endswith("Example 4:\nDocument: one two three four five\nRelevant Query:")


def test_generation_goes_through_the_backend_and_is_cleaned():
    t = load_generation_template("duqgen")
    be = scripted([" what is a tardigrade?\n\nExample 5: ...", "  ", ' "how to bake bread"'])
    gen = QueryGenerator(t, [FewShot("a doc", "a query")], be)
    docs = [Doc("a", "tardigrades survive"), Doc("b", "x"), Doc("c", "bread")]
    out = gen.generate(docs, batch=2)
    assert [(g.docid, g.query) for g in out] == [("a", "what is a tardigrade?"), ("b", ""), ("c", "how to bake bread")]
    assert out[0].raw.startswith(" what is a tardigrade?")
    assert be.usage.calls == 3 and be.usage.batches == 2


@pytest.mark.parametrize("raw,clean", [
    (" how to control fleas\n\nExample 5:\nDocument: x", "how to control fleas"),
    ("\n\nwhat is bm25? it is a ranking function", "what is bm25?"),
    ("does x cause y Example 5: Document", "does x cause y"),
    ("'quoted query'", "quoted query"),
    ("", ""), ("??", ""), ("a", ""),
])
def test_clean_query(raw, clean):
    assert clean_query(raw) == clean


def test_generation_templates_are_checked():
    with pytest.raises(ConfigError, match="query-generation"):
        load_generation_template("yes-no")
    bad = Template.from_dict({"name": "t", "strategy": "query-generation", "example": "{doc} {query}",
                              "user": "{examples} {doc}"})
    from rerankkit.adapt.querygen import SCHEMA

    with pytest.raises(TemplateError, match="must use"):
        bad.validate(SCHEMA)


def test_fewshot_file(tmp_path):
    p = tmp_path / "shots.jsonl"
    p.write_text(json.dumps({"document": "a  doc", "query": "q?"}) + "\n\n")
    assert read_fewshot_file(p) == [FewShot("a doc", "q?")]
    p.write_text(json.dumps({"document": "a doc"}) + "\n")
    with pytest.raises(InputError, match="example 1 needs"):
        read_fewshot_file(p)


# -- overlap ------------------------------------------------------------------------------------------------
def evalset():
    return EvalSet({"beir/x": [Query("t1", "What is BM25?"), Query("t2", "cats")]}, {"beir/x": {"d1", "d2", "d9"}})


def test_training_queries_that_are_evaluation_queries_are_refused_with_the_count():
    check_query_overlap([Query("gen0", "how do dogs sleep")], evalset(), "test")
    with pytest.raises(ConfigError, match=r"^2 training queries are test queries of beir/x .*what is +bm25"):
        check_query_overlap([Query("gen0", "what is  bm25"), Query("t2", "other text"), Query("g", "fine")],
                            evalset(), "test")
    assert normalize_query("  What's   BM25?! ") == "what s bm25"


def test_judged_documents_are_counted():
    assert judged_overlap(["d1", "d3", "d9"], evalset()) == {"beir/x": 2}


# -- labels -------------------------------------------------------------------------------------------------
def ranking(qid, ids):
    q = Query(qid, qid)
    return Ranking(q, tuple(ScoredDoc(Doc(d, d), float(-i)) for i, d in enumerate(ids)))


def test_duqgen_labels_positive_is_the_source_negatives_from_the_rank_window():
    q = Query("gen0", "q")
    first = Run([ranking("gen0", ["a", "src", "b", "c", "d", "e"])])
    corpus = {d: Doc(d, d) for d in ["a", "src", "b", "c", "d", "e"]}
    data = duqgen_data([q], {"gen0": "src"}, first, corpus, NegativeSettings(depth=5, skip=1, per_query=2), set())
    assert [(r.docid, r.relevance) for r in data.qrels] == [("src", 1)]
    assert data.candidates["gen0"].docids == ["b", "c", "d"]  # ranks 2..5, the source left out
    assert data.holdout_candidates["gen0"].docids[:2] == ["a", "src"] and not data.ranked


def test_teacher_labels_grade_the_head_and_keep_the_order():
    q = Query("gen0", "q")
    teacher = Run([ranking("gen0", ["c", "a", "b", "d", "e"])])
    first = Run([ranking("gen0", ["a", "b", "c", "d", "e"])])
    data = teacher_data([q], teacher, first, {}, TeacherSettings(preset="x", positives=1, skip=2), set())
    assert [(r.docid, r.relevance) for r in data.qrels] == [("c", 2), ("a", 1), ("b", 1), ("d", 0), ("e", 0)]
    assert data.ranked and data.candidates["gen0"].docids == ["c", "a", "b", "d", "e"]
    assert data.holdout_candidates["gen0"].docids == ["a", "b", "c", "d", "e"]


def test_ranked_groups_keep_the_teacher_order():
    from rerankkit.train.examples import ranked_groups

    q = Query("gen0", "q")
    groups = ranked_groups([q], Run([ranking("gen0", list("abcdefgh"))]), head=2, sampled=3, seed=1)
    (g,) = groups
    ids = [ex.doc.docid for ex in g]
    assert ids[:2] == ["a", "b"] and len(ids) == 5 and ids == sorted(ids)  # ranking order kept
    assert [ex.label for ex in g] == [1, 1, 0, 0, 0]


def test_grouped_ranknet_loss_is_lower_for_the_right_order():
    torch = pytest.importorskip("torch")
    from rerankkit.train.losses import grouped_ranknet_loss

    right = grouped_ranknet_loss(torch, torch.tensor([3.0, 2.0, 1.0, 5.0, 0.0]), [3, 2])
    wrong = grouped_ranknet_loss(torch, torch.tensor([1.0, 2.0, 3.0, 0.0, 5.0]), [3, 2])
    assert float(right) < float(wrong)


# -- config -------------------------------------------------------------------------------------------------
BASE = {"output_dir": "out", "corpus": {"datasets": ["beir/scifact"]},
        "sampling": {"documents": 20, "clusters": 5}, "train": {"preset": "pointwise-smollm2-135m"}}


def test_config_defaults_and_derived_training_fields():
    cfg = adapt_config_from_dict({**BASE, "seed": 7})
    assert cfg.train.seed == 7 and cfg.train.output_dir.endswith("out/train") and cfg.preset_name == "out"
    assert cfg.eval_names == ["beir/scifact"] and not cfg.teacher.active


@pytest.mark.parametrize("change,match", [
    ({"sampling": {"documnets": 3}}, "did you mean 'documents'"),
    ({"generaton": {}}, "did you mean 'generation'"),
    ({"train": {"preset": "pointwise-smollm2-135m", "learning_rat": 1}}, "did you mean 'learning_rate'"),
    ({"train": {"preset": "pointwise-smollm2-135m", "dataset": "beir/nfcorpus"}}, "set by adapt itself"),
    ({"sampling": {"documents": 3, "clusters": 5}}, "must not exceed"),
    ({"corpus": {"datasets": []}}, "names no dataset"),
    ({"teacher": {"preset": "cosine-minilm", "run": "x.run"}}, "not both"),
    ({"eval_documents": "maybe"}, "must be one of"),
])
def test_config_mistakes_are_refused_before_anything_loads(change, match):
    with pytest.raises(ConfigError, match=match):
        adapt_config_from_dict({**BASE, **change})


def test_config_file_with_dotted_sets(tmp_path):
    import yaml

    p = tmp_path / "a.yaml"
    p.write_text(yaml.safe_dump(BASE))
    cfg = load_adapt_config(p, {"sampling.documents": "30", "train.lora.r": "4", "teacher.preset": "cosine-minilm"})
    assert cfg.sampling.documents == 30 and cfg.train.lora.r == 4 and cfg.teacher.active


def test_check_config_refuses_what_cannot_work_without_loading(monkeypatch):
    from rerankkit.adapt import check_config
    from rerankkit.backends import BACKENDS

    def boom(*a, **k):
        raise AssertionError("a backend was created")

    for name in BACKENDS.names():
        monkeypatch.setattr(BACKENDS.get(name).load(), "__init__", boom)
    with pytest.raises(ConfigError, match="ranknet"):
        check_config(adapt_config_from_dict({**BASE, "train": {"preset": "pointwise-smollm2-135m",
                                                                "pointwise_loss": "ranknet"}}))
    with pytest.raises(ConfigError, match="does not embed"):
        check_config(adapt_config_from_dict({**BASE, "sampling": {**BASE["sampling"], "embedder": "bm25"}}))
    with pytest.raises(ConfigError, match="dtyp"):
        check_config(adapt_config_from_dict({**BASE, "generation": {"options": {"dtyp": "bf16"}}}))
    with pytest.raises(ConfigError, match="cannot be fine-tuned"):
        check_config(adapt_config_from_dict({**BASE, "train": {"preset": "cosine-minilm"}}))
    assert check_config(adapt_config_from_dict(BASE))["objective"] == "pointwise"


def test_screening_drops_empty_copied_and_repeated_queries():
    from rerankkit.adapt.pipeline import screen_queries
    from rerankkit.adapt.querygen import Generated

    gen = [Generated("a", "what is x?", ""), Generated("b", "", "\n"), Generated("c", "The Example Query", ""),
           Generated("d", "What is X", ""), Generated("e", "how is y made", "")]
    assert screen_queries(gen, [FewShot("doc", "the example query.")]) == \
        ["ok", "empty", "fewshot_copy", "duplicate", "ok"]


def test_fewshot_documents_have_their_own_budget():
    t = load_generation_template("duqgen")
    gen = QueryGenerator(t, [FewShot("s1 s2 s3 s4 s5 s6", "q")], scripted([]), max_doc_tokens=4, fewshot_doc_tokens=2)
    text = gen.backend.render(gen.prompt(Doc("d", "w1 w2 w3 w4 w5 w6")))
    assert "Document: s1 s2\n" in text and text.endswith("Document: w1 w2 w3 w4\nRelevant Query:")
