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
        "max_logprobs": 100, "logprobs_mode": "processed_logprobs",
    }
    assert engine_kwargs("m", kv_cache_bytes=3 << 30)["kv_cache_memory_bytes"] == 3 << 30


def test_engine_kwargs_for_embedding_use_the_pooling_runner():
    kw = engine_kwargs("m", task="embed")
    assert kw["runner"] == "pooling" and "pooler_config" not in kw  # the model's own pooling
    assert engine_kwargs("m", task="embed", pooling="mean")["pooler_config"] == {"pooling_type": "MEAN"}
    assert "max_model_len" not in kw and "logprobs_mode" not in kw
    assert "enable_prefix_caching" not in kw  # vLLM's choice: encoder-only models have no KV cache to share


@pytest.mark.parametrize("bad", [{"task": "classify"}, {"gpu_memory_utilization": 1.5}, {"tensor_parallel_size": 0},
                                 {"task": "embed", "pooling": "max"}])
def test_engine_kwargs_reject_bad_settings(bad):
    with pytest.raises(ConfigError):
        engine_kwargs("m", **bad)


def test_adapting_to_an_older_engine():
    class PoolerConfig:
        def __init__(self, **kw):
            self.kw = kw

    old_fields = {"model", "tokenizer", "dtype", "task", "tensor_parallel_size", "gpu_memory_utilization",
                  "enable_prefix_caching", "seed", "trust_remote_code", "enforce_eager", "override_pooler_config"}
    out = adapt_engine_kwargs(engine_kwargs("m", task="embed", pooling="last"), old_fields, PoolerConfig)
    assert out["task"] == "embed" and "runner" not in out and "pooler_config" not in out
    assert out["override_pooler_config"].kw == {"pooling_type": "LAST"}
    gen = adapt_engine_kwargs(engine_kwargs("m", kv_cache_bytes=1 << 30), old_fields)
    assert gen["task"] == "generate" and "logprobs_mode" not in gen and "max_logprobs" not in gen
    assert "kv_cache_memory_bytes" not in gen
    new_fields = old_fields - {"task", "override_pooler_config"} | {"runner", "pooler_config"}
    out = adapt_engine_kwargs(engine_kwargs("m", task="embed", pooling="cls"), new_fields, PoolerConfig)
    assert out["runner"] == "pooling" and out["pooler_config"].kw == {"pooling_type": "CLS"}


def test_prompts_longer_than_the_context_are_cut_from_the_left():
    from rerankkit.backends.vllm import fit_prompt, prompt_budget

    assert fit_prompt([1, 2, 3], 5) == ([1, 2, 3], False)
    assert fit_prompt([1, 2, 3, 4, 5, 6], 4) == ([3, 4, 5, 6], True)
    assert prompt_budget(2048, 1) == 2047  # vLLM needs room for at least one answer token
    assert prompt_budget(2048, 64) == 1984
    assert prompt_budget(2048, 8000) == 1024  # a long answer budget never takes more than half
    assert prompt_budget(1, 1) == 1


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


# -- starting the engine: CPU defaults and a failed start in one line --------------------------------------
GIB = 1 << 30


def test_cpu_kv_cache_default_and_limits():
    from rerankkit.backends.vllm_engine import cpu_kv_cache_bytes

    assert cpu_kv_cache_bytes(None, 24 * GIB, 18 * GIB) == int(2.4 * GIB)  # 10 % of the machine
    assert cpu_kv_cache_bytes(None, 4 * GIB, 3 * GIB) == 1 * GIB  # at least 1 GiB
    assert cpu_kv_cache_bytes(None, 512 * GIB, 400 * GIB) == 8 * GIB  # at most 8 GiB
    assert cpu_kv_cache_bytes(None, 24 * GIB, 1 * GIB) == GIB // 2  # never more than half of what is free
    assert cpu_kv_cache_bytes(0.5, 24 * GIB, 18 * GIB) == GIB // 2
    with pytest.raises(ConfigError, match=r"kv_cache_gb=40.00 GiB is more than the 18.00 GiB .* lower kv_cache_gb"):
        cpu_kv_cache_bytes(40, 24 * GIB, 18 * GIB)
    with pytest.raises(ConfigError, match="kv_cache_gb must be positive"):
        cpu_kv_cache_bytes(0, 24 * GIB, 18 * GIB)
    with pytest.raises(ConfigError, match="too small"):
        cpu_kv_cache_bytes(0.001, 24 * GIB, 18 * GIB)


