"""The backend protocol: small, batched, with declared capabilities.

A strategy hands a backend *structured* prompts (chat messages plus an optional pre-filled start
of the assistant turn); the backend alone turns them into model input (chat template or plain text).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from ..errors import ConfigError, InputError
from ..options import build_options


class Capability(enum.Flag):
    """What a backend can compute."""

    NONE = 0
    GENERATE = enum.auto()  # free text (greedy, or sampled with a seed: Sampling)
    SCORE = enum.auto()  # log-probs of given continuations
    EMBED = enum.auto()  # pooled, L2-normalised vectors
    REPRESENT = enum.auto()  # last-token hidden state + next-token logits
    RELEVANCE = enum.auto()  # one relevance logit per (query, document) pair: a cross-encoder head

    def names(self) -> list[str]:
        return [c.name for c in Capability if c.value and c in self and c.name]


SEGMENT_BREAK = "\x1f"
"""A template puts this (ASCII unit separator) between parts of a prompt that the method's reference code
tokenises apart and concatenates as ids (mxbai-rerank-v2, PromptReps). Backends that tokenise locally encode
each segment on its own, so no token merges across it; it is removed from text a server tokenises itself
and from what ``rerankkit prompt render`` shows."""


def without_breaks(text: str) -> str:
    """``text`` with every :data:`SEGMENT_BREAK` removed."""
    return text.replace(SEGMENT_BREAK, "")


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
class Sampling:
    """How GENERATE decodes: greedy when ``temperature`` is 0 (the default), else nucleus sampling at
    ``temperature`` and ``top_p``, seeded by ``seed`` so a run can be repeated. ``min_new_tokens``: the
    end-of-sequence token is blocked until that many tokens are out (vLLM's ``min_tokens``, which
    rank_llm's listwise generation sets to its whole answer; backends whose engine has no such
    setting, like the OpenAI API, ignore it)."""

    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    min_new_tokens: int = 0

    def __post_init__(self) -> None:
        if not self.temperature >= 0.0:
            raise ConfigError(f"temperature must be >= 0, not {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"top_p must be in (0, 1], not {self.top_p}")
        if self.min_new_tokens < 0:
            raise ConfigError(f"min_new_tokens must be >= 0, not {self.min_new_tokens}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    @property
    def plain(self) -> bool:
        """Greedy with no minimum length: what ``generate`` does without a ``sampling`` argument."""
        return self.greedy and not self.min_new_tokens

    def key(self) -> dict[str, Any]:
        """The fields that change an answer (empty for plain greedy decoding, whatever the rest says)."""
        out: dict[str, Any] = ({} if self.greedy else
                               {"temperature": self.temperature, "top_p": self.top_p, "seed": self.seed})
        if self.min_new_tokens:
            out["min_new_tokens"] = self.min_new_tokens
        return out


GREEDY = Sampling()
SamplingArg = Sampling | Sequence[Sampling] | None


def sampling_list(sampling: SamplingArg, n: int) -> list[Sampling]:
    """``generate``'s ``sampling`` argument as one :class:`Sampling` per prompt (``None``: greedy)."""
    if sampling is None:
        return [GREEDY] * n
    if isinstance(sampling, Sampling):
        return [sampling] * n
    out = list(sampling)
    if len(out) != n:
        raise InputError(f"{n} prompts but {len(out)} sampling settings")
    return out


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
    truncated_prompts: int = 0  # prompts cut to fit the model's context
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, calls: int = 0, prompt_tokens: int = 0, generated_tokens: int = 0, cached: int = 0,
            truncated: int = 0) -> None:
        with self._lock:
            self.calls += calls
            self.batches += 1 if calls else 0
            self.prompt_tokens += prompt_tokens
            self.generated_tokens += generated_tokens
            self.cached_calls += cached
            self.truncated_prompts += truncated

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {
                "model_calls": self.calls,
                "batches": self.batches,
                "prompt_tokens": self.prompt_tokens,
                "generated_tokens": self.generated_tokens,
                "cached_calls": self.cached_calls,
                "truncated_prompts": self.truncated_prompts,
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

    def generate(self, prompts: Sequence[Prompt], max_new_tokens: int, sampling: SamplingArg = None) -> list[Generation]:
        """Continue each prompt: greedy by default; ``sampling`` (one :class:`Sampling`, or one per
        prompt) asks for seeded sampling instead."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised vectors, one row per text."""
        ...

    def represent(self, prompts: Sequence[Prompt]) -> tuple[np.ndarray, np.ndarray]:
        """(last-token hidden states [n, d], next-token logits [n, vocab])."""
        ...

    def relevance(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """One raw relevance logit per (query, document) pair (a cross-encoder's head, no activation)."""
        ...

    def options(self) -> dict[str, Any]:
        """The settings that change results (for cache keys and run metadata)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class NoOptions:
    """The options of a backend that takes none."""


def check_options(cls: type, options: Mapping[str, Any]) -> Any:
    """``options`` validated against ``cls.Options`` (no model is loaded): unknown keys, types, choices, bounds.

    A class that declares no ``Options`` (a plugin written before they existed) gets the mapping back as is."""
    declared = getattr(cls, "Options", None)
    if declared is None:
        return dict(options)
    name = getattr(cls, "backend_name", cls.__name__)
    return build_options(declared, options, owner=f"backend {name!r}", label=name, noun="option")


class BackendBase:
    """Shared defaults: whitespace tokenisation and CapabilityError for what a backend lacks.

    A subclass declares, once, on the class: ``backend_name``; ``capabilities`` (what the class can compute,
    checked against a strategy before any model loads; an instance may only :meth:`narrow` them, e.g. a
    seq2seq model cannot EMBED); and ``Options``, a dataclass whose fields are declared with
    :func:`rerankkit.options.option`. The keyword options given to ``__init__`` are validated against it before
    anything loads and kept as ``self.opts``."""

    capabilities: Capability = Capability.NONE
    backend_name: str = "base"
    Options: ClassVar[type] = NoOptions

    def __init__(self, model: str = "", **options: Any) -> None:
        self._model = model
        self.usage = Usage()
        self.opts: Any = check_options(type(self), options)

    def narrow(self, capabilities: Capability) -> None:
        """Offer only ``capabilities`` of those the class declares (an instance never adds any)."""
        self.capabilities = type(self).capabilities & capabilities

    @property
    def name(self) -> str:
        return self.backend_name

    @property
    def model_id(self) -> str:
        return self._model

    def render(self, prompt: Prompt) -> str:
        return prompt.plain_text()

    def render_inputs(self, prompt: Prompt) -> dict[str, str]:
        """What each input of the model reads (``encoder``/``decoder`` for seq2seq models)."""
        return {"input": self.render(prompt)}

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

    def generate(self, prompts: Sequence[Prompt], max_new_tokens: int, sampling: SamplingArg = None) -> list[Generation]:
        return self._lacks(Capability.GENERATE)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._lacks(Capability.EMBED)

    def represent(self, prompts: Sequence[Prompt]) -> tuple[np.ndarray, np.ndarray]:
        return self._lacks(Capability.REPRESENT)

    def relevance(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        return self._lacks(Capability.RELEVANCE)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of ``text``'s tokens, in order (here: whitespace-separated words)."""
        return word_spans(text)

    def max_input_tokens(self) -> int | None:
        """The longest input the model reads (None: no limit known)."""
        return None

    def options(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        return None


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the whitespace-separated words of ``text``."""
    import re

    return [m.span() for m in re.finditer(r"\S+", text)]


def spans_of(backend: Any, text: str) -> list[tuple[int, int]]:
    """Token spans of ``text`` from ``backend``'s tokenizer (whitespace words for a backend without
    ``token_spans``, such as a plugin written before it existed)."""
    spans = getattr(backend, "token_spans", None)
    if spans is None:
        return word_spans(text)
    return list(spans(text))


class BackendWrapper:
    """A backend around another (``inner``): what describes the model and its tokenizer passes through;
    a subclass overrides the request kinds it changes (the answer cache, a call counter)."""

    def __init__(self, inner: Backend):
        self.inner = inner

    @property
    def capabilities(self) -> Capability:
        return self.inner.capabilities

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def render(self, prompt: Prompt) -> str:
        return self.inner.render(prompt)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)

    def truncate(self, text: str, max_tokens: int) -> str:
        return self.inner.truncate(text, max_tokens)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return spans_of(self.inner, text)

    def max_input_tokens(self) -> int | None:
        limit = getattr(self.inner, "max_input_tokens", None)
        return limit() if limit else None

    def options(self) -> dict[str, Any]:
        return self.inner.options()

    def close(self) -> None:
        self.inner.close()
