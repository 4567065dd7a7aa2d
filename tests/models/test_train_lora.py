"""LoRA training on a tiny random model: the loss goes down, adapters change, save/reload is exact."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("peft")
torch = pytest.importorskip("torch")

from rerankkit import ConfigError, Reranker  # noqa: E402
from rerankkit.train import train  # noqa: E402
from rerankkit.train.config import config_from_dict  # noqa: E402

TOPICS = ["apples", "rivers", "engines", "violins", "glaciers", "tax law", "bees", "chess"]


@pytest.fixture(scope="module")
def tiny_collection(tmp_path_factory):
    """A BEIR-layout folder: 8 topics x 4 docs; dev queries 0-5, test queries 6-7 (disjoint)."""
    root = tmp_path_factory.mktemp("beir-tiny")
    (root / "qrels").mkdir()
    with open(root / "corpus.jsonl", "w") as f:
        for t, topic in enumerate(TOPICS):
            for k in range(4):
                f.write(json.dumps({"_id": f"d{t}-{k}", "title": "", "text": f"a note {k} about {topic}"}) + "\n")
    with open(root / "queries.jsonl", "w") as f:
        for t, topic in enumerate(TOPICS):
            f.write(json.dumps({"_id": f"q{t}", "text": f"tell me about {topic}"}) + "\n")
    for split, qs in (("dev", range(6)), ("test", range(6, 8))):
        with open(root / "qrels" / f"{split}.tsv", "w") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for t in qs:
                f.write(f"q{t}\td{t}-0\t1\n")
    # a teacher run: for each query its own topic's docs first, then another topic's
    with open(root / "teacher.run", "w") as f:
        for t in range(8):
            docs = [f"d{t}-{k}" for k in range(4)] + [f"d{(t + 1) % 8}-{k}" for k in range(4)]
            for r, d in enumerate(docs):
                f.write(f"q{t} Q0 {d} {r + 1} {10 - r} teacher\n")
    return root


def _cfg(tmp_path, coll, model, **kw):
    base = {"preset": "pointwise-yes-no", "output_dir": str(tmp_path / "out"), "dataset": str(coll), "split": "dev",
            "eval_split": "test", "negatives": None, "teacher_run": str(coll / "teacher.run"),
            "negatives_per_query": 2, "batch_size": 4, "learning_rate": 5e-3, "max_steps": 6,
            "checkpoint_every": 3, "warmup_steps": 1, "seed": 3, "overrides": {"model": str(model)},
            "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}}
    base.update(kw)
    return config_from_dict(base)


def test_loss_goes_down_on_a_fixed_batch(tmp_path, tiny_collection, tiny_causal_dir):

    from rerankkit.train.features import build_features

    cfg = _cfg(tmp_path, tiny_collection, tiny_causal_dir)
    rr = Reranker(cfg.preset, dtype="fp32", model=str(tiny_causal_dir))
    batches, _ = build_features(cfg, rr)
    losses = _fit_fixed_batch(rr, batches[0], steps=8)
    assert losses[-1] < losses[0] * 0.9, losses


def test_train_saves_an_adapter_that_reloads_to_identical_scores(tmp_path, tiny_collection, tiny_causal_dir):
    from safetensors.torch import load_file

    cfg = _cfg(tmp_path, tiny_collection, tiny_causal_dir)
    summary = train(cfg, progress=False)
    assert summary["steps"] == 6
    out = tmp_path / "out"
    assert (out / "loss.png").exists() and (out / "losses.jsonl").exists()
    weights = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    lora_b = [v for k, v in weights.items() if "lora_B" in k]
    assert lora_b and any(float(v.abs().sum()) > 0 for v in lora_b)  # B starts at zero: training changed it

    docs = [f"a note {k} about chess" for k in range(4)] + ["a note 0 about bees"]
    base = Reranker("pointwise-yes-no", model=str(tiny_causal_dir), dtype="fp32").rerank("tell me about chess", docs)
    a1 = Reranker("pointwise-yes-no", model=str(tiny_causal_dir), dtype="fp32", adapter=str(out / "adapter"))
    a2 = Reranker("pointwise-yes-no", model=str(tiny_causal_dir), dtype="fp32", adapter=str(out / "adapter"))
    s1 = {d.docid: d.score for d in a1.rerank("tell me about chess", docs).docs}
    s2 = {d.docid: d.score for d in a2.rerank("tell me about chess", docs).docs}
    sb = {d.docid: d.score for d in base.docs}
    assert max(abs(s1[k] - s2[k]) for k in s1) < 1e-5
    assert max(abs(s1[k] - sb[k]) for k in s1) > 1e-4  # the adapter changes the scores


def test_resume_from_checkpoint_continues_to_the_same_result(tmp_path, tiny_collection, tiny_causal_dir):
    import shutil

    full = train(_cfg(tmp_path / "a", tiny_collection, tiny_causal_dir), progress=False)
    # an interrupted run: stop after 3 steps (checkpoint at 3), then resume to 6
    part = _cfg(tmp_path / "b", tiny_collection, tiny_causal_dir, max_steps=6)
    train(config_from_dict({**_raw(part), "max_minutes": 1e-9}), progress=False)
    ckpts = sorted((tmp_path / "b" / "out" / "checkpoints").glob("step-*"))
    assert ckpts and ckpts[-1].name == "step-0000001"
    shutil.rmtree(tmp_path / "b" / "out" / "adapter")
    resumed = train(part, progress=False)
    assert resumed["steps"] == 6
    la = [json.loads(x)["loss"] for x in (tmp_path / "a" / "out" / "losses.jsonl").read_text().splitlines()]
    lb = [json.loads(x)["loss"] for x in (tmp_path / "b" / "out" / "losses.jsonl").read_text().splitlines()]
    assert np.allclose(la, lb, atol=1e-5)
    assert full["last_loss"] == pytest.approx(resumed["last_loss"], abs=1e-5)


def test_overlapping_train_and_eval_queries_are_refused_with_the_count(tmp_path, tiny_collection, tiny_causal_dir):
    cfg = _cfg(tmp_path, tiny_collection, tiny_causal_dir, split="test", eval_split="test")
    with pytest.raises(ConfigError, match="2 training queries"):
        train(cfg, progress=False)


def test_config_errors(tmp_path, tiny_collection, tiny_causal_dir):
    with pytest.raises(ConfigError, match="learning_rate"):
        config_from_dict({"preset": "x", "output_dir": "o", "learning_rat": 1})
    with pytest.raises(ConfigError, match="objective"):
        _cfg(tmp_path, tiny_collection, tiny_causal_dir, objective="listwise-ish")


def _raw(cfg):
    from dataclasses import asdict

    return asdict(cfg)


def test_first_objective_loss_goes_down_on_a_fixed_batch(tmp_path, tiny_collection, tiny_causal_dir):

    from rerankkit.train.features import build_features

    cfg = _cfg(tmp_path, tiny_collection, tiny_causal_dir, preset="first-qwen3-0.6b", objective="first", window=4,
               batch_size=2)
    rr = Reranker(cfg.preset, dtype="fp32", model=str(tiny_causal_dir))
    batches, info = build_features(cfg, rr)
    assert info["examples"] == 6 and all(b.objective == "first" and b.targets and b.id_tokens for b in batches)
    losses = _fit_fixed_batch(rr, batches[0], steps=8)
    # the LM term over a 49k-token vocabulary dominates and falls slowly on a random model: steady descent
    assert all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < losses[0] - 0.2, losses


def test_hard_negatives_mined_with_a_retriever_preset(tmp_path, tiny_collection, tiny_causal_dir):
    pytest.importorskip("bm25s")
    from rerankkit.train.features import build_features

    cfg = _cfg(tmp_path, tiny_collection, tiny_causal_dir, negatives="bm25", teacher_run=None, negatives_depth=6)
    rr = Reranker(cfg.preset, dtype="fp32", model=str(tiny_causal_dir))
    batches, info = build_features(cfg, rr)
    labels = [x for b in batches for x in b.labels]
    assert info["examples"] == 6 * 3 and labels.count(1) == 6 and labels.count(0) == 12  # 1 positive + 2 negatives


def test_a_trained_adapter_registered_as_a_user_preset(tmp_path, tiny_collection, tiny_causal_dir, monkeypatch):
    from rerankkit.presets import RERANKER_PRESETS, register_presets

    monkeypatch.setattr(RERANKER_PRESETS, "_items", dict(RERANKER_PRESETS._items))  # undone after the test

    train(_cfg(tmp_path, tiny_collection, tiny_causal_dir, max_steps=2), progress=False)
    adapter = tmp_path / "out" / "adapter"
    presets = tmp_path / "my-presets.toml"
    presets.write_text(f"""[tiny-chess-tuned]