def test_cpu_thread_binding():
    from rerankkit.backends.vllm_engine import cpu_thread_binding

    assert cpu_thread_binding(None, {3, 1, 2}) == "1,2,3"  # every allowed CPU: no core kept idle
    assert cpu_thread_binding(2, [5, 4, 7]) == "4,5"
    with pytest.raises(ConfigError, match="lower threads"):
        cpu_thread_binding(3, [0, 1])
    with pytest.raises(ConfigError):
        cpu_thread_binding(0, [0, 1])


def test_engine_resources_on_cpu_and_gpu(monkeypatch):
    from rerankkit.backends import vllm_engine

    monkeypatch.setattr(vllm_engine, "memory_bytes", lambda: (24 * GIB, 18 * GIB))
    monkeypatch.setattr(vllm_engine, "allowed_cpus", lambda: [0, 1])
    assert vllm_engine.engine_resources(True, None, None) == (int(2.4 * GIB), {"VLLM_CPU_OMP_THREADS_BIND": "0,1"})
    assert vllm_engine.engine_resources(True, 1.0, 1) == (GIB, {"VLLM_CPU_OMP_THREADS_BIND": "0"})
    assert vllm_engine.engine_resources(False, None, 4) == (None, {})  # a GPU: gpu_memory_utilization decides
    assert vllm_engine.engine_resources(False, 2.0, None) == (2 * GIB, {})


# what vLLM 0.32 prints when its engine process fails (the parent's exception says only "see above")
ENGINE_LOG = """\
(EngineCore pid=4242) INFO 11-30 10:00:01 [core.py:100] Initializing a V1 LLM engine
(EngineCore pid=4242) ERROR 11-30 10:00:09 [core.py:1510] EngineCore failed to start.
(EngineCore pid=4242) ERROR 11-30 10:00:09 [core.py:1510] Traceback (most recent call last):
(EngineCore pid=4242) ERROR 11-30 10:00:09 [core.py:1510]   File "/x/vllm/v1/engine/core.py", line 1480, in run_engine_core
(EngineCore pid=4242) ERROR 11-30 10:00:09 [core.py:1510] ValueError: To serve at least one request with the models's max seq len (2048), (0.09 GiB KV cache is needed, which is larger than the available KV cache memory (0.02 GiB). Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.
Process EngineCore:
Traceback (most recent call last):
ValueError: To serve at least one request with the models's max seq len (2048), (0.09 GiB KV cache is needed
""".splitlines()


def test_root_cause_of_a_failed_start_in_one_line():
    from rerankkit.backends.vllm_engine import failure_message, root_cause

    assert root_cause(ENGINE_LOG).startswith("ValueError: To serve at least one request")
    generic = RuntimeError("Engine core initialization failed. See root cause above. Failed core proc(s): {}")
    msg = failure_message(generic, ENGINE_LOG)
    assert "\n" not in msg and msg.startswith("the vLLM engine failed to start: ValueError: To serve")
    assert msg.endswith("(rerankkit: raise kv_cache_gb (CPU) or gpu_memory_utilization (GPU), or lower max_model_len)")
    # a cause the parent saw itself wins over the captured output; without either, the exception as it is
    own = ValueError("Invalid repository ID or local directory specified:\n  '/no/such/model'")
    assert failure_message(own, ENGINE_LOG) == ("the vLLM engine failed to start: ValueError: Invalid repository ID "
                                                "or local directory specified: '/no/such/model'")
    assert failure_message(generic, []).startswith("the vLLM engine failed to start: RuntimeError: Engine core")
    memory = ["ValueError: Available memory on node 0 (1.00/23.00 GiB) on kv cache allocation is less than "
              "requested memory for kv (4.00 GiB). Decrease --kv-cache-memory-bytes, VLLM_CPU_KVCACHE_SPACE"]
    assert failure_message(generic, memory).endswith("(rerankkit: lower kv_cache_gb, or free memory)")


