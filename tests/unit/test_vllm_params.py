"""The vLLM backend's engine and sampling parameters, built without vLLM or a GPU."""

from __future__ import annotations

import importlib.util
import json
from types import SimpleNamespace

import pytest

from rerankkit.backends.vllm import (
    adapt_engine_kwargs,
    engine_kwargs,
    generate_sampling,
    prompt_logprob_sampling,
    read_score,
    score_plan,
    score_sampling,
)
from rerankkit.errors import BackendError, ConfigError, MissingExtraError


def test_engine_kwargs_for_generation_exactly():
    kw = engine_kwargs("Qwen/Qwen2.5-7B-Instruct", tensor_parallel_size=2, gpu_memory_utilization=0.8,
                       max_model_len=4096, dtype="bf16")
    assert kw == {
        "model": "Qwen/Qwen2.5-7B-Instruct", "tokenizer": "Qwen/Qwen2.5-7B-Instruct", "dtype": "bfloat16",
        "tensor_parallel_size": 2, "gpu_memory_utilization": 0.8, "enable_prefix_caching": True, "seed": 0,
        "trust_remote_code": False, "enforce_eager": False, "max_model_len": 4096, "runner": "generate",
        "max_logprobs": 20, "logprobs_mode": "processed_logprobs",
    }


def test_engine_kwargs_for_embedding_pool_the_last_token_normalised():
    kw = engine_kwargs("m", task="embed")
    assert kw["runner"] == "pooling"
    assert kw["override_pooler_config"] == {"pooling_type": "LAST", "normalize": True}
    assert "max_model_len" not in kw and "logprobs_mode" not in kw and kw["enable_prefix_caching"] is True


@pytest.mark.parametrize("bad", [{"task": "classify"}, {"gpu_memory_utilization": 1.5}, {"tensor_parallel_size": 0}])
def test_engine_kwargs_reject_bad_settings(bad):
    with pytest.raises(ConfigError):
        engine_kwargs("m", **bad)


def test_adapting_to_an_older_engine():
    class PoolerConfig:
        def __init__(self, **kw):
            self.kw = kw

    old_fields = {"model", "tokenizer", "dtype", "task", "tensor_parallel_size", "gpu_memory_utilization",
                  "enable_prefix_caching", "seed", "trust_remote_code", "enforce_eager", "override_pooler_config"}
    out = adapt_engine_kwargs(engine_kwargs("m", task="embed"), old_fields, PoolerConfig)
    assert out["task"] == "embed" and "runner" not in out
    assert out["override_pooler_config"].kw == {"pooling_type": "LAST", "normalize": True}
    gen = adapt_engine_kwargs(engine_kwargs("m"), old_fields)
    assert gen["task"] == "generate" and "logprobs_mode" not in gen and "max_logprobs" not in gen


def test_sampling_parameters():
    assert score_sampling([9, 3, 9, 5]) == {"max_tokens": 1, "temperature": 0.0, "logprobs": 3,
                                            "allowed_token_ids": [3, 5, 9]}
    assert prompt_logprob_sampling() == {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 1}
    assert generate_sampling(64) == {"max_tokens": 64, "temperature": 0.0, "skip_special_tokens": True}
    from rerankkit.backends.base import Sampling

    assert generate_sampling(8, Sampling(0.3, 0.8, 7)) == {"max_tokens": 8, "temperature": 0.3, "top_p": 0.8,
                                                           "seed": 7, "skip_special_tokens": True}
    assert "seed" not in generate_sampling(8, Sampling(0.3, 0.8))
    assert generate_sampling(64, Sampling(min_new_tokens=64)) == {
        "max_tokens": 64, "min_tokens": 64, "temperature": 0.0, "skip_special_tokens": True}  # rank_llm's listwise
    with pytest.raises(BackendError):
        score_sampling([])


def test_score_plan_single_and_multi_token():
    one = score_plan([1, 2, 3], [[7], [8]])
    assert one == [{"prompt_token_ids": [1, 2, 3], "sampling": score_sampling([7, 8]), "read": "top",
                    "tokens": [7, 8]}]
    multi = score_plan([1, 2], [[7, 8], [9]])
    assert [m["prompt_token_ids"] for m in multi] == [[1, 2, 7, 8], [1, 2, 9]]
    assert [m["tokens"] for m in multi] == [[7, 8], [9]] and all(m["read"] == "prompt" for m in multi)


