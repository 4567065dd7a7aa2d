"""``vllm serve`` + rerankkit's openai backend, the way most users deploy, against vLLM in-process."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from serve_vllm import start_vllm_server

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "eval"))

from vllm_parity import decision_parity, pointwise_parity  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def served(smollm2_dir, tmp_path_factory, engine_options):
    server = start_vllm_server(smollm2_dir, tmp_path_factory.mktemp("vllm-serve"),
                               max_model_len=engine_options["max_model_len"], kv_cache_gb=engine_options["kv_cache_gb"])
    from rerankkit.backends.openai_compat import OpenAIBackend

    # the local tokenizer renders prompts exactly as in-process, sent as token ids to /v1/completions
    backend = OpenAIBackend("packaged:smollm2-135m-instruct", base_url=server.url, max_concurrency=8, timeout=120)
    yield backend
    backend.close()
    server.stop()
    assert server.proc.poll() is not None


def test_served_pointwise_rankings_equal_in_process(smol_vllm, served, dl19):
    rep = pointwise_parity(smol_vllm, served, dl19(2, 8))
    assert rep["rankings_identical"] == 2, rep
    assert rep["max_abs_delta"] < 1e-3, rep
    assert served.options()["endpoint"] == "completions"


def test_served_prp_rankings_equal_in_process(smol_vllm, served, dl19):
    rep = decision_parity(smol_vllm, served, dl19(1, 6), "prp-smollm2-135m", method="sliding", k=3)
    assert rep["identical_share"] == 1.0 and rep["rankings_identical"] == 1, rep


def test_served_generation_equals_in_process(smol_vllm, served):
    from rerankkit.backends.base import Prompt

    prompts = [Prompt.user("Name three colours."), Prompt.user("Rank: [1] cats [2] dogs. Answer:")]
    assert [g.text for g in served.generate(prompts, 16)] == [g.text for g in smol_vllm.generate(prompts, 16)]