def test_start_engine_wraps_a_failure_and_restores_the_environment(monkeypatch, capfd):
    import os
    import sys

    from rerankkit.backends.vllm_engine import start_engine

    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    seen = {}

    class Failing:  # stands in for vllm.LLM (the I/O edge): prints as an engine process would, then fails
        def __init__(self, **kw):
            seen.update(kw, env=os.environ.get("VLLM_CPU_OMP_THREADS_BIND"))
            os.write(1, b"(EngineCore pid=1) ERROR 11-30 10:00:09 [core.py:1] RuntimeError: oneDNN cannot bind\n")
            print("frontend line", file=sys.stderr, flush=True)
            raise RuntimeError("Engine core initialization failed. See root cause above. Failed core proc(s): {}")

    with pytest.raises(BackendError, match=r"^the vLLM engine failed to start: RuntimeError: oneDNN cannot bind$"):
        start_engine(Failing, {"model": "m"}, {"VLLM_CPU_OMP_THREADS_BIND": "0,1"})
    assert seen == {"model": "m", "env": "0,1"}
    assert "VLLM_CPU_OMP_THREADS_BIND" not in os.environ
    import time

    time.sleep(0.2)  # the copying threads forward what the engine printed, unchanged
    out, err = capfd.readouterr()
    assert "oneDNN cannot bind" in out and "frontend line" in err
    ok = start_engine(lambda **kw: kw, {"model": "m"})
    assert ok == {"model": "m"}


def test_which_vllm_build(monkeypatch):
    import importlib.metadata as md

    from rerankkit.backends import vllm_engine

    def installed(versions):
        def version(dist):
            if dist not in versions:
                raise md.PackageNotFoundError(dist)
            return versions[dist]
        monkeypatch.setattr(vllm_engine.md, "version", version)

    installed({"vllm-cpu": "0.32.0"})
    assert vllm_engine.vllm_build() == ("cpu", "vllm-cpu", "0.32.0")
    installed({"vllm": "0.11.0+cpu"})
    assert vllm_engine.vllm_build() == ("cpu", "vllm", "0.11.0+cpu")
    installed({"vllm": "0.11.0"})
    assert vllm_engine.vllm_build() == ("cuda", "vllm", "0.11.0")
    installed({"vllm": "0.11.0+rocm641"})
    assert vllm_engine.vllm_build()[0] == "rocm"
    installed({})
    assert vllm_engine.vllm_build() is None


def test_usage_counts_truncated_prompts():
    from rerankkit.backends.base import Usage

    u = Usage()
    u.add(3, 30, truncated=1)
    u.add(truncated=2)
    snap = u.snapshot()
    assert snap["truncated_prompts"] == 3 and snap["model_calls"] == 3 and snap["batches"] == 1


def test_options_are_declared_and_checked_before_vllm_is_imported():
    from rerankkit.backends.base import check_options
    from rerankkit.backends.vllm import VLLMBackend

    o = check_options(VLLMBackend, {"kv_cache_gb": "2.5", "threads": "2", "enforce_eager": "true",
                                    "chat_template_kwargs": {"enable_thinking": False}, "dtype": "bf16"})
    assert (o.kv_cache_gb, o.threads, o.enforce_eager, o.dtype) == (2.5, 2, True, "bf16")
    assert o.chat_template_kwargs == {"enable_thinking": False}
    with pytest.raises(ConfigError, match="kv_cache_gb"):
        check_options(VLLMBackend, {"kv_cache_gib": 2})  # misspelt: the error names the right key
    with pytest.raises(ConfigError, match="dtype"):
        check_options(VLLMBackend, {"dtype": "int3"})
    with pytest.raises(ConfigError, match="pooling"):
        check_options(VLLMBackend, {"pooling": "max"})
    with pytest.raises(ConfigError, match="task"):
        check_options(VLLMBackend, {"task": "classify"})