description = "pointwise yes/no, tiny model + LoRA adapter trained on the tiny collection"
strategy = "pointwise"
template = "yes-no"
backend = "hf"
model = "{tiny_causal_dir}"
[tiny-chess-tuned.backend_options]
dtype = "fp32"
adapter = "{adapter}"
""")
    assert register_presets(presets) == ["tiny-chess-tuned"]
    docs = [f"a note {k} about chess" for k in range(3)]
    got = {d.docid: d.score for d in Reranker("tiny-chess-tuned").rerank("tell me about chess", docs).docs}
    ref = Reranker("pointwise-yes-no", model=str(tiny_causal_dir), dtype="fp32", adapter=str(adapter))
    want = {d.docid: d.score for d in ref.rerank("tell me about chess", docs).docs}
    base = Reranker("pointwise-yes-no", model=str(tiny_causal_dir), dtype="fp32").rerank("tell me about chess", docs)
    assert max(abs(got[k] - want[k]) for k in got) < 1e-6
    assert max(abs(got[d.docid] - d.score) for d in base.docs) > 1e-5  # the preset really loads the adapter


def test_merged_adapter_scores_like_the_unmerged_one(tmp_path, tiny_collection, tiny_causal_dir):
    train(_cfg(tmp_path, tiny_collection, tiny_causal_dir, max_steps=2), progress=False)
    adapter = str(tmp_path / "out" / "adapter")
    docs = [f"a note {k} about chess" for k in range(3)] + ["a note 1 about bees"]
    merged = Reranker("pointwise-yes-no", model=str(tiny_causal_dir), dtype="fp32", adapter=adapter)
    unmerged = Reranker("pointwise-yes-no", model=str(tiny_causal_dir), dtype="fp32", adapter=adapter,
                        merge_adapter="false")
    assert not any("lora" in n for n, _ in merged.backend.model.named_parameters())  # plain weights: no overhead
    assert any("lora" in n for n, _ in unmerged.backend.model.named_parameters())
    a = {d.docid: d.score for d in merged.rerank("tell me about chess", docs).docs}
    b = {d.docid: d.score for d in unmerged.rerank("tell me about chess", docs).docs}
    assert max(abs(a[k] - b[k]) for k in a) < 1e-4


def test_contrastive_pointwise_batches_hold_whole_groups_and_the_loss_goes_down(tmp_path, tiny_collection,
                                                                               tiny_causal_dir):

    from rerankkit.train.features import build_features

    cfg = _cfg(tmp_path, tiny_collection, tiny_causal_dir, pointwise_loss="contrastive", batch_size=6)
    rr = Reranker(cfg.preset, dtype="fp32", model=str(tiny_causal_dir))
    batches, info = build_features(cfg, rr)
    # 6 dev queries, each 1 positive + 2 negatives: groups of 3, two groups per batch of <= 6 documents
    assert info["examples"] == 18
    assert [b.groups for b in batches] == [[3, 3]] * 3
    assert all(b.labels == [1, 0, 0, 1, 0, 0] for b in batches)  # the positive leads its group
    losses = _fit_fixed_batch(rr, batches[0], steps=8)
    assert losses[0] == pytest.approx(np.log(3), abs=0.3)  # a random model ranks near chance in a group of 3
    assert losses[-1] < losses[0] * 0.9, losses


def test_holdout_queries_are_not_trained_on_and_are_measured_before_and_after(tmp_path, tiny_collection,
                                                                             tiny_causal_dir):
    from rerankkit.train.features import build_features

    cfg = _cfg(tmp_path, tiny_collection, tiny_causal_dir, holdout_queries=2, holdout_depth=4,
               pointwise_loss="contrastive", batch_size=6)
    rr = Reranker(cfg.preset, dtype="fp32", model=str(tiny_causal_dir))
    _, info = build_features(cfg, rr)
    held = {q.qid for q in info["holdout"].queries}
    assert len(held) == 2 and not held & info["train_qids"] and len(info["train_qids"]) == 4
    assert set(info["holdout"].candidates) == held and {r.qid for r in info["holdout"].qrels} == held

    summary = train(cfg, progress=False)
    h = summary["holdout"]
    assert h["queries"] == 2 and h["depth"] == 4 and h["after_step"] == 6
    assert 0.0 <= h["before"] <= 1.0 and 0.0 <= h["after"] <= 1.0
    assert json.loads((tmp_path / "out" / "holdout.json").read_text()) == h
    with pytest.raises(ConfigError, match="leaves no training queries"):
        build_features(_cfg(tmp_path, tiny_collection, tiny_causal_dir, holdout_queries=6), rr)


def _fit_fixed_batch(rr, batch, steps):
    """Wrap ``rr``'s model in a fresh LoRA adapter and take ``steps`` AdamW steps on one batch; the losses."""
    import peft

    model = peft.get_peft_model(rr.backend.model, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                                  task_type="CAUSAL_LM"))
    rr.backend.model = model
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = batch.loss(torch, rr.backend)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses
