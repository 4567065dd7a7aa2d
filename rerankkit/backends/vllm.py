"""vLLM's offline engine in-process (CUDA GPUs), with prefix caching on.

SCORE: single-token answers come from one generated token restricted to the answer tokens
(``allowed_token_ids``) with their log-probs (normalised over the answers: vLLM reports them after
the restriction); multi-token answers from the prompt log-probs of prompt + answer (prefix caching
makes the shared prompt cheap). GENERATE: greedy. ``adapter=PATH`` serves a LoRA adapter (a peft folder,
e.g. from ``rerankkit train``) on top of the base model with vLLM's multi-LoRA support. EMBED (``task=embed``): last-token pooling,
L2-normalised. Prompts are rendered with the model's tokenizer exactly as the hf backend does
and sent as token ids.

The engine and sampling parameters are built by the pure functions below (unit-tested without a
GPU); :class:`VLLMBackend` only hands them to vLLM.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._lazy import require
from ..errors import BackendError, ConfigError
from ..options import option
from .base import (
    GREEDY,
    BackendBase,
    Capability,
    Generation,
    Prompt,
    Sampling,
    SamplingArg,
    ScoreRequest,
    sampling_list,
)
from .tokenizing import LocalTokenizer

log = logging.getLogger(__name__)
TASKS = ("generate", "embed")


def engine_kwargs(model: str, *, task: str = "generate", tensor_parallel_size: int = 1,
                  gpu_memory_utilization: float = 0.9, max_model_len: int | None = None, dtype: str = "auto",
                  seed: int = 0, max_logprobs: int = 20, trust_remote_code: bool = False,
                  enforce_eager: bool = False, lora_rank: int | None = None) -> dict[str, Any]:
    """Keyword arguments for ``vllm.LLM`` (names of vLLM >= 0.10; :func:`adapt_engine_kwargs` maps them).

    ``lora_rank``: serve LoRA adapters up to this rank (see :func:`lora_settings`)."""
    if task not in TASKS:
        raise ConfigError(f"vllm task must be one of {', '.join(TASKS)}, not {task!r}")
    if not 0.0 < gpu_memory_utilization <= 1.0:
        raise ConfigError(f"gpu_memory_utilization must be in (0, 1], not {gpu_memory_utilization}")
    if tensor_parallel_size < 1:
        raise ConfigError(f"tensor_parallel_size must be at least 1, not {tensor_parallel_size}")
    kw: dict[str, Any] = {
        "model": model,
        "tokenizer": model,
        "dtype": {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}.get(dtype, dtype),
        "tensor_parallel_size": tensor_parallel_size,
        "gpu_memory_utilization": gpu_memory_utilization,
        "enable_prefix_caching": True,
        "seed": seed,
        "trust_remote_code": trust_remote_code,
        "enforce_eager": enforce_eager,
    }
    if max_model_len:
        kw["max_model_len"] = int(max_model_len)
    if lora_rank:
        kw.update(enable_lora=True, max_loras=1, max_lora_rank=_lora_rank_slot(int(lora_rank)))
    if task == "embed":
        kw["runner"] = "pooling"
        kw["override_pooler_config"] = {"pooling_type": "LAST", "normalize": True}
    else:
        kw["runner"] = "generate"
        kw["max_logprobs"] = max_logprobs
        # log-probs after the allowed-token restriction, so every answer token is in the top-k
        kw["logprobs_mode"] = "processed_logprobs"
    return kw


def _lora_rank_slot(rank: int) -> int:
    """vLLM sizes LoRA buffers by one of a few fixed ranks: the smallest that holds ``rank``."""
    for slot in (8, 16, 32, 64, 128, 256, 320, 512):
        if rank <= slot:
            return slot
    raise ConfigError(f"LoRA rank {rank} is larger than vLLM supports (512)")


def lora_settings(adapter: str) -> tuple[int, dict[str, Any]]:
    """The rank of a peft LoRA adapter folder and the ``LoRARequest`` fields that serve it."""
    from ..models import resolve_adapter

    path = Path(resolve_adapter(adapter)).expanduser()
    config = path / "adapter_config.json"
    if not config.is_file():
        raise ConfigError(f"adapter {adapter!r} is not a peft adapter folder (no adapter_config.json there)")
    try:
        meta = json.loads(config.read_text(encoding="utf-8"))
        rank = int(meta["r"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{config}: cannot read the LoRA rank ({exc})") from None
    if meta.get("peft_type", "LORA") != "LORA":
        raise ConfigError(f"{config}: vLLM serves LoRA adapters only, not {meta.get('peft_type')}")
    return rank, {"lora_name": path.name or "adapter", "lora_int_id": 1, "lora_path": str(path.resolve())}


def adapt_engine_kwargs(kw: dict[str, Any], accepted: set[str], pooler_config: Any = None) -> dict[str, Any]:
    """Fit :func:`engine_kwargs` to the installed vLLM's ``EngineArgs`` field names.

    Older versions call ``runner`` ``task`` (``embed``/``generate``) and take a ``PoolerConfig``
    object; a setting the engine does not know is dropped with a warning.
    """
    out = dict(kw)
    if "runner" in out and "runner" not in accepted and "task" in accepted:
        out["task"] = "embed" if out.pop("runner") == "pooling" else "generate"
    if "override_pooler_config" in out and pooler_config is not None:
        out["override_pooler_config"] = pooler_config(**out["override_pooler_config"])
    for key in list(out):
        if key not in accepted and key != "model":
            log.warning("this vLLM has no engine setting %r; dropped", key)
            out.pop(key)
    return out


def score_sampling(choice_ids: Sequence[int]) -> dict[str, Any]:
    """Sampling parameters for one generated token restricted to the answer tokens, with their log-probs."""
    allowed = sorted(set(int(t) for t in choice_ids))
    if not allowed:
        raise BackendError("no answer tokens to score")
    return {"max_tokens": 1, "temperature": 0.0, "logprobs": len(allowed), "allowed_token_ids": allowed}


def prompt_logprob_sampling() -> dict[str, Any]:
    """Sampling parameters that return the log-prob of every prompt token (and generate one token)."""
    return {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 1}


def generate_sampling(max_new_tokens: int, sampling: Sampling = GREEDY) -> dict[str, Any]:
    """At most ``max_new_tokens`` tokens, greedy, or sampled with ``sampling``'s temperature, top-p and seed
    (a per-request seed: the same answer whatever else is in the batch)."""
    out: dict[str, Any] = {"max_tokens": int(max_new_tokens), "temperature": 0.0, "skip_special_tokens": True}
    if not sampling.greedy:
        out.update(temperature=sampling.temperature, top_p=sampling.top_p)
        if sampling.seed is not None:
            out["seed"] = int(sampling.seed)
    return out


def score_plan(prompt_ids: Sequence[int], choice_ids: Sequence[Sequence[int]]) -> list[dict[str, Any]]:
    """Engine requests for one ScoreRequest: one restricted token when every answer is one token,
    else one prompt-log-prob request per answer (``tail``: how many final tokens are the answer)."""
    if all(len(c) == 1 for c in choice_ids):
        return [{"prompt_token_ids": list(prompt_ids), "sampling": score_sampling([c[0] for c in choice_ids]),
                 "read": "top", "tokens": [c[0] for c in choice_ids]}]
    return [{"prompt_token_ids": [*prompt_ids, *c], "sampling": prompt_logprob_sampling(), "read": "prompt",
             "tokens": list(c)} for c in choice_ids]


def read_score(item: dict[str, Any], output: Any) -> list[float]:
    """The answer log-probs of one engine output for a :func:`score_plan` item."""
    if item["read"] == "top":
        steps = output.outputs[0].logprobs if output.outputs else None
        if not steps:
            raise BackendError("vLLM returned no log-probs for the generated token")
        top = steps[0]
        missing = [t for t in item["tokens"] if t not in top]
        if missing:
            raise BackendError(f"vLLM's log-probs lack answer token(s) {missing}")
        return [_lp(top[t]) for t in item["tokens"]]
    plp = output.prompt_logprobs
    n = len(item["tokens"])
    if not plp or len(plp) < n:
        raise BackendError("vLLM returned no prompt log-probs")
    total = 0.0
    for pos, tok in zip(range(len(plp) - n, len(plp)), item["tokens"]):
        step = plp[pos]
        if not step or tok not in step:
            raise BackendError(f"vLLM's prompt log-probs lack token {tok} at position {pos}")
        total += _lp(step[tok])
    return [total]


def _lp(x: Any) -> float:
    return float(getattr(x, "logprob", x))


@dataclass(frozen=True)
class VLLMOptions:
    """The vllm backend's options."""

    task: str = option("generate", choices=TASKS, help="generate (GENERATE, SCORE) or embed (EMBED)")
    tensor_parallel_size: int = option(1, bounds=(1, None), help="GPUs to split the model over")
    gpu_memory_utilization: float = option(0.9, bounds=(0.0, 1.0), help="share of GPU memory vLLM may take, (0, 1]")
    max_model_len: int | None = option(None, bounds=(1, None), help="context length (none: the model's)")
    dtype: str = option("auto", help="auto | bf16 | fp16 | fp32 (or vLLM's names)")
    chat_template: bool = option(True, help="apply the tokenizer's chat template when it has one")
    seed: int = option(0, help="the engine's seed")
    enforce_eager: bool = option(False, help="no CUDA graphs (slower, less memory, quicker start)")
    trust_remote_code: bool = option(False, help="run the model repository's own code")
    threads: int | None = option(None, help="ignored here (a CPU setting of other backends; accepted so shared "
                                            "overrides work)")
    adapter: str | None = option(None, help="a peft LoRA folder (or packaged:NAME) served on top of the model")


