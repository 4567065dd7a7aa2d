"""A LoRA adapter made by ``rerankkit train`` served through vLLM's ``LoRARequest`` scores like hf + peft."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "eval"))

from vllm_parity import pointwise_parity, train_small_adapter  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def adapter(tmp_path_factory, smollm2_dir):
    """``rerankkit train`` (the command line) on a tiny collection: a few steps of LoRA on every linear layer of
    SmolLM2 (the recipe lives in eval/vllm_parity.py, whose full run uses it too)."""
    path = train_small_adapter(tmp_path_factory.mktemp("lora"))
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
