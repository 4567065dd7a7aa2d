"""Passage labels (``A``, ``B``, ...) in comparison prompts: answer choices and reading generated answers.

In generation mode the model continues the assistant prefix (``" Passage:"``) for a few tokens and the
continuation is read *strictly* by one of these rules (a template names its rule as ``extra.read``), each
the rule of a reference implementation (ielab/llm-rankers):

- ``label``: the continuation, stripped and upper-cased, is exactly one label (its causal-LM rankers);
- ``answer``: the continuation is exactly one of the template's answers, e.g. ``" A"`` after the decoder
  prefix ``Passage`` (its FLAN-T5 PRP ranker, which compares the decoded text with "Passage A");
- ``last_char``: the last character of prefix + continuation, stripped, is a label (its FLAN-T5 setwise
  ranker);
- ``free``: the first "Passage X" in free text, else the whole stripped text is a label (its OpenAI rankers).

Anything else names no passage (None): the strategy keeps the incumbent and counts it as unparsed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError

LABELS = tuple(chr(ord("A") + i) for i in range(23))  # A..W, as the reference (X, Y tokenise oddly)
READ_RULES = ("label", "answer", "last_char", "free")
_PASSAGE = re.compile(r"Passage ([A-Z])")


def split_answers(answers: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """Move the words every answer starts with into a shared prefix.

    ``["Passage A", "Passage B"]`` -> ``("Passage", (" A", " B"))``: the model reads the prefix as
    part of the prompt and each answer is then one token, while log p(answer) - log p(other) is
    unchanged (the shared part cancels). The split is only made at a space, never inside a word.
    """
    common = os.path.commonprefix(list(answers))
    cut = common.rfind(" ")
    if cut <= 0:
        return "", tuple(answers)
    return common[:cut], tuple(a[cut:] for a in answers)


def check_read_rule(rule: str) -> str:
    if rule not in READ_RULES:
        raise ConfigError(f"template read rule must be one of {', '.join(READ_RULES)}, not {rule!r}")
    return rule


def read_answer(rule: str, text: str, labels: Sequence[str], answers: Sequence[str] = (),
                prefix: str = "") -> int | None:
    """Index (into ``labels``) of the label a generated continuation ``text`` names under ``rule``, else None.

    ``answers``: the template's answer for each label (rule ``answer``); ``prefix``: the text the
    continuation follows (rule ``last_char``).
    """
    if rule == "label":
        found = text.strip().upper()
    elif rule == "answer":
        return answers.index(text) if text in answers else None
    elif rule == "last_char":
        found = (prefix + text).strip()[-1:]
    elif rule == "free":
        m = _PASSAGE.search(text)
        found = m.group(1) if m else text.strip()
    else:
        check_read_rule(rule)
        return None
    return labels.index(found) if found in labels else None


def best_label(logprobs: np.ndarray) -> int | None:
    """Index of the most likely answer; None when the top two are exactly equal (no preference)."""
    lp = np.asarray(logprobs, dtype=np.float64)
    if lp.size == 0:
        return None
    top = int(np.argmax(lp))
    if np.sum(lp == lp[top]) > 1:
        return None
    return top
