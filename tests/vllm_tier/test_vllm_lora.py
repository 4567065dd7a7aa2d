"""A LoRA adapter made by ``rerankkit train`` served through vLLM's ``LoRARequest`` scores like hf + peft."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "eval"))

from vllm_parity import pointwise_parity  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
TOPICS = ["apples", "rivers", "engines", "violins", "glaciers", "tax law"]


@pytest.fixture(scope="module")
def adapter(tmp_path_factory, smollm2_dir):
    """``rerankkit train`` (the command line) on a tiny BEIR-layout collection: a few steps of LoRA on every
    linear layer of SmolLM2, learning rate high enough that the adapter visibly changes scores."""
    root = tmp_path_factory.mktemp("lora")
    coll = root / "collection"
    (coll / "qrels").mkdir(parents=True)
    with open(coll / "corpus.jsonl", "w") as f:
        for t, topic in enumerate(TOPICS):
            for k in range(3):
                f.write(json.dumps({"_id": f"d{t}-{k}", "title": "", "text": f"a short note {k} about {topic}"}) + "\n")
    with open(coll / "queries.jsonl", "w") as f:
        for t, topic in enumerate(TOPICS):
            f.write(json.dumps({"_id": f"q{t}", "text": f"tell me about {topic}"}) + "\n")
    for split, qs in (("dev", range(4)), ("test", range(4, 6))):
        with open(coll / "qrels" / f"{split}.tsv", "w") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            f.writelines(f"q{t}\td{t}-0\t1\n" for t in qs)
    with open(coll / "teacher.run", "w") as f:
        for t in range(len(TOPICS)):
            docs = [f"d{t}-{k}" for k in range(3)] + [f"d{(t + 1) % len(TOPICS)}-{k}" for k in range(3)]
            f.writelines(f"q{t} Q0 {d} {r + 1} {10 - r} teacher\n" for r, d in enumerate(docs))
    cfg = {"preset": "pointwise-smollm2-135m", "output_dir": str(root / "out"), "dataset": str(coll), "split": "dev",
           "eval_split": "test", "negatives": None, "teacher_run": str(coll / "teacher.run"),
           "negatives_per_query": 2, "batch_size": 4, "learning_rate": 2e-3, "max_steps": 4, "warmup_steps": 0,
           "checkpoint_every": 4, "seed": 5, "dtype": "fp32",
           "lora": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": "all-linear"}}
    (root / "train.yaml").write_text(yaml.safe_dump(cfg))
    subprocess.run([sys.executable, "-m", "rerankkit", "train", str(root / "train.yaml")], check=True, timeout=600,
                   env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True)
    path = root / "out" / "adapter"
    assert (path / "adapter_config.json").is_file()
    return path


def test_adapter_through_lora_request_scores_like_hf(adapter, smol_hf, dl19, engine_options):
    from rerankkit.backends.hf import HFBackend
    from rerankkit.backends.vllm import VLLMBackend

    items = dl19(2, 8)
    hf = HFBackend("packaged:smollm2-135m-instruct", dtype="fp32", device="cpu", adapter=str(adapter))
    vl = VLLMBackend("packaged:smollm2-135m-instruct", adapter=str(adapter), **engine_options)
    try:
        assert vl.kw["enable_lora"] is True and vl._lora_request.lora_path == str(adapter.resolve())
        changed = pointwise_parity(smol_hf, hf, items)
        assert changed["max_abs_delta"] > 0.05, changed  # the adapter matters: this is not the base model
        rep = pointwise_parity(hf, vl, items)
        assert rep["max_abs_delta"] < 1e-3 and rep["min_kendall_tau"] >= 0.99, rep
        assert vl.options()["adapter"] == str(adapter.resolve())
    finally:
        vl.close()
