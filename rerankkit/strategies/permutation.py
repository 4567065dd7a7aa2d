"""Identifiers of listed documents and the permutation parser for listwise model output.

The parser reads an answer the way castorini/rank_llm's listwise rerankers do (its inference
handler's ``_clean_response`` and ``ListwiseRankLLM.receive_permutation``), so a model's text gives
the same window order here as there:

- text up to a closing ``</think>`` is dropped (a reasoning model's thoughts);
- look-alike digits (superscript, subscript, circled, full-width, ...) become ASCII digits;
- numeric identifiers: every run of digits is an identifier, wherever it stands (``[3]``, a bare
  ``3``, a number in prose); alphabetic identifiers: every run of letters is read letter by letter
  as the concatenated decimal ``ord(c) - 64`` (``C`` is 3, ``AB`` is ``"12"``: 12, a word is a large
  number), so only a lone capital letter names a document;
- the first mention of each document counts; identifiers outside the window are dropped; the
  documents never named follow in their input order;
- an answer with a digit that Python's ``int`` cannot read (``⑴``, ``⓪``, Ethiopic digits) is
  discarded whole and the window keeps its input order, as rank_llm's exception handler does.

The result is always a permutation: nothing is lost or duplicated, and every repair is counted.

Identifiers are listed as the template's ``item`` wraps them (``[3]`` by default, ``(3)`` in a template
that lists ``({id})``). Reading needs no wrapper (any run of digits or letters counts, so ``(3) > (1)`` is
read as ``[3] > [1]`` is); the escaping of documents and query follows the wrapper.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError

NUMERIC = "numeric"
ALPHA = "alpha"
STYLES = (NUMERIC, ALPHA)

# digits a model may write in another script; each maps to the ASCII digit rank_llm reads for it
_LOOKALIKE_DIGITS = {
    "⁰¹²³⁴⁵⁶⁷⁸⁹": "0123456789",  # superscript
    "₀₁₂₃₄₅₆₇₈₉": "0123456789",  # subscript
    "①②③④⑤⑥⑦⑧⑨": "123456789",  # circled
    "❶❷❸❹❺❻❼❽❾": "123456789",  # negative circled
    "０１２３４５６７８９": "0123456789",  # full width
    "🄀🄁🄂🄃🄄🄅🄆🄇🄈🄉": "0123456789",  # digit full stop / comma
}
_LOOKALIKES = str.maketrans("".join(_LOOKALIKE_DIGITS), "".join(_LOOKALIKE_DIGITS.values()))
_THINK_END = "</think>"
BRACKETS = ("[", "]")  # the default identifier wrapper: [3]


@functools.cache
def _escape_pattern(wrapper: tuple[str, str]) -> re.Pattern[str]:
    o, c = (re.escape(x) for x in wrapper)
    return re.compile(o + r"(\d+)" + c)


def identifiers(n: int, style: str = NUMERIC) -> list[str]:
    """The identifiers of ``n`` listed documents: ``1..n`` (numeric) or ``A..`` (alpha, at most 26)."""
    if style == NUMERIC:
        return [str(i + 1) for i in range(n)]
    if style == ALPHA:
        if n > 26:
            raise ConfigError(f"alphabetic identifiers name at most 26 documents, the window has {n}; "
                              "use window <= 26 (FIRST uses 20: [A]..[T])")
        return list(string.ascii_uppercase[:n])
    raise ConfigError(f"identifier style must be one of {STYLES}, not {style!r}")


def escape_identifiers(text: str, wrapper: tuple[str, str] = BRACKETS) -> str:
    """Rewrite a wrapped number such as ``[3]`` inside a document or query as ``(3)``, so it cannot be
    taken for a listed document (rank_llm's ``_replace_number``; wrapped letters stay as they are). With
    ``(3)`` identifiers (``wrapper`` ``("(", ")")``) the same rule writes ``(3)`` as ``[3]``; bare
    identifiers cannot be escaped."""
    o, c = wrapper
    if not (o and c):
        return text
    return _escape_pattern(wrapper).sub(r"(\1)" if wrapper == BRACKETS else r"[\1]", text)


@dataclass(frozen=True)
class ParsedPermutation:
    """``order``: window positions, best first, a permutation of ``range(n)``; and the repairs made."""

    order: tuple[int, ...]
    unknown: int = 0  # identifiers that name no document of the window (each mention)
    duplicate: int = 0  # repeated mentions of a document
    missing: int = 0  # documents never named, appended in their original order
    unreadable: bool = False  # a digit int() cannot read: the whole answer was discarded

    @property
    def repaired(self) -> bool:
        return bool(self.unknown or self.duplicate or self.missing)

    @property
    def failed(self) -> bool:
        """True when the answer named no document (the window keeps its input order)."""
        return self.missing == len(self.order) and len(self.order) > 0


def style_of(labels: Sequence[str]) -> str:
    """The identifier style of a window's labels (they must be ``identifiers(n, style)``)."""
    style = ALPHA if labels and labels[0].isalpha() else NUMERIC
    if list(labels) != identifiers(len(labels), style):
        raise ValueError(f"labels must be the window's identifiers 1..n or A..: {list(labels)}")
    return style


def identifier_numbers(text: str, style: str) -> list[str]:
    """The digit strings an answer names, in order (see the module docstring)."""
    if _THINK_END in text:
        text = text.split(_THINK_END)[-1].strip()
    text = text.translate(_LOOKALIKES)
    if style == ALPHA:
        spelled = [str(ord(c) - ord("A") + 1) if c.isalpha() else " " for c in text]
    else:
        spelled = [c if c.isdigit() else " " for c in text]
    return "".join(spelled).split()


def parse_permutation(text: str, labels: Sequence[str]) -> ParsedPermutation:
    """Read a ranking such as ``"[3] > [1] > [2]"`` over ``labels``, the window's identifiers (any
    wrapping reads alike: ``(3) > (1) > (2)`` gives the same order)."""
    n = len(labels)
    numbers = identifier_numbers(text or "", style_of(labels))
    try:
        positions = [int(x) - 1 for x in numbers]
    except ValueError:  # a Unicode digit without a decimal value
        return ParsedPermutation(tuple(range(n)), missing=n, unreadable=True)
    seen: set[int] = set()
    order: list[int] = []
    unknown = duplicate = 0
    for i in positions:
        if not 0 <= i < n:
            unknown += 1
        elif i in seen:
            duplicate += 1
        else:
            seen.add(i)
            order.append(i)
    missing = [i for i in range(n) if i not in seen]
    return ParsedPermutation(tuple(order + missing), unknown, duplicate, len(missing))
