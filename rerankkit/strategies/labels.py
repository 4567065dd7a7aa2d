"""Passage labels (``A``, ``B``, ...) in comparison prompts: answer choices and reading generated answers.

In generation mode the model continues the assistant prefix (``" Passage:"``) for a few tokens and the
continuation is read *strictly* by one of these rules (a template names its rule as ``extra.read``), each
the rule of a reference implementation (ielab/llm-rankers):

- ``label``: the continuation, stripped and upper-cased, is exactly one label (its causal-LM rankers);
- ``answer``: the continuation is exactly one of the template's answers, e.g. ``" A"`` after the decoder
  prefix ``Passage`` (its FLAN-T5 PRP ranker, which compares the decoded text with "Passage A");
- ``last_char``: the last character of prefix + continuation, stripped, is a label (its FLAN-T5 setwise
  ranker);
- ``free``: the first "Passage X" in free text, else the whole stripped text is a label (its OpenAI rankers);
- ``think_answer``: reasoning then an answer, ``<think>...</think> <answer>[3]</answer>`` (its Rank-R1 ranker:
  the lower-cased text must match that pattern and the answer be one of the labels); with ``repair``, an
  answer tag without the reasoning around it, or cut off before its closing tag, is read too (and counted).

Anything else names no passage (None): the strategy keeps the incumbent and counts it as unparsed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError

LABELS = tuple(chr(ord("A") + i) for i in range(23))  # A..W, as the reference (X, Y tokenise oddly)
NUMBERS = tuple(str(i + 1) for i in range(100))  # 1, 2, ... (Rank-R1's [1] .. [20])
LABEL_SETS = {"letters": LABELS, "numbers": NUMBERS}
READ_RULES = ("label", "answer", "last_char", "free", "think_answer")
_PASSAGE = re.compile(r"Passage ([A-Z])")
_THINK_ANSWER = re.compile(r"<think>.*?</think>\s*<answer>(.*?)</answer>", re.DOTALL)
_ANSWER_TAG = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL)
_ANSWER_OPEN = re.compile(r"<answer>\s*(\[\s*\d+\s*\]|\d+)")
_BRACKETED = re.compile(r"^\[?\s*(\d+)\s*\]?$")


def label_set(kind: str) -> tuple[str, ...]:
    """The labels a template's passages get: ``letters`` (A, B, ...) or ``numbers`` (1, 2, ...)."""
    if kind not in LABEL_SETS:
        raise ConfigError(f"template labels must be one of {', '.join(LABEL_SETS)}, not {kind!r}")
    return LABEL_SETS[kind]


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
    elif rule == "think_answer":
        return read_think_answer(text, answers, repair=False)[0]
    else:
        check_read_rule(rule)
        return None
    return labels.index(found) if found in labels else None


def read_think_answer(text: str, answers: Sequence[str], repair: bool = True) -> tuple[int | None, bool]:
    r"""(index into ``answers`` (``"[1]"``, ``"[2]"``, ...), repaired?) for a reasoning reply.

    Strict (Rank-R1's reference): the lower-cased reply matches ``<think>.*?</think>\s*<answer>(.*?)</answer>``
    and the stripped answer is one of ``answers``. Repair, when that fails: the first complete answer tag
    anywhere (reasoning tags missing or malformed), else an unclosed answer tag that starts with a label (the
    token budget ran out); its content may lack the brackets (``3``).
    """
    low = text.lower()
    m = _THINK_ANSWER.search(low)
    if m and m.group(1).strip() in answers:
        return answers.index(m.group(1).strip()), False
    if not repair:
        return None, False
    for candidate in (_ANSWER_TAG.search(low), _ANSWER_OPEN.search(low)):
        if candidate is None:
            continue
        num = _BRACKETED.match(candidate.group(1).strip())
        if num and f"[{int(num.group(1))}]" in answers:
            return answers.index(f"[{int(num.group(1))}]"), True
    return None, False


def best_label(logprobs: np.ndarray) -> int | None:
    """Index of the most likely answer; None when the top two are exactly equal (no preference)."""
    lp = np.asarray(logprobs, dtype=np.float64)
    if lp.size == 0:
        return None
    top = int(np.argmax(lp))
    if np.sum(lp == lp[top]) > 1:
        return None
    return top