def lp(x):
    return SimpleNamespace(logprob=x)


def test_top_k_scoring_reads_the_unrestricted_top_list():
    (item,) = score_plan([1, 2], [[7], [8], [9]], top_k=30)
    assert item["sampling"] == {"max_tokens": 1, "temperature": 0.0, "logprobs": 30}  # no allowed_token_ids
    out = SimpleNamespace(outputs=[SimpleNamespace(logprobs=[{7: lp(-0.5), 9: lp(-3.0), 4: lp(-0.2)}])])
    assert read_score(item, out) == [-0.5, float("-inf"), -3.0]  # 8 is outside the top 30


def test_reading_engine_outputs():
    top = SimpleNamespace(outputs=[SimpleNamespace(logprobs=[{7: lp(-0.1), 8: lp(-2.4)}])])
    assert read_score(score_plan([1], [[8], [7]])[0], top) == [-2.4, -0.1]
    with pytest.raises(BackendError, match="lack answer token"):
        read_score(score_plan([1], [[8], [6]])[0], top)
    with pytest.raises(BackendError):
        read_score(score_plan([1], [[8]])[0], SimpleNamespace(outputs=[SimpleNamespace(logprobs=None)]))
    item = score_plan([1, 2], [[7, 8], [9]])[0]
    out = SimpleNamespace(prompt_logprobs=[None, {2: lp(-1.0)}, {7: lp(-0.5)}, {8: lp(-0.25), 3: lp(-0.1)}])
    assert read_score(item, out) == [-0.75]
    with pytest.raises(BackendError, match="lack token"):
        read_score(item, SimpleNamespace(prompt_logprobs=[None, {2: lp(-1.0)}, {7: lp(-0.5)}, {3: lp(-0.1)}]))


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_without_vllm_the_error_names_the_extra():
    from rerankkit import Reranker

    r = Reranker("pointwise-smollm2-135m", backend="vllm")  # declared capabilities suffice to build it
    with pytest.raises(MissingExtraError, match=r"rerankkit\[vllm\]"):
        _ = r.backend


def _adapter(tmp_path, **meta):
    folder = tmp_path / "my-adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 16, **meta}))
    return folder


def test_lora_adapter_enables_lora_with_its_rank_and_names_the_request(tmp_path):
    from rerankkit.backends.vllm import lora_settings

    rank, request = lora_settings(str(_adapter(tmp_path, r=12)))
    assert rank == 12
    assert request == {"lora_name": "my-adapter", "lora_int_id": 1,
                       "lora_path": str((tmp_path / "my-adapter").resolve())}
    kw = engine_kwargs("HuggingFaceTB/SmolLM2-135M-Instruct", lora_rank=rank)
    assert kw["enable_lora"] is True and kw["max_loras"] == 1 and kw["max_lora_rank"] == 16  # vLLM's rank slots
    assert "enable_lora" not in engine_kwargs("m")


def test_lora_adapter_errors(tmp_path):
    from rerankkit.backends.vllm import lora_settings

    with pytest.raises(ConfigError, match="not a peft adapter folder"):
        lora_settings(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="LoRA adapters only"):
        lora_settings(str(_adapter(tmp_path, peft_type="IA3")))
    with pytest.raises(ConfigError, match="larger than vLLM supports"):
        engine_kwargs("m", lora_rank=1024)


def test_engine_requests_carry_the_lora_request():
    from rerankkit.backends.vllm import VLLMBackend

    calls = []

    class Engine:  # the vLLM engine is the I/O edge: record what the backend hands it
        def generate(self, prompts, params, **kw):
            calls.append((prompts, params, kw))
            return []

    be = object.__new__(VLLMBackend)
    be.llm, be._sp = Engine(), dict
    be._lora_request = "LORA-REQUEST"
    be._run([[1, 2, 3]], [generate_sampling(4)])
    assert calls[-1] == ([{"prompt_token_ids": [1, 2, 3]}], [generate_sampling(4)],
                         {"use_tqdm": False, "lora_request": "LORA-REQUEST"})
    be._lora_request = None
    be._run([[1]], [generate_sampling(1)])
    assert calls[-1][2] == {"use_tqdm": False}
