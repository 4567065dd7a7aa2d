"""Backends, registered by name and imported only when used (no torch at ``import rerankkit``).

Each backend class declares, once, what it can compute (``capabilities``) and its ``Options``
(:mod:`rerankkit.options`); both are read from the class, before any model loads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._lazy import LazyClass
from ..registry import Registry
from .base import (
    GREEDY,
    Backend,
    BackendBase,
    Capability,
    Generation,
    Message,
    NoOptions,
    Prompt,
    Sampling,
    ScoreRequest,
    Usage,
    check_options,
)


@dataclass(frozen=True)
class BackendEntry(LazyClass):
    """Where a backend lives ("module:Class"), which pip extra it needs, and whether it is a test double."""

    testing: bool = False  # answers without a model: never suggested as a backend that "can"


BACKENDS: Registry[BackendEntry] = Registry("backend", "rerankkit.backends")
BACKENDS.register(
    "hf",
    BackendEntry("rerankkit.backends.hf:HFBackend", "hf",
                 "transformers on CPU or CUDA: causal and seq2seq models from a hub id, folder or GGUF file"),
    aliases=("transformers",),
)
BACKENDS.register(
    "openai",
    BackendEntry("rerankkit.backends.openai_compat:OpenAIBackend", "openai",
                 "any OpenAI-compatible server (vLLM, SGLang, llama.cpp, hosted APIs): give base_url=URL"),
    aliases=("openai-compatible", "server"),
)
BACKENDS.register(
    "vllm",
    BackendEntry("rerankkit.backends.vllm:VLLMBackend", "vllm",
                 "vLLM's offline engine in-process (CUDA GPU), prefix caching on"),
)
BACKENDS.register(
    "crossencoder",
    BackendEntry("rerankkit.backends.crossencoder:CrossEncoderBackend", "crossencoder",
                 "sequence-classification rerankers through sentence-transformers' CrossEncoder (CPU or CUDA)"),
    aliases=("cross-encoder", "sentence-transformers"),
)
BACKENDS.register("oracle", BackendEntry("rerankkit.backends.fake:OracleBackend", None,
                                         "answers from known relevance; for tests", testing=True))
BACKENDS.register("scripted", BackendEntry("rerankkit.backends.fake:ScriptedBackend", None,
                                           "answers from functions you give; for tests", testing=True))
BACKENDS.register("random", BackendEntry("rerankkit.backends.fake:RandomBackend", None,
                                         "reproducible pseudo-random answers (optional delay per request); "
                                         "for dry runs and tests", testing=True))


def backend_class(name: str) -> type:
    """The class of backend ``name`` (its module is imported; no model is loaded)."""
    return BACKENDS.get(name).load()


def testing_backends() -> list[str]:
    """Names of the backends that answer without a model (oracle, scripted, random, plugins' own)."""
    return [n for n, e in BACKENDS.items() if e.testing]


def backends_with(caps: Capability) -> list[str]:
    """Names of registered model backends whose class declares every capability in ``caps``."""
    return [n for n, e in BACKENDS.items() if not e.testing and caps in getattr(e.load(), "capabilities", Capability.NONE)]


def create_backend(name: str, model: str, **options: Any) -> Backend:
    """Instantiate backend ``name`` for ``model`` with backend-specific ``options``."""
    return backend_class(name)(model=model, **options)


__all__ = [
    "BACKENDS", "GREEDY", "Backend", "BackendBase", "BackendEntry", "Capability", "Generation", "Message",
    "NoOptions", "Prompt", "Sampling", "ScoreRequest", "Usage", "backend_class", "backends_with", "check_options",
    "create_backend", "testing_backends",
]
