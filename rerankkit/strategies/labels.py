"""Passage labels (``A``, ``B``, ...) in comparison prompts: answer choices and answer parsing."""

from __future__ import annotations

import os
import re
import string
from collections.abc import Sequence

import numpy as np

LABELS = tuple(string.ascii_uppercase)

_MENTION = re.compile(r"\b(?:passage|document|doc)\s*(?:[:#\-]\s*)?[\"'(\[]?([A-Za-z])(?![A-Za-z0-9])", re.I)
_ECHO = re.compile(r"\b(?:passage|document)\s*[A-Za-z]\s*(?:,|or)\s*(?:passage|document)\s*[A-Za-z]\b", re.I)
_BARE = re.compile(r"^\W*([A-Z])(?![A-Za-z0-9])")


def split_answers(answers: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """Move the words every answer starts with into a shared prefix.

    ``["Passage A", "Passage B"]`` -> ``("Passage", (" A", " B"))``: the model scores the prefix as
    part of the prompt and each answer is then one token, while log p(answer) - log p(other) is
    unchanged (the shared part cancels). The split is only made at a space, never inside a word.
    """
    common = os.path.commonprefix(list(answers))
    cut = common.rfind(" ")
    if cut <= 0:
        return "", tuple(answers)
    return common[:cut], tuple(a[cut:] for a in answers)


def parse_label(text: str, labels: Sequence[str]) -> str | None:
    """The passage label an answer names ("Passage B", "passage: b", "(B)", "B."), else None.

    An echo of the instruction ("Passage A or Passage B") or a label outside ``labels`` names
    nothing; when several labels are mentioned, the first one counts.
    """
    allowed = set(labels)
    if _ECHO.search(text):
        return None
    for m in _MENTION.finditer(text):
        label = m.group(1).upper()
        if label in allowed:
            return label
    m = _BARE.match(text.strip())
    if m and m.group(1) in allowed:
        return m.group(1)
    return None


def best_label(logprobs: np.ndarray) -> int | None:
    """Index of the most likely answer; None when the top two are exactly equal (no preference)."""
    lp = np.asarray(logprobs, dtype=np.float64)
    if lp.size == 0:
        return None
    top = int(np.argmax(lp))
    if np.sum(lp == lp[top]) > 1:
        return None
    return top
