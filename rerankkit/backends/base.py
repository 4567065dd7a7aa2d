"""The backend protocol: small, batched, with declared capabilities.

A strategy hands a backend *structured* prompts (chat messages plus an optional pre-filled start
of the assistant turn); the backend alone turns them into model input (chat template or plain text).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


class Capability(enum.Flag):
    """What a backend can compute."""

    NONE = 0
    GENERATE = enum.auto()  # free text (greedy)
    SCORE = enum.auto()  # log-probs of given continuations
    EMBED = enum.auto()  # pooled, L2-normalised vectors
    REPRESENT = enum.auto()  # last-token hidden state + next-token logits

    def names(self) -> list[str]:
        return [c.name for c in Capability if c.value and c in self and c.name]


@dataclass(frozen=True, slots=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True, slots=True)
class Prompt:
    """Chat messages, then ``prefix``: text the assistant turn starts with (the model continues it)."""

    messages: tuple[Message, ...]
    prefix: str = ""

    @classmethod
    def user(cls, text: str, system: str | None = None, prefix: str = "") -> Prompt:
        msgs = (Message("system", system),) if system else ()
        return cls((*msgs, Message("user", text)), prefix)

    def plain_text(self) -> str:
        """Rendering for models without a chat template: contents joined by blank lines, then prefix."""
        body = "\n\n".join(m.content for m in self.messages)
        return body + self.prefix


@dataclass(frozen=True, slots=True)
class ScoreRequest:
    """Log-probability of each continuation in ``choices`` after ``prompt``.

    ``top_k``: a one-token choice that is not among the model's ``top_k`` most likely next tokens
    gets ``-inf``, as when reading an API's top-k log-probs (rank_llm's FIRST reads vLLM's top 30).
    """

    prompt: Prompt
    choices: tuple[str, ...]
    top_k: int | None = None


@dataclass(frozen=True, slots=True)
class Generation:
    text: str
    prompt_tokens: int
    generated_tokens: int


@dataclass
class Usage:
    """Running totals of the work a backend did (thread-safe)."""

    calls: int = 0  # prompts sent to the model
    batches: int = 0  # backend invocations
    prompt_tokens: int = 0
    generated_tokens: int = 0
    cached_calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, calls: int = 0, prompt_tokens: int = 0, generated_tokens: int = 0, cached: int = 0) -> None:
        with self._lock:
            self.calls += calls
            self.batches += 1 if calls else 0
            self.prompt_tokens += prompt_tokens
            self.generated_tokens += generated_tokens
            self.cached_calls += cached

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {
                "model_calls": self.calls,
                "batches": self.batches,
                "prompt_tokens": self.prompt_tokens,
                "generated_tokens": self.generated_tokens,
                "cached_calls": self.cached_calls,
            }


@runtime_checkable
class Backend(Protocol):
    """What every backend offers. Methods a backend lacks the capability for raise CapabilityError."""

    capabilities: Capability
    usage: Usage

    @property
    def name(self) -> str: ...

    @property
    def model_id(self) -> str: ...

    def render(self, prompt: Prompt) -> str:
        """Exactly the text the model sees for ``prompt`` (chat template applied)."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def truncate(self, text: str, max_tokens: int) -> str:
        """``text`` cut to at most ``max_tokens`` tokens (unchanged when it fits)."""
        ...

    def score(self, requests: Sequence[ScoreRequest]) -> list[np.ndarray]:
        """For each request, an array of log p(choice | prompt), one per choice."""
        ...

    def generate(self, prompts: Sequence[Prompt], max_new_tokens: int, min_new_tokens: int = 0) -> list[Generation]:
        """Greedy text; ``min_new_tokens``: the end-of-sequence token is blocked until that many tokens are
        out (vLLM's ``min_tokens``; backends whose engine has no such setting ignore it)."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised vectors, one row per text."""
        ...

    def represent(self, prompts: Sequence[Prompt]) -> tuple[np.ndarray, np.ndarray]:
        """(last-token hidden states [n, d], next-token logits [n, vocab])."""
        ...

    def options(self) -> dict[str, Any]:
        """The settings that change results (for cache keys and run metadata)."""
        ...

    def close(self) -> None: ...


class BackendBase:
    """Shared defaults: whitespace tokenisation and CapabilityError for what a backend lacks."""

    capabilities: Capability = Capability.NONE
    backend_name: str = "base"

    def __init__(self, model: str = "") -> None:
        self._model = model
        self.usage = Usage()

    @property
    def name(self) -> str:
        return self.backend_name

    @property
    def model_id(self) -> str:
        return self._model

    def render(self, prompt: Prompt) -> str:
        return prompt.plain_text()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]

    def truncate(self, text: str, max_tokens: int) -> str:
        words = text.split()
        return text if len(words) <= max_tokens else " ".join(words[:max_tokens])

    def _lacks(self, cap: Capability) -> Any:
        from ..errors import CapabilityError

        raise CapabilityError(f"backend {self.name!r} ({self.model_id}) cannot {cap.name}")

    def score(self, requests: Sequence[ScoreRequest]) -> list[np.ndarray]:
        return self._lacks(Capability.SCORE)

    def generate(self, prompts: Sequence[Prompt], max_new_tokens: int, min_new_tokens: int = 0) -> list[Generation]:
        return self._lacks(Capability.GENERATE)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._lacks(Capability.EMBED)

    def represent(self, prompts: Sequence[Prompt]) -> tuple[np.ndarray, np.ndarray]:
        return self._lacks(Capability.REPRESENT)

    def options(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        return None
