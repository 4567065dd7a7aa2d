"""rerankkit adapt end to end on a tiny collection: the packaged MiniLM embeds, a tiny random Llama generates the
queries and is the student, BM25 mines negatives; DUQGen and distillation both train an adapter that loads by
preset name; a rerun resumes from what is on disk; evaluation queries are refused."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("peft")
pytest.importorskip("sentence_transformers")
pytest.importorskip("bm25s")

from rerankkit import ConfigError, Reranker  # noqa: E402
from rerankkit.adapt import adapt, adapt_config_from_dict  # noqa: E402
from rerankkit.answer_cache import CallCache  # noqa: E402
from rerankkit.presets import RERANKER_PRESETS, register_presets  # noqa: E402

TOPICS = ["apples", "rivers", "engines", "violins", "glaciers", "tax law", "honey bees", "chess openings"]


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """A BEIR-layout folder: 8 topics x 4 documents, test queries for topics 6 and 7."""
    root = tmp_path_factory.mktemp("adapt-coll")
    (root / "qrels").mkdir()
    with open(root / "corpus.jsonl", "w") as f:
        for t, topic in enumerate(TOPICS):
            for k in range(4):
                text = f"note {k} on {topic}: how {topic} work, where {topic} are found and why {topic} matter"
                f.write(json.dumps({"_id": f"d{t}-{k}", "title": "", "text": text}) + "\n")
    with open(root / "queries.jsonl", "w") as f:
        for t, topic in enumerate(TOPICS):
            f.write(json.dumps({"_id": f"q{t}", "text": f"tell me about {topic}"}) + "\n")
    with open(root / "qrels" / "test.tsv", "w") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for t in (6, 7):
            f.write(f"q{t}\td{t}-0\t1\n")
    return root


def config(tmp_path, coll, model, **sections):
    raw = {
        "output_dir": str(tmp_path / "out"), "name": "tiny-adapted", "seed": 5,
        "corpus": {"datasets": [str(coll)], "min_chars": 0},
        "sampling": {"documents": 6, "clusters": 3, "kmeans": "numpy", "embedder": "dense-minilm"},
        # seeded sampling: greedy decoding of a random model repeats one token (often punctuation, which the
        # screen rightly drops as empty); sampled tokens are word pieces, so there are queries to train on
        "generation": {"model": str(model), "options": {"dtype": "fp32", "chat_template": False},
                       "max_new_tokens": 6, "max_doc_tokens": 24, "batch": 4, "temperature": 1.0},
        "negatives": {"retriever": "bm25", "depth": 8, "skip": 1, "per_query": 2},
        "train": {"preset": "pointwise-yes-no", "overrides": {"model": str(model)}, "pointwise_loss": "contrastive",
                  "batch_size": 6, "max_steps": 2, "warmup_steps": 1, "learning_rate": 1e-3, "max_doc_tokens": 24,
                  "checkpoint_every": 1, "holdout_queries": 2, "holdout_depth": 4,
                  "lora": {"r": 2, "alpha": 4, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}},
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return adapt_config_from_dict(raw)


def test_duqgen_end_to_end_records_what_it_trained_on_and_resumes(tmp_path, collection, tiny_causal_dir,
                                                                   monkeypatch):
    # dense negatives: random words share no term with the collection, so BM25 would find none
    cfg = config(tmp_path, collection, tiny_causal_dir, negatives={"retriever": "dense-minilm"})
    rec = adapt(cfg, progress=False)
    out = tmp_path / "out"
    sampled = [json.loads(line) for line in (out / "sampled.jsonl").read_text().splitlines()]
    assert len(sampled) == 6 and {s["cluster"] for s in sampled} == {0, 1, 2}
    assert len({s["docid"] for s in sampled}) == 6
    gen = [json.loads(line) for line in (out / "queries.jsonl").read_text().splitlines()]
    assert [g["docid"] for g in gen] == [s["docid"] for s in sampled]
    assert rec["queries"]["generated"] == 6 and rec["queries"]["usable"] == sum(g["use"] == "ok" for g in gen)
    assert rec["mode"] == "duqgen" and rec["seed"] == 5 and rec["status"] == "done"
    assert rec["collection"]["documents"] == 32 and rec["eval"]["queries"] == {str(collection): 2}
    assert rec["eval_overlap"]["queries"] == 0 and rec["train"]["steps"] == 2
    saved = json.loads((out / "adapt.json").read_text())
    assert saved["generation"]["fewshot"][0]["query"] and saved["config"]["seed"] == 5
    with CallCache(out / "answers.sqlite") as cache:
        assert len(cache) == 6  # every generated answer is in the answer cache

    # the adapter loads by preset name
    names = register_presets(out / "preset.toml")
    assert names == ["tiny-adapted"]
    spec = RERANKER_PRESETS.get("tiny-adapted")
    assert spec.backend_options["adapter"] == str((out / "train" / "adapter").resolve())
    ranked = Reranker("tiny-adapted", dtype="fp32").rerank("tell me about rivers", ["rivers flow", "bees buzz"])
    assert sorted(ranked.docids) == ["0", "1"]

    # the same adapter shipped in the package loads as adapter="packaged:NAME" with identical scores
    import shutil

    import rerankkit.models as models

    shipped = tmp_path / "adapters" / "tiny-adapted"
    shutil.copytree(out / "train" / "adapter", shipped)
    monkeypatch.setattr(models, "ADAPTER_DIR", tmp_path / "adapters")
    packaged = Reranker("tiny-adapted", dtype="fp32", adapter="packaged:tiny-adapted")
    again_ranked = packaged.rerank("tell me about rivers", ["rivers flow", "bees buzz"])
    assert [round(d.score, 5) for d in again_ranked.docs] == [round(d.score, 5) for d in ranked.docs]

    # a rerun reuses every stage: no generation call, training already at its last step
    again = adapt(cfg, progress=False)
    assert [json.loads(line)["query"] for line in (out / "queries.jsonl").read_text().splitlines()] == \
        [g["query"] for g in gen]
    assert again["train"]["steps"] == 2 and again["times_s"]["generate"] < rec["times_s"]["generate"] + 5


def test_distillation_from_a_teacher_preset_with_ranknet(tmp_path, collection, tiny_causal_dir):
    queries = tmp_path / "queries.jsonl"  # queries made elsewhere (e.g. on a GPU): docid + query
    queries.write_text("".join(json.dumps({"docid": f"d{t}-1", "query": f"why do {topic} matter"}) + "\n"
                               for t, topic in enumerate(TOPICS[:5])))
    cfg = config(tmp_path, collection, tiny_causal_dir,
                 generation={"queries_file": str(queries)},
                 teacher={"preset": "cosine-minilm", "depth": 6, "positives": 1, "skip": 1},
                 train={"pointwise_loss": "ranknet", "positives_per_query": 2, "negatives_per_query": 2,
                        "holdout_queries": 0})
    rec = adapt(cfg, progress=False)
    out = tmp_path / "out"
    assert rec["mode"] == "distill" and rec["queries"]["usable"] == 5 and rec["train"]["steps"] == 2
    teacher = (out / "teacher.run").read_text().splitlines()
    assert len(teacher) == 5 * 6
    top = {line.split()[0]: line.split()[2] for line in teacher if line.split()[3] == "1"}
    assert top["gen0"].startswith("d0-") and top["gen3"].startswith("d3-")  # MiniLM ranks the topic first
    assert "distilled from cosine-minilm" in (out / "preset.toml").read_text()


def test_teacher_run_made_elsewhere_and_first_objective(tmp_path, collection, tiny_causal_dir):
    queries = tmp_path / "queries.jsonl"
    queries.write_text("".join(json.dumps({"docid": f"d{t}-2", "query": f"where are {topic} found"}) + "\n"
                               for t, topic in enumerate(TOPICS[:4])))
    run = tmp_path / "teacher.run"
    run.write_text("".join(f"gen{t} Q0 d{t}-{k} {k + 1} {9 - k} gpu\n" for t in range(4) for k in range(4)))
    cfg = config(tmp_path, collection, tiny_causal_dir, generation={"queries_file": str(queries)},
                 teacher={"run": str(run), "depth": 4},
                 train={"preset": "first-smollm2-135m", "window": 4, "batch_size": 2, "holdout_queries": 0})
    rec = adapt(cfg, progress=False)
    assert rec["objective"] == "first" and rec["train"]["examples"] == 4


def test_evaluation_queries_are_refused_with_the_count_before_training(tmp_path, collection, tiny_causal_dir):
    queries = tmp_path / "queries.jsonl"
    queries.write_text(json.dumps({"docid": "d6-1", "query": "Tell me about  honey bees"}) + "\n"
                       + json.dumps({"docid": "d1-1", "query": "rivers"}) + "\n")
    cfg = config(tmp_path, collection, tiny_causal_dir, generation={"queries_file": str(queries)})
    with pytest.raises(ConfigError, match="^1 training queries are test queries"):
        adapt(cfg, progress=False)
    assert not (tmp_path / "out" / "train").exists()


def test_judged_evaluation_documents_are_counted_or_refused(tmp_path, collection, tiny_causal_dir):
    queries = tmp_path / "queries.jsonl"
    queries.write_text(json.dumps({"docid": "d6-0", "query": "which insects make honey"}) + "\n")
    cfg = config(tmp_path, collection, tiny_causal_dir, generation={"queries_file": str(queries)},
                 eval_documents="refuse", train={"holdout_queries": 0})
    with pytest.raises(ConfigError, match=r"training documents are judged for test queries \(.*: [12]\)"):
        adapt(cfg, progress=False)
