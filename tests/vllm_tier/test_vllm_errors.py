"""Bad settings fail clearly: before the engine starts when they can, else with the root cause in one line."""

from __future__ import annotations

import pytest

from rerankkit import Reranker
from rerankkit.errors import BackendError, ConfigError

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_a_kv_cache_larger_than_memory_fails_before_the_engine_starts(smollm2_dir):
    r = Reranker("pointwise-smollm2-135m", backend="vllm", kv_cache_gb=100_000, enforce_eager=True)
    with pytest.raises(ConfigError, match=r"kv_cache_gb=100000.00 GiB is more than .* lower kv_cache_gb"):
        _ = r.backend


def test_an_engine_that_cannot_start_names_the_root_cause_and_the_knob(smollm2_dir):
    """A 20 MB KV cache cannot hold one 8192-token sequence of SmolLM2 in fp32 (~46 KB per token): vLLM's
    engine process fails; the error is that failure, in one line, with the options that fix it."""
    r = Reranker("pointwise-smollm2-135m", backend="vllm", dtype="fp32", enforce_eager=True, kv_cache_gb=0.02,
                 max_model_len=8192)
    with pytest.raises(BackendError) as info:
        _ = r.backend
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("the vLLM engine failed to start: ")
    assert "KV cache" in msg and "8192" in msg, msg  # vLLM's own words about the cause
    assert "kv_cache_gb" in msg and "max_model_len" in msg, msg


def test_a_missing_model_is_one_line(tmp_path):
    with pytest.raises(BackendError, match=r"cannot load a tokenizer for .*no-such-model") as info:
        _ = Reranker("pointwise-smollm2-135m", backend="vllm", model=str(tmp_path / "no-such-model")).backend
    assert "\n" not in str(info.value)
