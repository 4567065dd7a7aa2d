"""PromptReps encoding (Zhuang et al., EMNLP 2024): one prompt per text, dense and sparse vectors out.

The backend's REPRESENT capability gives, for the prompt "represent this passage/query with one
word" with the assistant turn pre-filled (``The word is: "``), the last-layer hidden state at the
last prompt token (dense; L2-normalised) and the next-token logits (sparse: see
:mod:`rerankkit.reps.sparse`). As the reference code (ielab/PromptReps ``encode.py``, ``dataset.py``):
texts are stripped, cut to ``max_text_tokens`` before they go into the prompt (the template's
``\x1f`` marks make the text its own tokenisation segment, as the reference concatenates
prefix, text and suffix ids), and the sparse terms are chosen from the words of the whole, uncut
text. An empty text still has a prompt, so every document gets a representation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backends.base import Backend, Capability, Prompt
from ..errors import CapabilityError, ConfigError
from ..prompts.template import Template, TemplateSchema, load_template
from .sparse import TermSelector, sparse_rows, term_weights

log = logging.getLogger(__name__)
SCHEMA = TemplateSchema.of({"passage": {"text"}, "query": {"text"}}, {"system": set(), "prefix": set()})
KINDS = ("passage", "query")


@dataclass
class Reps:
    """Representations of ``n`` texts: ``dense`` [n, d] float32 (unit rows), ``sparse`` CSR [n, vocab]."""

    dense: np.ndarray
    sparse: Any
    seconds: float = 0.0
    fallbacks: int = 0  # texts whose sparse vector came from the vocabulary, not from their own words

    def __len__(self) -> int:
        return int(self.dense.shape[0])


class PromptRepsEncoder:
    """Turns texts into PromptReps vectors with a REPRESENT backend and a ``promptreps`` template."""

    def __init__(self, backend: Backend, template: str | Template = "promptreps", max_text_tokens: int | None = 512,
                 sparse: str = "text", max_terms: int = 128, chunk_size: int = 256):
        if Capability.REPRESENT not in backend.capabilities:
            raise CapabilityError(f"PromptReps needs a backend with REPRESENT; {backend.name!r} offers "
                                  f"{'/'.join(backend.capabilities.names()) or 'nothing'} (use backend 'hf')")
        tpl = template if isinstance(template, Template) else load_template(template)
        if tpl.strategy != "promptreps":
            raise ConfigError(f"template {tpl.name!r} is for {tpl.strategy!r}, not 'promptreps'")
        if chunk_size < 1:
            raise ConfigError(f"chunk_size must be at least 1, not {chunk_size}")
        self.template = tpl.validate(SCHEMA)
        self.backend = backend
        self.max_text_tokens = max_text_tokens
        self.chunk_size = chunk_size
        self.selector = TermSelector(getattr(backend, "tokenizer", None), sparse, max_terms)

    def prompt(self, text: str, kind: str = "passage") -> Prompt:
        """The prompt for one text (already cut to length)."""
        if kind not in KINDS:
            raise ConfigError(f"kind must be one of {KINDS}, not {kind!r}")
        system = self.template.fill("system") if self.template.parts.get("system") else None
        return Prompt.user(self.template.fill(kind, text=text), system=system,
                           prefix=self.template.fill("prefix") if "prefix" in self.template.parts else "")

    def encode(self, texts: Sequence[str], kind: str = "passage",
               progress: Callable[[int], None] | None = None) -> Reps:
        """Dense and sparse vectors of ``texts`` (in order); ``progress(n)`` after each chunk."""
        t0 = time.perf_counter()
        texts = [t.strip() for t in texts]
        cut = [self.backend.truncate(t, self.max_text_tokens) if self.max_text_tokens and t else t for t in texts]
        dense: list[np.ndarray] = []
        rows: list[tuple[np.ndarray, np.ndarray]] = []
        vocab = 0
        before = self.selector.fallbacks
        for start in range(0, len(cut), self.chunk_size):
            chunk = cut[start : start + self.chunk_size]
            whole = texts[start : start + self.chunk_size]  # sparse terms come from the uncut text
            hidden, logits = self.backend.represent([self.prompt(t, kind) for t in chunk])
            norms = np.linalg.norm(hidden, axis=1, keepdims=True)
            dense.append((hidden / np.maximum(norms, 1e-12)).astype(np.float32))
            weights = term_weights(logits)
            vocab = max(vocab, weights.shape[1])
            rows.extend(self.selector.select(t, w) for t, w in zip(whole, weights))
            if progress:
                progress(len(chunk))
        dim = dense[0].shape[1] if dense else 0
        out = Reps(np.concatenate(dense) if dense else np.zeros((0, dim), dtype=np.float32),
                   sparse_rows(rows, vocab), time.perf_counter() - t0, self.selector.fallbacks - before)
        log.info("PromptReps: %d texts (%s) in %.1f s (%d sparse fallbacks)", len(out), kind, out.seconds, out.fallbacks)
        return out