class VLLMBackend(BackendBase):
    """vLLM in-process. Options: :class:`VLLMOptions`."""

    backend_name = "vllm"
    Options = VLLMOptions
    capabilities = Capability.GENERATE | Capability.SCORE | Capability.EMBED

    def __init__(self, model: str, **options: Any) -> None:
        super().__init__(model, **options)
        o: VLLMOptions = self.opts
        lora_rank, self.lora = lora_settings(o.adapter) if o.adapter else (None, None)
        vllm = require("vllm", "vllm", "the vLLM backend")
        torch = require("torch", "vllm", "the vLLM backend")
        if not torch.cuda.is_available():
            raise BackendError("the vLLM backend needs a CUDA GPU and none is visible; on CPU use backend=hf "
                               "(pip install 'rerankkit[hf]'), or backend=openai against a server")
        from ..models import resolve_model

        res = resolve_model(model)
        if res.gguf_file:
            raise ConfigError("the vLLM backend takes a hub id or a model folder, not a GGUF file")
        self.kw = engine_kwargs(res.path, task=o.task, tensor_parallel_size=o.tensor_parallel_size,
                                gpu_memory_utilization=o.gpu_memory_utilization, max_model_len=o.max_model_len,
                                dtype=o.dtype, seed=o.seed, trust_remote_code=o.trust_remote_code,
                                enforce_eager=o.enforce_eager, lora_rank=lora_rank)
        accepted = {f.name for f in dataclasses.fields(vllm.EngineArgs)}
        pooler = getattr(getattr(vllm, "config", None), "PoolerConfig", None)
        self.llm = vllm.LLM(**adapt_engine_kwargs(self.kw, accepted, pooler))
        self._sp = vllm.SamplingParams
        self._lora_request = None
        if self.lora:
            from vllm.lora.request import LoRARequest

            self._lora_request = LoRARequest(**self.lora)
        self.task = o.task
        self.narrow(Capability.EMBED if o.task == "embed" else Capability.GENERATE | Capability.SCORE)
        self.tok = LocalTokenizer(self.llm.get_tokenizer(), o.chat_template)
        log.info("vllm backend: %s (%s)", model, o.task)

    def options(self) -> dict[str, Any]:
        opts = {k: v for k, v in self.kw.items() if k not in ("model", "tokenizer")}
        if self.lora:
            opts["adapter"] = self.lora["lora_path"]
        return opts

    def render(self, prompt: Prompt) -> str:
        return self.tok.render(prompt)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.tok.count(texts)

    def truncate(self, text: str, max_tokens: int) -> str:
        return self.tok.truncate(text, max_tokens)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self.tok.spans(text)

    def _run(self, prompts: list[list[int]], params: list[dict[str, Any]]) -> list[Any]:
        extra = {"lora_request": self._lora_request} if self._lora_request is not None else {}
        return self.llm.generate([{"prompt_token_ids": p} for p in prompts], [self._sp(**sp) for sp in params],
                                 use_tqdm=False, **extra)

    def score(self, requests: Sequence[ScoreRequest]) -> list[np.ndarray]:
        if not requests:
            return []
        plans = []
        for r in requests:
            rendered = self.render(r.prompt)
            plans.append(score_plan(self.tok.encode(rendered), [self.tok.continuation_ids(rendered, c)
                                                                 for c in r.choices]))
        items = [it for plan in plans for it in plan]
        outs = iter(self._run([it["prompt_token_ids"] for it in items], [it["sampling"] for it in items]))
        result = [np.asarray([v for it in plan for v in read_score(it, next(outs))], dtype=np.float64)
                  for plan in plans]
        self.usage.add(len(requests), sum(len(it["prompt_token_ids"]) for it in items))
        return result

    def generate(self, prompts: Sequence[Prompt], max_new_tokens: int, sampling: SamplingArg = None) -> list[Generation]:
        if not prompts:
            return []
        ids = [self.tok.encode(self.render(p)) for p in prompts]
        outs = self._run(ids, [generate_sampling(max_new_tokens, s) for s in sampling_list(sampling, len(ids))])
        gens = [Generation(o.outputs[0].text, len(p), len(o.outputs[0].token_ids)) for o, p in zip(outs, ids)]
        self.usage.add(len(gens), sum(g.prompt_tokens for g in gens), sum(g.generated_tokens for g in gens))
        return gens

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self.task != "embed":
            return self._lacks(Capability.EMBED)
        extra = {"lora_request": self._lora_request} if self._lora_request is not None else {}
        outs = self.llm.embed([t or " " for t in texts], use_tqdm=False, **extra)
        v = np.asarray([o.outputs.embedding for o in outs], dtype=np.float32)
        self.usage.add(len(texts), 0)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    def close(self) -> None:
        self.llm = None
