"""Turning log-probabilities of answer variants into relevance scores."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def flatten_choices(choices: Mapping[str, tuple[str, ...]]) -> tuple[tuple[str, ...], list[tuple[float, slice]]]:
    """All variants in one tuple, and per numeric label the slice of its variants."""
    flat: list[str] = []
    spans: list[tuple[float, slice]] = []
    for label, variants in choices.items():
        spans.append((float(label), slice(len(flat), len(flat) + len(variants))))
        flat.extend(variants)
    return tuple(flat), spans


def label_logprobs(logprobs: np.ndarray, spans: list[tuple[float, slice]]) -> tuple[np.ndarray, np.ndarray]:
    """(label values, log p(label)) normalised over the labels; variants of one label are summed."""
    values = np.array([v for v, _ in spans], dtype=np.float64)
    per_label = np.array([_logsumexp(logprobs[s]) for _, s in spans], dtype=np.float64)
    return values, per_label - _logsumexp(per_label)


def relevance_score(logprobs: np.ndarray, spans: list[tuple[float, slice]], mode: str) -> float:
    """``logodds``: log p(top label) - log p(bottom label); ``expected``: E[label value]."""
    values, lp = label_logprobs(logprobs, spans)
    if mode == "expected":
        return float(np.sum(np.exp(lp) * values))
    return float(lp[int(np.argmax(values))] - lp[int(np.argmin(values))])


def _logsumexp(x: np.ndarray) -> float:
    m = float(np.max(x))
    if m == -np.inf:
        return m
    return m + float(np.log(np.sum(np.exp(x - m))))
