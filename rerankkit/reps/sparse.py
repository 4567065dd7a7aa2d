"""Sparse PromptReps vectors: log(1 + relu(next-token logits)) kept on a few vocabulary terms.

``mode="text"`` (the paper's exact-match setting) keeps the tokens of the text's own words (lowercased,
stopwords dropped; every word tokenised on its own), the ``max_terms`` best of them; a text with no
such word falls back to the ``fallback_terms`` best tokens of the whole vocabulary, so every text gets
a vector. ``mode="top"`` keeps the ``max_terms`` best tokens of the vocabulary (expansion terms too).
Weights are quantised to integers (``round(100 * w)``) as impact scores, as PromptReps indexes them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import CapabilityError, ConfigError
from .stopwords import ENGLISH

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
MODES = ("text", "top")


def text_words(text: str) -> list[str]:
    """The distinct lowercase words of ``text`` that are not stopwords, in order of first use."""
    return list(dict.fromkeys(w for w in _WORD.findall(text.lower()) if w not in ENGLISH))


def term_weights(logits: np.ndarray) -> np.ndarray:
    """``log(1 + relu(logits))`` as float32."""
    return np.log1p(np.maximum(np.asarray(logits, dtype=np.float32), 0.0))


class TermSelector:
    """Picks each text's sparse terms and their quantised weights. ``tokenizer``: any object with
    ``__call__(list[str], add_special_tokens=False) -> {"input_ids": [...]}`` (a transformers tokenizer)."""

    def __init__(self, tokenizer: Any, mode: str = "text", max_terms: int = 128, fallback_terms: int = 10,
                 scale: float = 100.0):
        if mode not in MODES:
            raise ConfigError(f"sparse mode must be one of {MODES}, not {mode!r}")
        if max_terms < 1 or fallback_terms < 1:
            raise ConfigError("sparse max_terms and fallback_terms must be at least 1")
        if mode == "text" and tokenizer is None:
            raise CapabilityError("sparse mode 'text' needs the backend's tokenizer (a backend with .tokenizer)")
        self.tokenizer = tokenizer
        self.mode = mode
        self.max_terms = max_terms
        self.fallback_terms = fallback_terms
        self.scale = scale
        self._ids: dict[str, tuple[int, ...]] = {}
        self.fallbacks = 0  # texts that had no word of their own to keep

    def _word_ids(self, words: Sequence[str]) -> set[int]:
        new = [w for w in words if w not in self._ids]
        if new:
            for w, ids in zip(new, self.tokenizer(new, add_special_tokens=False)["input_ids"]):
                self._ids[w] = tuple(int(i) for i in ids)
        return {i for w in words for i in self._ids[w]}

    def select(self, text: str, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(term ids, integer weights > 0) for one text whose vocabulary weights are ``weights``."""
        vocab = weights.shape[0]
        if self.mode == "top":
            ids = _top(weights, np.arange(vocab), self.max_terms)
        else:
            candidates = np.fromiter((i for i in self._word_ids(text_words(text)) if i < vocab), dtype=np.int64)
            if candidates.size:
                ids = _top(weights, candidates, self.max_terms)
            else:
                self.fallbacks += 1
                ids = _top(weights, np.arange(vocab), self.fallback_terms)
        values = np.rint(weights[ids] * self.scale)
        keep = values > 0
        if not keep.any():  # every logit <= 0: still give the text its single best term
            self.fallbacks += 1
            best = int(np.argmax(weights))
            return np.array([best], dtype=np.int64), np.array([1.0], dtype=np.float32)
        return ids[keep], values[keep].astype(np.float32)


def _top(weights: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    vals = weights[candidates]
    if candidates.size > k:
        part = np.argpartition(-vals, k - 1)[:k]
        candidates, vals = candidates[part], vals[part]
    return candidates[np.argsort(-vals, kind="stable")]


def sparse_rows(rows: Sequence[tuple[np.ndarray, np.ndarray]], vocab: int) -> Any:
    """A scipy CSR matrix [len(rows), vocab] from (ids, values) rows."""
    from .._lazy import require

    sp = require("scipy.sparse", "promptreps", "sparse PromptReps indexes")
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    for r, (ids, _) in enumerate(rows):
        indptr[r + 1] = indptr[r] + len(ids)
    indices = np.concatenate([ids for ids, _ in rows]) if rows else np.zeros(0, dtype=np.int64)
    data = np.concatenate([v for _, v in rows]) if rows else np.zeros(0, dtype=np.float32)
    return sp.csr_matrix((data.astype(np.float32), indices, indptr), shape=(len(rows), vocab))
